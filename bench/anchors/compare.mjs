#!/usr/bin/env node
// Runs converge (Go) and the other engines (traces.mjs) on the same traces,
// one after the other on this machine, and prints one markdown table with
// every figure and its ratio to converge's.
//
//   node compare.mjs [--runs N] [--rounds K] [--engines a,b] [--go-json FILE] [--node-json FILE] [FILE...]
//
// --rounds K runs both sides K times, in turn, and reports for each figure
// the median of the K rounds' medians, with each round's apply ratio in a
// note: a machine that slows down for a few seconds at a time then slows
// one round of one side, not the whole comparison.
//
// --go-json / --node-json read a side's JSON lines from a file instead of
// running it (to re-render a table, or to test this script without Go).

import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultTraceFiles, median } from './cli.mjs';

const scriptPath = fileURLToPath(import.meta.url);
const scriptDir = path.dirname(scriptPath);
const repoRoot = path.resolve(scriptDir, '../..');

export const CONVERGE = 'converge';

// Lower is better for all of them, so engine ÷ converge > 1 means converge is
// ahead on that metric.
export const METRICS = [
  ['applyMs', 'apply ms'],
  ['encodeMs', 'encode ms'],
  ['loadMs', 'load ms'],
  ['bytes', 'bytes'],
  ['heapBytes', 'heap bytes'],
];

function usage(msg) {
  if (msg) process.stderr.write(`compare.mjs: ${msg}\n`);
  process.stderr.write(
    'usage: node compare.mjs [--runs N] [--rounds K] [--engines a,b] [--go-json FILE] [--node-json FILE] [FILE...]\n',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { runs: 5, rounds: 1, engines: null, goJson: null, nodeJson: null, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--runs') {
      opts.runs = Number(value());
      if (!Number.isInteger(opts.runs) || opts.runs < 1) usage('--runs must be a positive integer');
    } else if (a === '--rounds') {
      opts.rounds = Number(value());
      if (!Number.isInteger(opts.rounds) || opts.rounds < 1) usage('--rounds must be a positive integer');
    } else if (a === '--engines') opts.engines = value();
    else if (a === '--go-json') opts.goJson = value();
    else if (a === '--node-json') opts.nodeJson = value();
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('--')) usage(`unknown flag ${a}`);
    else opts.files.push(path.resolve(a));
  }
  if (opts.files.length === 0) {
    opts.files = defaultTraceFiles();
  }
  return opts;
}

// parseLines keeps the JSON objects of a side's stdout and ignores anything
// else (a stray log line must not hide the figures).
export function parseLines(text) {
  const out = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      out.push(JSON.parse(t));
    } catch {
      // not a result line
    }
  }
  return out;
}

const firstLine = (s) => (s || '').split('\n').find((l) => l.trim() !== '')?.trim() ?? '';

// buildGo builds converge once, into a temporary folder, so that every
// round runs the same binary (and none of them pays for compiling).
function buildGo() {
  const dir = mkdtempSync(path.join(tmpdir(), 'converge-compare-'));
  const bin = path.join(dir, 'converge');
  process.stderr.write(`go build -o ${bin} ./cmd/converge (in ${repoRoot})\n`);
  const r = spawnSync('go', ['build', '-o', bin, './cmd/converge'], {
    cwd: repoRoot,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.error) return { dir, error: r.error.message };
  if (r.status !== 0) return { dir, error: firstLine(r.stderr) || `go build: exit status ${r.status}` };
  return { dir, bin };
}

// runGo returns { results } or { error } with the first line of what went
// wrong, so the node table is still printed while the Go side does not work.
function runGo(opts, build) {
  if (opts.goJson) return { results: parseLines(readFileSync(opts.goJson, 'utf8')).map(asConverge) };
  if (build.error) return { error: build.error };
  process.stderr.write(`converge bench trace --runs ${opts.runs} ...\n`);
  const r = spawnSync(build.bin, ['bench', 'trace', '--runs', String(opts.runs), ...opts.files], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
  });
  if (r.error) return { error: r.error.message };
  const results = parseLines(r.stdout).map(asConverge);
  if (r.status !== 0) return { error: firstLine(r.stderr) || `exit status ${r.status}`, results };
  if (results.length === 0) return { error: firstLine(r.stderr) || 'no JSON lines on stdout' };
  return { results };
}

const asConverge = (x) => ({ ...x, engine: CONVERGE });

function runNode(opts) {
  if (opts.nodeJson) return parseLines(readFileSync(opts.nodeJson, 'utf8'));
  const args = ['--expose-gc', path.join(scriptDir, 'traces.mjs'), '--runs', String(opts.runs)];
  if (opts.engines) args.push('--engines', opts.engines);
  const r = spawnSync(process.execPath, [...args, ...opts.files], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`traces.mjs exited with status ${r.status}`);
  return parseLines(r.stdout);
}

function fmtNumber(key, v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '—';
  if (key.endsWith('Ms')) return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return Math.round(v).toLocaleString('en-US');
}

