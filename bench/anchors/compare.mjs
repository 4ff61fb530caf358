#!/usr/bin/env node
// Runs converge (Go) and the other engines (traces.mjs) on the same traces,
// one after the other on this machine, and prints one markdown table with
// every figure and its ratio to converge's.
//
//   node compare.mjs [--runs N] [--engines a,b] [--go-json FILE] [--node-json FILE] [FILE...]
//
// --go-json / --node-json read a side's JSON lines from a file instead of
// running it (to re-render a table, or to test this script without Go).

import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultTraceFiles } from './cli.mjs';

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
    'usage: node compare.mjs [--runs N] [--engines a,b] [--go-json FILE] [--node-json FILE] [FILE...]\n',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { runs: 5, engines: null, goJson: null, nodeJson: null, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--runs') {
      opts.runs = Number(value());
      if (!Number.isInteger(opts.runs) || opts.runs < 1) usage('--runs must be a positive integer');
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

// runGo returns { results } or { error } with the first line of what went
// wrong, so the node table is still printed while the Go side does not work.
function runGo(opts) {
  if (opts.goJson) return { results: parseLines(readFileSync(opts.goJson, 'utf8')).map(asConverge) };
  process.stderr.write(`go run ./cmd/converge bench trace --runs ${opts.runs} ... (in ${repoRoot})\n`);
  const r = spawnSync('go', ['run', './cmd/converge', 'bench', 'trace', '--runs', String(opts.runs), ...opts.files], {
    cwd: repoRoot,
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

function main(argv) {
  const opts = parseArgs(argv);
  const go = runGo(opts);
  const node = runNode(opts);
  const engines = opts.engines ? opts.engines.split(',').filter(Boolean) : null;
  process.stdout.write(renderTable([...(go.results ?? []), ...node], { goError: go.error ?? null, engines }));
}

if (process.argv[1] && path.resolve(process.argv[1]) === scriptPath) main(process.argv.slice(2));
