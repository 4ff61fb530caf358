// The workload of `converge bench sync`, against a Yjs sync server:
// y-websocket's server (protocol "yws") or Hocuspocus ("hocuspocus").
//
//   node syncload.mjs --server ws://127.0.0.1:1234 --protocol yws \
//     --clients 1000 --docs 100 --rate 1 --duration 30 [--server-pid PID]
//
// C WebSocket clients spread over D documents (client i on document
// i mod D); each makes R edits per second for T seconds: a character typed
// at the end of the document's text and the time put in the client's key
// of the document's map, in one transaction. Latency is from an edit being
// made to its arrival at each other client of the document (the time is
// read back from the update: the map value), p50/p99/max over every
// (edit, receiving client) pair. Prints one JSON line with the same keys
// as `converge bench sync`.
//
// The clients are as light as converge's: each holds a Y.Doc with its own
// edits only, and decodes what arrives (to read the time) without applying
// it, so the server does all the merging, as it would for full clients.
import { performance } from 'node:perf_hooks'
import { readFileSync } from 'node:fs'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { parseOptions } from './cli.mjs'

const args = parseOptions(process.argv.slice(2), {
  server: '', protocol: 'yws', clients: 1000, docs: 100, rate: 1, duration: 30,
  drain: 10, 'server-pid': 0, 'doc-prefix': '', dialers: 64
})
if (!args.server) {
  console.error('usage: node syncload.mjs --server ws://HOST:PORT --protocol yws|hocuspocus [--clients C] [--docs D] [--rate R] [--duration S] [--server-pid PID]')
  process.exit(2)
}
if (!['yws', 'hocuspocus'].includes(args.protocol)) {
  console.error(`--protocol: yws or hocuspocus, not ${args.protocol}`)
  process.exit(2)
}

// y-protocols message types.
const messageSync = 0
const syncStep1 = 0
const syncStep2 = 1
const syncUpdate = 2
const hpAuth = 2 // Hocuspocus: an Auth message (its types are shifted by the document name)

const prefix = args['doc-prefix'] || `load-${Math.random().toString(16).slice(2, 10)}-`
const latencies = [] // ms, every (edit, receiver) pair
let window = [] // the last second's, for progress
let edits = 0
let errors = 0
let firstError = ''
let measuring = false
let stopping = false
const docs = []
for (let d = 0; d < args.docs; d++) docs.push({ id: prefix + d, live: 0, sent: 0, received: 0 })

function fail (msg) {
  if (stopping) return
  errors++
  if (!firstError) firstError = msg
}

class Client {
  constructor (i) {
    this.i = i
    this.doc = docs[i % args.docs]
    this.key = `c${i}`
    this.ydoc = new Y.Doc()
    this.text = this.ydoc.getText('text')
    this.map = this.ydoc.getMap('map')
    this.typed = 0
    this.live = false
    this.ydoc.on('update', (update) => { if (this.live) this.send(this.syncMessage(syncUpdate, update)) })
  }

  // frame starts a message: Hocuspocus puts the document name first.
  frame () {
    const e = encoding.createEncoder()
    if (args.protocol === 'hocuspocus') encoding.writeVarString(e, this.doc.id)
    return e
  }

  syncMessage (type, payload) {
    const e = this.frame()
    encoding.writeVarUint(e, messageSync)
    encoding.writeVarUint(e, type)
    encoding.writeVarUint8Array(e, payload)
    return encoding.toUint8Array(e)
  }

  send (msg) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(msg)
  }

  connect () {
    return new Promise((resolve) => {
      const url = args.protocol === 'yws' ? `${args.server}/${encodeURIComponent(this.doc.id)}` : args.server
      this.ws = new WebSocket(url, { perMessageDeflate: false })
      this.ws.binaryType = 'nodebuffer'
      this.onLive = resolve
      this.ws.on('open', () => {
        if (args.protocol === 'hocuspocus') {
          const e = this.frame()
          encoding.writeVarUint(e, hpAuth)
          encoding.writeVarUint(e, 0) // a token
          encoding.writeVarString(e, '')
          this.send(encoding.toUint8Array(e))
        }
        // Ask for the document: the server answers with step 2.
        this.send(this.syncMessage(syncStep1, Y.encodeStateVector(this.ydoc)))
      })
      this.ws.on('message', (data) => this.receive(data))
      this.ws.on('error', (err) => { fail(`client ${this.i}: ${err.message}`); resolve(false) })
      this.ws.on('close', () => {
        if (!stopping) fail(`client ${this.i}: connection closed`)
        resolve(false)
      })
    })
  }

  receive (data) {
    const d = decoding.createDecoder(data)
    if (args.protocol === 'hocuspocus') decoding.readVarString(d)
    const type = decoding.readVarUint(d)
    if (type !== messageSync && !(args.protocol === 'hocuspocus' && type === 4)) return // awareness, auth, sync status
    const sub = decoding.readVarUint(d)
    if (sub === syncStep1) return // the server's state: it gets our edits as updates
    const update = decoding.readVarUint8Array(d)
    if (sub === syncStep2 && !this.live) {
      this.live = true
      this.doc.live++
      this.onLive(true)
      return
    }
    this.arrived(update)
  }

  // arrived reads the edit time out of an update from another client.
  arrived (update) {
    const now = performance.now()
    const { structs } = Y.decodeUpdate(update)
    for (const s of structs) {
      if (s.id.client === this.ydoc.clientID) return // our own edit, echoed
      const c = s.content
      if (c && c.arr && typeof c.arr[0] === 'number') { // the map value (its key is implied by its origin)
        const ms = now - c.arr[0]
        latencies.push(ms)
        window.push(ms)
        this.doc.received++
        return
      }
    }
  }

  edit () {
    if (!this.live || this.ws.readyState !== WebSocket.OPEN) return
    const t = performance.now()
    this.ydoc.transact(() => {
      this.text.insert(this.typed++, 'x')
      this.map.set(this.key, t)
    })
    this.doc.sent++
    edits++
  }
}

