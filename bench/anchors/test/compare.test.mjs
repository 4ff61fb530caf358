// Checks the comparison table: the ratios, and what is printed when the Go
// side is missing or an engine failed. Run with: npm test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderTable, parseLines, ratio, combineRounds } from '../compare.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

const conv = { engine: 'converge', trace: 't1', ops: 10, applyMs: 100, encodeMs: 4, loadMs: 8, bytes: 1000, heapBytes: 2000, ok: true };
const yjs = { engine: 'yjs', trace: 't1', ops: 10, applyMs: 250, encodeMs: 2, loadMs: 8, bytes: 3000, heapBytes: 30000, ok: true };
const loro = { engine: 'loro', trace: 't1', ops: 10, applyMs: 50, encodeMs: 1, loadMs: 1, bytes: 500, heapBytes: 1000, ok: true };

// rowCells returns the cells of the row for `metric` (trace label ignored).
function rowCells(md, metric) {
  const row = md.split('\n').find((l) => l.split('|')[2]?.trim() === metric);
  assert.ok(row, `no row for ${metric} in\n${md}`);
  return row.split('|').slice(3, -1).map((c) => c.trim());
}

test('ratio is engine over converge', () => {
  assert.equal(ratio(250, 100), '2.50×');
  assert.equal(ratio(50, 100), '0.50×');
  assert.equal(ratio(1234, 100), '12.3×');
  assert.equal(ratio(5, 0), '');
  assert.equal(ratio(undefined, 3), '');
});

test('table shows each figure with its ratio to converge', () => {
  const md = renderTable([conv, yjs, loro]);
  assert.match(md.split('\n').find((l) => l.startsWith('| trace')), /\| converge \| yjs \| loro \|/);
  assert.deepEqual(rowCells(md, 'apply ms'), ['100', '250 (2.50×)', '50.0 (0.50×)']);
  assert.deepEqual(rowCells(md, 'encode ms'), ['4.00', '2.00 (0.50×)', '1.00 (0.25×)']);
  assert.deepEqual(rowCells(md, 'bytes'), ['1,000', '3,000 (3.00×)', '500 (0.50×)']);
  assert.deepEqual(rowCells(md, 'heap bytes'), ['2,000', '30,000 (15.0×)', '1,000 (0.50×)']);
  assert.match(md, /t1 \(10 ops\)/);
  assert.doesNotMatch(md, /Go side failed/);
});

test('without the Go side: node engines alone and a one-line note', () => {
  const md = renderTable([yjs, loro], { goError: 'stat ./cmd/converge: directory not found' });
  assert.doesNotMatch(md, /converge \|/);
  assert.deepEqual(rowCells(md, 'apply ms'), ['250', '50.0']);
  const notes = md.split('\n').filter((l) => l.startsWith('- '));
  assert.deepEqual(notes, ['- Go side failed, converge not shown: stat ./cmd/converge: directory not found']);
});

test('a failed engine or converge run is marked, with no ratio', () => {
  const bad = { engine: 'loro', trace: 't1', ops: 10, ok: false, error: 'replica 1: final text differs from endContent' };
  let md = renderTable([conv, yjs, bad]);
  assert.deepEqual(rowCells(md, 'apply ms'), ['100', '250 (2.50×)', 'failed']);
  assert.match(md, /- loro on t1 failed: replica 1: final text differs/);
  // converge itself failed: figures are shown but ratios to it would be lies.
  md = renderTable([{ ...conv, ok: false, error: 'boom' }, yjs]);
  assert.deepEqual(rowCells(md, 'apply ms'), ['failed', '250']);
});

test('different op counts between sides are reported', () => {
  const md = renderTable([{ ...conv, ops: 11 }, yjs]);
  assert.match(md, /t1: the sides count different ops \(11 vs 10\)/);
});

test('parseLines keeps JSON lines only', () => {
  assert.deepEqual(parseLines('building...\n{"trace":"a","ok":true}\n{broken\n'), [{ trace: 'a', ok: true }]);
});

test('compare.mjs end to end with a fake Go side', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'compare-test-'));
  try {
    const goFile = path.join(dir, 'go.jsonl');
    const nodeFile = path.join(dir, 'node.jsonl');
    // The Go side has no engine key; compare.mjs must treat it as converge.
    const { engine: _, ...goLine } = conv;
    writeFileSync(goFile, 'compiling\n' + JSON.stringify(goLine) + '\n');
    writeFileSync(nodeFile, [yjs, loro].map((x) => JSON.stringify(x)).join('\n') + '\n');
    const r = spawnSync(process.execPath, [path.join(here, '..', 'compare.mjs'), '--go-json', goFile, '--node-json', nodeFile], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(rowCells(r.stdout, 'apply ms'), ['100', '250 (2.50×)', '50.0 (0.50×)']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rounds combine into medians, with each round\'s apply ratio', () => {
  const rounds = [
    [conv, yjs],
    [{ ...conv, applyMs: 130 }, { ...yjs, applyMs: 240 }],
    [{ ...conv, applyMs: 90 }, { ...yjs, applyMs: 270 }],
  ];
  const { results, ratios } = combineRounds(rounds);
  const c = results.find((r) => r.engine === 'converge');
  const y = results.find((r) => r.engine === 'yjs');
  assert.equal(c.applyMs, 100);
  assert.equal(y.applyMs, 250);
  assert.equal(c.ok, true);
  assert.deepEqual(
    ratios.map((r) => ({ ...r, ratios: r.ratios.map((x) => x.toFixed(2)) })),
    [{ trace: 't1', engine: 'yjs', ratios: ['2.50', '1.85', '3.00'] }],
  );
  assert.deepEqual(rowCells(renderTable(results), 'apply ms'), ['100', '250 (2.50×)']);
});

test('a round that failed or lacks a side fails the combined line', () => {
  const failed = { ...conv, ok: false, error: 'boom' };
  let { results, ratios } = combineRounds([[conv, yjs], [failed, yjs]]);
  assert.equal(results.find((r) => r.engine === 'converge').ok, false);
  assert.equal(results.find((r) => r.engine === 'converge').error, 'boom');
  assert.deepEqual(ratios[0].ratios.map((x) => x && x.toFixed(2)), ['2.50', null]);
  ({ results } = combineRounds([[conv, yjs], [conv]]));
  assert.equal(results.find((r) => r.engine === 'yjs').ok, false);
  assert.match(renderTable(results), /yjs on t1 failed: missing from a round/);
});
