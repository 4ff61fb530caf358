// Drives every engine through traces.mjs on tiny handmade traces: a correct
// replay must be reported ok, a wrong endContent must be reported as failure.
// Run with: npm test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const traces = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'traces.mjs');
const ENGINES = ['yjs', 'yjs-nogc', 'loro', 'automerge', 'diamond-types', 'json-joy'];

// Three agents diverge from "abc" and merge back. Agent 1's txn 5 merges three
// versions at once but not txn 4, which it has not seen: if a replay handed it
// everything made so far, Z would land after c instead of before it.
const concurrent = {
  endContent: 'YZcX!',
  numAgents: 3,
  txns: [
    { agent: 0, parents: [], patches: [[0, 0, 'abc']] }, // abc
    { agent: 1, parents: [0], patches: [[3, 0, 'X']] }, // abcX
    { agent: 2, parents: [0], patches: [[0, 0, 'Y']] }, // Yabc
    { agent: 0, parents: [0], patches: [[1, 1, '']] }, // ac
    { agent: 0, parents: [3], patches: [[0, 1, '']] }, // c
    { agent: 1, parents: [1, 2, 3], patches: [[2, 0, 'Z']] }, // YacX -> YaZcX
    { agent: 2, parents: [5], patches: [[5, 0, '!']] }, // YaZcX!
  ],
};

const sequential = {
  startContent: '',
  endContent: 'hello world',
  txns: [
    { patches: [[0, 0, 'helo']] },
    { patches: [[3, 0, 'l'], [5, 0, ' wrld']] },
    { patches: [[7, 0, 'o'], [9, 2, 'ld']] },
  ],
};

function run(files) {
  const r = spawnSync(process.execPath, [traces, '--runs', '1', '--warmup', '0', ...files], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l));
}

test('every engine replays small sequential and concurrent traces', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'traces-test-'));
  try {
    const seq = path.join(dir, 'tiny-seq.json');
    const conc = path.join(dir, 'tiny-concurrent.json.gz');
    writeFileSync(seq, JSON.stringify(sequential));
    writeFileSync(conc, gzipSync(JSON.stringify(concurrent)));
    const lines = run([seq, conc]);
    assert.equal(lines.length, 2 * ENGINES.length);
    for (const l of lines) {
      assert.equal(l.ok, true, `${l.engine} on ${l.trace}: ${l.error}`);
      assert.equal(l.ops, l.trace === 'tiny-seq' ? 5 : 7);
      // heapBytes of a tiny document is within the measurement's noise, and
      // can even be negative; only its presence is checked here.
      assert.ok(l.bytes > 0 && Number.isFinite(l.heapBytes) && l.applyMs >= 0, JSON.stringify(l));
    }
    assert.deepEqual([...new Set(lines.map((l) => l.engine))], ENGINES);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a wrong endContent is reported, not hidden', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'traces-test-'));
  try {
    const file = path.join(dir, 'wrong.json');
    writeFileSync(file, JSON.stringify({ ...concurrent, endContent: 'YcZX!' }));
    for (const l of run([file])) {
      assert.equal(l.ok, false, l.engine);
      assert.match(l.error, /differs from endContent/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a trace whose parent points forward is refused', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'traces-test-'));
  try {
    const file = path.join(dir, 'bad.json');
    const bad = structuredClone(concurrent);
    bad.txns[1].parents = [4];
    writeFileSync(file, JSON.stringify(bad));
    for (const l of run([file])) {
      assert.equal(l.ok, false);
      assert.match(l.error, /parent 4 is not an earlier txn/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
