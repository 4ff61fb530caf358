#!/usr/bin/env node
// Replays editing traces on other text CRDT engines and prints one JSON line
// per (engine, trace) on stdout; progress goes to stderr.
//
//   node traces.mjs [--runs N] [--warmup N] [--engines a,b] [FILE...]
//
// Each (engine, trace) pair runs in a fresh node process: --warmup untimed
// replays (default 1), then --runs timed ones (default 5), each in a fresh
// document; the figures are their medians.
//
// With no FILE, every *.json.gz in the shared traces folder beside the repo
// (../../../shared/traces from this script) is used. See ../README.md for what
// each field means and how each engine is driven.

import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultTraceFiles, median } from './cli.mjs';

const scriptPath = fileURLToPath(import.meta.url);
const scriptDir = path.dirname(scriptPath);
const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === scriptPath;

// Timings are only comparable if no engine pays for another's garbage, so the
// harness collects before every timed phase. That needs --expose-gc: rerun
// ourselves with it rather than measure without it.
if (isMain && typeof globalThis.gc !== 'function') {
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', ...process.execArgv, scriptPath, ...process.argv.slice(2)],
    { stdio: 'inherit' },
  );
  process.exit(r.status ?? 1);
}

// wasm engines keep their data in WebAssembly linear memory, which
// process.memoryUsage() does not count (not even in arrayBuffers). Record every
// memory the engines instantiate, before they are imported, so it can be added.
const wasmMemories = new Set();
function noteMemories(instance, imports) {
  for (const v of Object.values(instance.exports)) {
    if (v instanceof WebAssembly.Memory) wasmMemories.add(v);
  }
  for (const ns of Object.values(imports ?? {})) {
    for (const v of Object.values(ns ?? {})) {
      if (v instanceof WebAssembly.Memory) wasmMemories.add(v);
    }
  }
}
{
  const Instance = WebAssembly.Instance;
  const Wrapped = function Instance_(module, imports) {
    const inst = new Instance(module, imports);
    noteMemories(inst, imports);
    return inst;
  };
  Wrapped.prototype = Instance.prototype;
  WebAssembly.Instance = Wrapped;
  const instantiate = WebAssembly.instantiate;
  WebAssembly.instantiate = async function (source, imports) {
    const result = await instantiate.call(this, source, imports);
    noteMemories(result.instance ?? result, imports);
    return result;
  };
}
const wasmBytes = () => [...wasmMemories].reduce((n, m) => n + m.buffer.byteLength, 0);

const { engines } = await import('./engines.mjs');

function usage(msg) {
  if (msg) process.stderr.write(`traces.mjs: ${msg}\n`);
  process.stderr.write(
    'usage: node traces.mjs [--runs N] [--warmup N] [--engines ' + [...engines.keys()].join(',') + '] [FILE...]\n',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { runs: 5, warmup: 1, engines: [...engines.keys()], files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--runs') {
      opts.runs = Number(value());
      if (!Number.isInteger(opts.runs) || opts.runs < 1) usage('--runs must be a positive integer');
    } else if (a === '--warmup') {
      opts.warmup = Number(value());
      if (!Number.isInteger(opts.warmup) || opts.warmup < 0) usage('--warmup must be a non-negative integer');
    } else if (a === '--engines') {
      opts.engines = value().split(',').filter(Boolean);
      for (const e of opts.engines) if (!engines.has(e)) usage(`unknown engine ${e}`);
    } else if (a === '-h' || a === '--help') {
      usage();
    } else if (a.startsWith('--')) {
      usage(`unknown flag ${a}`);
    } else {
      opts.files.push(a);
    }
  }
  if (opts.files.length === 0) {
    opts.files = defaultTraceFiles();
  }
  return opts;
}

export function traceName(file) {
  return path.basename(file).replace(/\.json\.gz$|\.json$/, '');
}

