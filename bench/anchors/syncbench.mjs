// Side-by-side sync server benchmark: converge's server, y-websocket's
// server and Hocuspocus, each started fresh for each run, loaded with the
// same workload (C clients on D documents, R edits per second each, for T
// seconds), one after the other at each rate. Prints a markdown table.
//
//   npm run syncbench -- --clients 1000 --docs 100 --rates 1,2,4,8 --duration 20
//
// converge is loaded by `converge bench sync` (Go clients), the Yjs servers
// by syncload.mjs (node clients); both kinds of client hold only their own
// edits and decode, without applying, what arrives. Server CPU seconds and
// peak RSS come from /proc (utime+stime of /proc/PID/stat; VmHWM of
// /proc/PID/status), so this runs on Linux. `--servers yws-leveldb` adds
// y-websocket with its LevelDB persistence on (see below).
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, appendFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import net from 'node:net'
import { parseOptions } from './cli.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const args = parseOptions(process.argv.slice(2), {
  clients: 1000, docs: 100, rates: '1,2,4,8', duration: 20, servers: 'converge,yws,hocuspocus',
  converge: '', json: '', drain: 10
})


let convergeBin = args.converge
if (!convergeBin) {
  convergeBin = join(mkdtempSync(join(tmpdir(), 'converge-bin-')), 'converge')
  console.error(`building ${convergeBin}…`)
  execFileSync('go', ['build', '-o', convergeBin, './cmd/converge'], { cwd: root, stdio: 'inherit' })
}

let nextPort = 19000 + Math.floor(Math.random() * 1000)

const servers = {
  converge: {
    name: 'converge',
    start (port) {
      const data = mkdtempSync(join(tmpdir(), 'converge-data-'))
      const p = spawn(convergeBin, ['serve', '--addr', `127.0.0.1:${port}`, '--data', data, '--log-level', 'warn', '--max-conns-per-addr', '-1'],
        { stdio: ['ignore', 'ignore', 'inherit'] })
      p.cleanup = () => rmSync(data, { recursive: true, force: true })
      return p
    },
    load (port, pid, rate) {
      return run(convergeBin, ['bench', 'sync', '--server', `http://127.0.0.1:${port}`, '--clients', args.clients,
        '--docs', args.docs, '--rate', rate, '--duration', `${args.duration}s`, '--drain', `${args.drain}s`, '--server-pid', pid])
    }
  },
  yws: {
    name: 'y-websocket',
    start (port) {
      return spawn(process.execPath, [join(here, 'node_modules', 'y-websocket', 'bin', 'server.cjs')],
        { env: { ...process.env, HOST: '127.0.0.1', PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit'] })
    },
    load (port, pid, rate) { return nodeLoad('yws', port, pid, rate) }
  },
  // y-websocket keeps its documents in memory only, unless YPERSISTENCE
  // names a folder: then every update is also written to LevelDB (through
  // y-leveldb, without waiting for the write or syncing it to disk before
  // forwarding). Not in the default list: a comparison of servers that
  // store what they relay, as converge does.
  'yws-leveldb': {
    name: 'y-websocket + LevelDB',
    start (port) {
      const data = mkdtempSync(join(tmpdir(), 'yws-leveldb-'))
      const p = spawn(process.execPath, [join(here, 'node_modules', 'y-websocket', 'bin', 'server.cjs')],
        { env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), YPERSISTENCE: data }, stdio: ['ignore', 'ignore', 'inherit'] })
      p.cleanup = () => rmSync(data, { recursive: true, force: true })
      return p
    },
    load (port, pid, rate) { return nodeLoad('yws', port, pid, rate) }
  },
  hocuspocus: {
    name: 'Hocuspocus',
    start (port) {
      return spawn(process.execPath, [join(here, 'hocuspocus-server.mjs'), String(port)], { stdio: ['ignore', 'ignore', 'inherit'] })
    },
    load (port, pid, rate) { return nodeLoad('hocuspocus', port, pid, rate) }
  }
}

function nodeLoad (protocol, port, pid, rate) {
  return run(process.execPath, [join(here, 'syncload.mjs'), '--server', `ws://127.0.0.1:${port}`, '--protocol', protocol,
    '--clients', args.clients, '--docs', args.docs, '--rate', rate, '--duration', args.duration, '--drain', args.drain, '--server-pid', pid])
}

function run (cmd, argv) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, argv.map(String), { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    p.stdout.on('data', (d) => { out += d })
    p.on('exit', (code) => {
      const line = out.trim().split('\n').pop()
      try {
        resolve(JSON.parse(line))
      } catch {
        reject(new Error(`${cmd} exited with ${code}: ${out}`))
      }
    })
  })
}

async function waitForPort (port) {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`nothing listens on port ${port}`)
}

async function once (key, rate) {
  const srv = servers[key]
  const port = nextPort++
  const p = srv.start(port)
  try {
    await waitForPort(port)
    const res = await srv.load(port, p.pid, rate)
    return { server: srv.name, ...res }
  } finally {
    p.kill('SIGTERM')
    await new Promise((resolve) => p.exitCode !== null ? resolve() : p.on('exit', resolve))
    if (p.cleanup) p.cleanup()
  }
}

const f = (x, d = 1) => (x === undefined || x === null) ? '–' : Number(x).toFixed(d)
const rows = []
console.log(`${args.clients} clients on ${args.docs} documents, ${args.duration} s per run`)
console.log('')
console.log('| server | edits/s per client | edits/s made | edits/s delivered | p50 ms | p99 ms | max ms | lost | errors | server CPU s | server CPU ms per delivered edit | server peak RSS MB | client CPU s |')
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
for (const rate of String(args.rates).split(',').map(Number)) {
  for (const key of args.servers.split(',')) {
    let r
    try {
      r = await once(key, rate)
    } catch (err) {
      console.log(`| ${servers[key].name} | ${rate} | failed: ${String(err.message).split('\n')[0]} |`)
      continue
    }
    rows.push(r)
    if (args.json) appendFileSync(args.json, JSON.stringify(r) + '\n')
    console.log(`| ${r.server} | ${rate} | ${f(r.editsPerS, 0)} | ${f(r.deliveredPerS, 0)} | ${f(r.p50Ms, 2)} | ${f(r.p99Ms, 2)} | ${f(r.maxMs, 1)} | ${r.lost} | ${r.errors} | ${f(r.serverCpuS)} | ${f(r.serverCpuSPerChange * 1000, 3)} | ${f(r.serverPeakRssMB)} | ${f(r.clientCpuS)} |`)
  }
}
console.log('')
console.log('Highest total edit rate with p99 under 50 ms, nothing lost, no errors:')
for (const name of [...new Set(rows.map((r) => r.server))]) {
  const ok = rows.filter((r) => r.server === name && r.p99Ms < 50 && r.lost === 0 && r.errors === 0)
  const best = ok.reduce((b, r) => (!b || r.deliveredPerS > b.deliveredPerS) ? r : b, null)
  console.log(`- ${name}: ${best ? `${f(best.deliveredPerS, 0)} edits/s (${best.rate}/s per client, p99 ${f(best.p99Ms, 2)} ms)` : 'none of the rates run'}`)
}