function cpuSeconds (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

function memory (pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (k) => Number((status.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) || [0, 0])[1])
  return { rss: kb('VmRSS') * 1024, peak: kb('VmHWM') * 1024 }
}

function quantile (sorted, q) {
  if (sorted.length === 0) return 0
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]
}

const round = (x) => Math.round(x * 1000) / 1000
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function main () {
  const pid = args['server-pid']
  const cpu0 = pid ? cpuSeconds(pid) : 0
  const self0 = process.cpuUsage()
  const clients = []
  for (let i = 0; i < args.clients; i++) clients.push(new Client(i))
  const connectStart = performance.now()
  for (let i = 0; i < clients.length; i += args.dialers) {
    await Promise.all(clients.slice(i, i + args.dialers).map((c) => c.connect()))
  }
  const connectS = (performance.now() - connectStart) / 1000
  if (!clients.some((c) => c.live)) {
    console.error(`no client could connect to ${args.server}: ${firstError}`)
    process.exit(1)
  }
  const tty = process.stderr.isTTY
  // Every client edits at start + (i/C + k) intervals, spread evenly.
  measuring = true
  const interval = 1000 / args.rate
  const start = performance.now()
  const end = start + args.duration * 1000
  const lags = []
  const progress = tty && setInterval(() => {
    const w = window.sort((a, b) => a - b)
    window = []
    process.stderr.write(`\r${((performance.now() - start) / 1000).toFixed(0).padStart(5)}s  ${String(edits).padStart(8)} edits  ${String(latencies.length).padStart(10)} deliveries  p99 ${quantile(w, 0.99).toFixed(2).padStart(7)} ms (last second)  ${errors} errors `)
  }, 1000)
  const perSlot = interval / clients.length
  for (let k = 0; ; k++) {
    const slot0 = start + k * interval
    if (slot0 >= end) break
    for (let i = 0; i < clients.length; i++) {
      const at = slot0 + i * perSlot
      if (at >= end) break
      const wait = at - performance.now()
      if (wait > 1) await sleep(wait)
      else if (wait < 0) lags.push(-wait)
      // Yield now and then even when late, so that arrivals are read.
      if (i % 64 === 0 && wait <= 1) await new Promise(setImmediate)
      clients[i].edit()
    }
  }
  const editing = Math.min(performance.now() - start, args.duration * 1000) / 1000
  measuring = false
  if (progress) { clearInterval(progress); process.stderr.write('\n') }
  const expected = () => docs.reduce((n, d) => n + d.sent * Math.max(d.live - 1, 0), 0)
  const drainEnd = performance.now() + args.drain * 1000
  while (latencies.length < expected() && performance.now() < drainEnd) await sleep(10)

  const sorted = Float64Array.from(latencies).sort()
  lags.sort((a, b) => a - b)
  const deliveredEdits = docs.reduce((n, d) => n + (d.live > 1 ? d.received / (d.live - 1) : 0), 0)
  const res = {
    clients: args.clients,
    docs: args.docs,
    rate: args.rate,
    duration: editing,
    p50Ms: round(quantile(sorted, 0.5)),
    p90Ms: round(quantile(sorted, 0.9)),
    p99Ms: round(quantile(sorted, 0.99)),
    maxMs: round(sorted.length ? sorted[sorted.length - 1] : 0),
    meanMs: round(sorted.reduce((a, b) => a + b, 0) / Math.max(sorted.length, 1)),
    edits,
    editsPerS: edits / editing,
    deliveredPerS: deliveredEdits / editing,
    deliveries: latencies.length,
    deliveriesPerS: latencies.length / editing,
    expected: expected(),
    lost: Math.max(expected() - latencies.length, 0),
    errors,
    firstError: firstError || undefined,
    connectS,
    sendLagP99Ms: round(quantile(lags, 0.99)),
    clientCpuS: (() => { const u = process.cpuUsage(self0); return (u.user + u.system) / 1e6 })()
  }
  if (pid) {
    const mem = memory(pid)
    res.serverCpuS = round(cpuSeconds(pid) - cpu0)
    res.serverCpuSPerChange = deliveredEdits > 0 ? res.serverCpuS / deliveredEdits : undefined
    res.serverRssMB = Math.round(mem.rss / (1 << 20) * 10) / 10
    res.serverPeakRssMB = Math.round(mem.peak / (1 << 20) * 10) / 10
  }
  stopping = true
  for (const c of clients) c.ws.terminate()
  process.stdout.write(JSON.stringify(res) + '\n')
  process.exit(0)
}


main().catch((err) => { console.error(err); process.exit(1) })