// loadTrace reads a trace file and checks what the replay loops rely on, so
// that a bad file is reported as such rather than as an engine failure.
export function loadTrace(file) {
  let raw = readFileSync(file);
  if (file.endsWith('.gz')) raw = gunzipSync(raw);
  const data = JSON.parse(raw.toString('utf8'));
  if (typeof data.endContent !== 'string' || !Array.isArray(data.txns)) {
    throw new Error(`${file}: not a trace (needs endContent and txns)`);
  }
  // Every known trace starts empty; refuse a start text rather than ignore it.
  if (data.startContent !== undefined && data.startContent !== '') {
    throw new Error(`${file}: non-empty startContent is not supported`);
  }
  const concurrent = data.numAgents !== undefined || data.txns.some((t) => t.parents !== undefined);
  const numAgents = concurrent ? data.numAgents : 1;
  if (!Number.isInteger(numAgents) || numAgents < 1) {
    throw new Error(`${file}: concurrent trace needs numAgents ≥ 1`);
  }
  let ops = 0;
  data.txns.forEach((t, i) => {
    if (!Array.isArray(t.patches)) throw new Error(`${file}: txn ${i} has no patches`);
    for (const p of t.patches) {
      if (!Array.isArray(p) || !Number.isInteger(p[0]) || !Number.isInteger(p[1]) || typeof p[2] !== 'string') {
        throw new Error(`${file}: txn ${i}: bad patch ${JSON.stringify(p)}`);
      }
      // Engines here index by UTF-16 units, the trace by code points; they
      // agree only inside the BMP.
      if (/[\u{10000}-\u{10FFFF}]/u.test(p[2])) {
        throw new Error(`${file}: txn ${i}: text outside the BMP; positions would need conversion`);
      }
    }
    ops += t.patches.length;
    if (concurrent) {
      if (!Number.isInteger(t.agent) || t.agent < 0 || t.agent >= numAgents) {
        throw new Error(`${file}: txn ${i}: agent ${t.agent} out of range`);
      }
      // An absent list would silently make the txn a root of the history.
      if (!Array.isArray(t.parents)) throw new Error(`${file}: txn ${i}: no parents list`);
      for (const p of t.parents) {
        if (!Number.isInteger(p) || p < 0 || p >= i) {
          throw new Error(`${file}: txn ${i}: parent ${p} is not an earlier txn`);
        }
      }
    }
  });
  return { name: traceName(file), endContent: data.endContent, txns: data.txns, concurrent, numAgents, ops };
}

function replaySequential(engine, trace) {
  const shared = engine.setup();
  const r = engine.replica(shared, 0);
  for (const txn of trace.txns) engine.txn(r, txn.patches);
  return { shared, replicas: [r] };
}

// replayConcurrent gives each agent its own replica. Before an agent's txn, its
// replica receives every txn in the causal past of the txn's parents that it
// does not hold yet, in trace order (parents always come earlier in the file,
// so trace order is a causal order). The deltas are the bytes each engine
// itself produces for one local transaction. At the end every replica receives
// everything, so convergence of all of them is checked, not just one.
function replayConcurrent(engine, trace) {
  const n = trace.txns.length;
  const shared = engine.setup();
  const replicas = [];
  const have = [];
  for (let a = 0; a < trace.numAgents; a++) {
    replicas.push(engine.replica(shared, a));
    have.push(new Uint8Array(n));
  }
  const deltas = new Array(n);
  const missing = [];
  const stack = [];
  const catchUp = (a, roots) => {
    const mine = have[a];
    for (const p of roots) stack.push(p);
    while (stack.length) {
      const j = stack.pop();
      if (mine[j]) continue;
      mine[j] = 1; // held from here on: what it depends on is merged with it
      missing.push(j);
      for (const p of trace.txns[j].parents) if (!mine[p]) stack.push(p);
    }
    if (missing.length === 0) return;
    missing.sort((x, y) => x - y);
    engine.merge(replicas[a], missing.map((j) => deltas[j]));
    missing.length = 0;
  };
  for (let i = 0; i < n; i++) {
    const txn = trace.txns[i];
    const a = txn.agent;
    catchUp(a, txn.parents);
    deltas[i] = engine.txnDelta(replicas[a], txn.patches);
    have[a][i] = 1;
  }
  const all = Array.from({ length: n }, (_, i) => i);
  for (let a = 0; a < trace.numAgents; a++) catchUp(a, all);
  return { shared, replicas };
}