// ratio is engine ÷ converge, or '' where it means nothing.
export function ratio(engineValue, convergeValue) {
  if (typeof engineValue !== 'number' || typeof convergeValue !== 'number') return '';
  if (!(convergeValue > 0)) return '';
  const r = engineValue / convergeValue;
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

// renderTable builds the markdown. results: every JSON line of both sides
// (converge's marked engine "converge"); goError: why the Go side is missing.
export function renderTable(results, { goError = null, engines = null } = {}) {
  const haveConverge = results.some((r) => r.engine === CONVERGE);
  const engineNames = engines ?? [...new Set(results.filter((r) => r.engine !== CONVERGE).map((r) => r.engine))];
  const columns = haveConverge ? [CONVERGE, ...engineNames] : engineNames;
  const traces = [...new Set(results.map((r) => r.trace))];
  const find = (engine, trace) => results.find((r) => r.engine === engine && r.trace === trace);

  const lines = [];
  lines.push(`| trace | metric | ${columns.join(' | ')} |`);
  lines.push(`|---|---|${columns.map(() => '---:').join('|')}|`);
  const notes = [];
  for (const trace of traces) {
    const conv = haveConverge ? find(CONVERGE, trace) : undefined;
    const convOk = conv?.ok === true;
    const opsSeen = new Set(columns.map((c) => find(c, trace)?.ops).filter((o) => o !== undefined));
    if (opsSeen.size > 1) notes.push(`${trace}: the sides count different ops (${[...opsSeen].join(' vs ')})`);
    const ops = [...opsSeen][0];
    const label = ops === undefined ? trace : `${trace} (${ops.toLocaleString('en-US')} ops)`;
    for (const [key, name] of METRICS) {
      const cells = columns.map((c) => {
        const r = find(c, trace);
        if (!r) return 'not run';
        if (!r.ok) return 'failed';
        const fig = fmtNumber(key, r[key]);
        if (c === CONVERGE || !convOk) return fig;
        const q = ratio(r[key], conv[key]);
        return q ? `${fig} (${q})` : fig;
      });
      lines.push(`| ${key === METRICS[0][0] ? label : ''} | ${name} | ${cells.join(' | ')} |`);
    }
    for (const c of columns) {
      const r = find(c, trace);
      if (r && !r.ok) notes.push(`${c} on ${trace} failed: ${r.error ?? 'final text differs from endContent'}`);
    }
  }
  const out = [];
  if (haveConverge) {
    out.push('Figures are medians; in parentheses, engine ÷ converge (above 1: converge is faster or smaller).');
  } else {
    out.push('Figures are medians.');
  }
  out.push('');
  out.push(...lines);
  if (goError) notes.unshift(`Go side failed, converge not shown: ${goError}`);
  if (notes.length) {
    out.push('');
    for (const n of notes) out.push(`- ${n}`);
  }
  return out.join('\n') + '\n';
}

// combineRounds merges the results of several rounds (each a list of JSON
// lines of both sides) into one line per (engine, trace): each figure the
// median of the rounds' figures, ok only if every round was. It also
// returns, per trace, each engine's apply ratio (engine ÷ converge) in
// every round where both sides ran, in round order.
export function combineRounds(rounds) {
  const groups = new Map();
  rounds.forEach((results, k) => {
    for (const r of results) {
      const key = `${r.engine}\u0000${r.trace}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push({ ...r, round: k });
    }
  });
  const combined = [];
  for (const lines of groups.values()) {
    const { round: _, ...out } = lines[0];
    const missing = lines.length < rounds.length;
    out.ok = !missing && lines.every((l) => l.ok === true);
    for (const [key] of METRICS) {
      const xs = lines.map((l) => l[key]).filter((v) => typeof v === 'number' && Number.isFinite(v));
      if (xs.length) out[key] = median(xs);
    }
    if (!out.ok) out.error = lines.find((l) => l.error)?.error ?? (missing ? 'missing from a round' : out.error);
    combined.push(out);
  }
  const ratios = [];
  const traces = [...new Set(combined.map((r) => r.trace))];
  for (const trace of traces) {
    const engines = [...new Set(combined.filter((r) => r.trace === trace && r.engine !== CONVERGE).map((r) => r.engine))];
    for (const engine of engines) {
      const per = rounds.map((results) => {
        const c = results.find((r) => r.engine === CONVERGE && r.trace === trace);
        const e = results.find((r) => r.engine === engine && r.trace === trace);
        return c?.ok && e?.ok && c.applyMs > 0 ? e.applyMs / c.applyMs : null;
      });
      if (per.some((x) => x !== null)) ratios.push({ trace, engine, ratios: per });
    }
  }
  return { results: combined, ratios };
}

function main(argv) {
  const opts = parseArgs(argv);
  const build = opts.goJson ? {} : buildGo();
  const rounds = [];
  let goError = null;
  try {
    for (let k = 0; k < opts.rounds; k++) {
      if (opts.rounds > 1) process.stderr.write(`round ${k + 1} of ${opts.rounds}\n`);
      const go = runGo(opts, build);
      goError ??= go.error ?? null;
      rounds.push([...(go.results ?? []), ...runNode(opts)]);
    }
  } finally {
    if (build.dir) rmSync(build.dir, { recursive: true, force: true });
  }
  const engines = opts.engines ? opts.engines.split(',').filter(Boolean) : null;
  if (opts.rounds === 1) {
    process.stdout.write(renderTable(rounds[0], { goError, engines }));
    return;
  }
  const { results, ratios } = combineRounds(rounds);
  let md = renderTable(results, { goError, engines });
  md += `\nThe median of ${opts.rounds} rounds (each the median of ${opts.runs} runs). Apply, engine ÷ converge, round by round:\n\n`;
  for (const { trace, engine, ratios: per } of ratios) {
    md += `- ${trace}, ${engine}: ${per.map((x) => (x === null ? '—' : `${x.toFixed(2)}×`)).join(', ')}\n`;
  }
  process.stdout.write(md);
}

if (process.argv[1] && path.resolve(process.argv[1]) === scriptPath) main(process.argv.slice(2));