const now = () => performance.now();

function collect() {
  // Two passes: the first can leave objects whose finalizers free more.
  globalThis.gc();
  globalThis.gc();
}

function oneRun(engine, trace) {
  collect();
  let t = now();
  const { shared, replicas } = (trace.concurrent ? replayConcurrent : replaySequential)(engine, trace);
  const applyMs = now() - t;

  let error;
  replicas.forEach((r, a) => {
    if (!error && engine.text(r) !== trace.endContent) {
      error = `replica ${a}: final text differs from endContent`;
    }
  });

  collect();
  t = now();
  const bytes = engine.encode(replicas[0]);
  const encodeMs = now() - t;

  for (const r of replicas) engine.free(r);
  if (engine.dispose) engine.dispose(shared);
  collect();
  t = now();
  const loaded = engine.load(bytes);
  const loadMs = now() - t;
  if (!error && loaded.text !== trace.endContent) error = 'text loaded from encoded bytes differs from endContent';
  engine.free(loaded.handle);

  return { applyMs, encodeMs, loadMs, bytes, error };
}

// heapChild runs in a fresh process: it loads a saved document and reports the
// memory that document holds once garbage is collected, so neither the replay's
// garbage nor wasm memory grown during the replay (it never shrinks) counts.
function heapChild(engineName, file) {
  const engine = engines.get(engineName);
  const bytes = new Uint8Array(readFileSync(file));
  const measure = () => {
    collect();
    const u = process.memoryUsage();
    return { js: u.heapUsed + u.arrayBuffers, wasm: wasmBytes() };
  };
  // No warm-up load first: a wasm engine would reuse the memory it grew, and
  // the document would look smaller than it is. The engine's one-time state
  // built on first use is counted with the document instead (a few KB).
  const before = measure();
  const loaded = engine.load(bytes);
  const after = measure();
  const js = after.js - before.js;
  const wasm = after.wasm - before.wasm;
  process.stdout.write(
    JSON.stringify({ heapBytes: js + wasm, jsBytes: js, wasmBytes: wasm, textLength: loaded.text.length }) + '\n',
  );
  engine.free(loaded.handle);
}

function measureHeap(engineName, bytes) {
  const dir = mkdtempSync(path.join(tmpdir(), 'converge-anchors-'));
  try {
    const file = path.join(dir, 'doc.bin');
    writeFileSync(file, bytes);
    const r = spawnSync(process.execPath, ['--expose-gc', '--no-flush-bytecode', scriptPath, '--heap-child', engineName, file], {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    if (r.status !== 0) throw new Error(`heap measurement failed: ${(r.stderr || '').split('\n')[0]}`);
    return JSON.parse(r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const round = (x) => Math.round(x * 100) / 100;

function versionOf(pkg) {
  try {
    return JSON.parse(readFileSync(path.join(scriptDir, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

function bench(engineName, trace, runs, warmup) {
  const engine = engines.get(engineName);
  const out = { engine: engineName, trace: trace.name, ops: trace.ops };
  const results = [];
  try {
    // Untimed runs first, so that medians describe the JIT-compiled steady
    // state (the JS engines are markedly slower on their first replay).
    for (let i = 0; i < warmup; i++) {
      const r = oneRun(engine, trace);
      process.stderr.write(`${engineName} ${trace.name} warm-up ${i + 1}/${warmup}: apply ${r.applyMs.toFixed(1)}ms\n`);
      if (r.error) return { ...out, ok: false, error: r.error, version: versionOf(engine.pkg) };
    }
    for (let i = 0; i < runs; i++) {
      const r = oneRun(engine, trace);
      results.push(r);
      process.stderr.write(
        `${engineName} ${trace.name} run ${i + 1}/${runs}: apply ${r.applyMs.toFixed(1)}ms ` +
          `encode ${r.encodeMs.toFixed(1)}ms load ${r.loadMs.toFixed(1)}ms ${r.bytes.length} bytes` +
          (r.error ? ` ERROR ${r.error}` : '') + '\n',
      );
      if (r.error) break;
    }
  } catch (e) {
    return { ...out, ok: false, error: String(e?.message ?? e).split('\n')[0], version: versionOf(engine.pkg) };
  }
  const failed = results.find((r) => r.error);
  if (failed) return { ...out, ok: false, error: failed.error, version: versionOf(engine.pkg) };
  // The JS heap moves by up to ~200 KB between identical measurements (V8's
  // own bookkeeping), so memory too is a median, of one fresh process per run.
  let heap;
  try {
    const heaps = [];
    for (let i = 0; i < runs; i++) heaps.push(measureHeap(engineName, results[results.length - 1].bytes));
    heap = { heapBytes: median(heaps.map((h) => h.heapBytes)), wasmBytes: median(heaps.map((h) => h.wasmBytes)) };
  } catch (e) {
    return { ...out, ok: false, error: String(e?.message ?? e), version: versionOf(engine.pkg) };
  }
  return {
    ...out,
    applyMs: round(median(results.map((r) => r.applyMs))),
    encodeMs: round(median(results.map((r) => r.encodeMs))),
    loadMs: round(median(results.map((r) => r.loadMs))),
    bytes: median(results.map((r) => r.bytes.length)),
    heapBytes: heap.heapBytes,
    ok: true,
    runs,
    version: versionOf(engine.pkg),
    wasmBytes: heap.wasmBytes,
  };
}

// benchChild replays one (engine, trace) pair in its own process, so that no
// engine runs in a heap, JIT state or wasm memory left behind by another.
function benchChild(engineName, file, runs, warmup) {
  const trace = loadTrace(file);
  process.stdout.write(JSON.stringify(bench(engineName, trace, runs, warmup)) + '\n');
}

function runChild(engineName, file, trace, opts) {
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', scriptPath, '--bench-child', engineName, file, String(opts.runs), String(opts.warmup)],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 16 << 20 },
  );
  const line = r.stdout?.split('\n').find((l) => l.startsWith('{'));
  if (r.status === 0 && line) return JSON.parse(line);
  const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`;
  return { engine: engineName, trace: trace.name, ops: trace.ops, ok: false, error: `benchmark process failed: ${why}` };
}

function main(argv) {
  if (argv[0] === '--heap-child') return heapChild(argv[1], argv[2]);
  if (argv[0] === '--bench-child') return benchChild(argv[1], argv[2], Number(argv[3]), Number(argv[4]));
  const opts = parseArgs(argv);
  for (const file of opts.files) {
    let trace;
    try {
      const t = now();
      trace = loadTrace(file);
      process.stderr.write(
        `${trace.name}: ${trace.txns.length} txns, ${trace.ops} patches, ` +
          `${trace.concurrent ? `concurrent, ${trace.numAgents} agents` : 'sequential'} ` +
          `(parsed in ${(now() - t).toFixed(0)}ms)\n`,
      );
    } catch (e) {
      // Still one line per (engine, trace), so a consumer sees what is missing.
      for (const engineName of opts.engines) {
        const line = { engine: engineName, trace: traceName(file), ok: false, error: `trace: ${e.message}` };
        process.stdout.write(JSON.stringify(line) + '\n');
      }
      continue;
    }
    for (const engineName of opts.engines) {
      process.stdout.write(JSON.stringify(runChild(engineName, path.resolve(file), trace, opts)) + '\n');
    }
  }
}

if (isMain) main(process.argv.slice(2));
