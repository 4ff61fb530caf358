// Adapters that drive each engine through its public API.
//
// Every adapter has the same shape so that one replay loop (traces.mjs) drives
// them all and no engine gets a hand-tuned path:
//
//   setup()                 state shared by all replicas of one document (for
//                           engines where replicas must start from one common
//                           root object, or they would create conflicting roots)
//   replica(shared, agent)  a fresh replica for agent number `agent`
//   txn(r, patches)         apply one trace transaction as one engine
//                           transaction / commit (where the engine has one)
//   txnDelta(r, patches)    same, and return the bytes another replica needs
//                           to receive exactly this transaction
//   merge(r, deltas)        apply other replicas' deltas, given in causal order
//   text(r)                 the replica's current text
//   encode(r)               the whole document with its history, in the
//                           engine's own format
//   load(bytes)             decode those bytes until the text can be read;
//                           returns { text, handle } (handle keeps it alive)
//   free(x)                 release wasm-side memory of a replica or handle
//   dispose(shared)         (optional) release what setup() made
//
// Patches are [pos, numDeleted, inserted] with positions in Unicode code
// points. All engines here index strings by UTF-16 code units except
// diamond-types (code points); traces.mjs refuses traces with characters
// outside the BMP, where the two differ, instead of converting silently.

import * as Y from 'yjs';
import { LoroDoc } from 'loro-crdt';
import * as A from '@automerge/automerge';
import dt from 'diamond-types-node';
import { Model } from 'json-joy/lib/json-crdt/index.js';
import { s } from 'json-joy/lib/json-crdt-patch/index.js';
import { Patch } from 'json-joy/lib/json-crdt-patch/index.js';
import { Log } from 'json-joy/lib/json-crdt/log/Log.js';
import { LogEncoder } from 'json-joy/lib/json-crdt/log/codec/LogEncoder.js';
import { LogDecoder } from 'json-joy/lib/json-crdt/log/codec/LogDecoder.js';
import { logEncoderOpts } from 'json-joy/lib/json-crdt/log/codec/logEncoderOpts.js';
import { logDecoderOpts } from 'json-joy/lib/json-crdt/log/codec/logDecoderOpts.js';

// Fixed replica identities keep encoded sizes the same from run to run (random
// IDs vary in length under varint encodings).
const agentNumber = (agent) => agent + 1;

function yjsAdapter(name, gc) {
  return {
    name,
    pkg: 'yjs',
    setup: () => null,
    replica(_shared, agent) {
      const doc = new Y.Doc({ gc });
      doc.clientID = agentNumber(agent);
      return { doc, text: doc.getText('text'), last: null, listening: false };
    },
    txn(r, patches) {
      r.doc.transact(() => {
        for (const [pos, del, ins] of patches) {
          if (del > 0) r.text.delete(pos, del);
          if (ins !== '') r.text.insert(pos, ins);
        }
      });
    },
    txnDelta(r, patches) {
      // One 'update' event per transaction: the bytes yjs itself would send.
      // Listening only from the first delta on keeps sequential replays free
      // of the cost of encoding updates nobody reads.
      if (!r.listening) {
        r.doc.on('update', (u) => { r.last = u; });
        r.listening = true;
      }
      this.txn(r, patches);
      return r.last;
    },
    merge(r, deltas) {
      for (const d of deltas) Y.applyUpdate(r.doc, d);
    },
    text: (r) => r.text.toString(),
    encode: (r) => Y.encodeStateAsUpdate(r.doc),
    load(bytes) {
      const doc = new Y.Doc({ gc });
      Y.applyUpdate(doc, bytes);
      return { text: doc.getText('text').toString(), handle: doc };
    },
    free: () => {},
  };
}

const loro = {
  name: 'loro',
  pkg: 'loro-crdt',
  setup: () => null,
  replica(_shared, agent) {
    const doc = new LoroDoc();
    doc.setPeerId(agentNumber(agent));
    return { doc, text: doc.getText('text') };
  },
  txn(r, patches) {
    for (const [pos, del, ins] of patches) {
      if (del > 0) r.text.delete(pos, del);
      if (ins !== '') r.text.insert(pos, ins);
    }
    r.doc.commit();
  },
  txnDelta(r, patches) {
    // subscribeLocalUpdates is loro's documented way to get the bytes of each
    // local commit for syncing (the callback runs during commit). It is much
    // cheaper than export({ mode: 'update', from }) after every commit.
    if (!r.unsubscribe) r.unsubscribe = r.doc.subscribeLocalUpdates((u) => { r.last = u; });
    this.txn(r, patches);
    return r.last;
  },
  merge(r, deltas) {
    // importBatch applies several updates in one state diff; on the
    // concurrent trace it is about twice as fast as importing one by one.
    if (deltas.length === 1) r.doc.import(deltas[0]);
    else r.doc.importBatch(deltas);
  },
  text: (r) => r.text.toString(),
  // A snapshot holds the full op log plus the current state.
  encode: (r) => r.doc.export({ mode: 'snapshot' }),
  load(bytes) {
    const doc = LoroDoc.fromSnapshot(bytes);
    const t = doc.getText('text');
    const text = t.toString();
    t.free();
    return { text, handle: doc };
  },
  // Every handle must be freed, the container and the subscription too: a
  // LoroText left to the finalizer keeps its document alive in wasm, and with
  // a few such documents around later runs got several times slower.
  free(x) {
    if (x.unsubscribe) x.unsubscribe();
    if (x.text) x.text.free();
    (x.doc ?? x).free();
  },
};

// Automerge actor IDs are hex strings.
const amActor = (n) => n.toString(16).padStart(2, '0').repeat(16);

const automerge = {
  name: 'automerge',
  pkg: '@automerge/automerge',
  // Every replica starts from one change that creates the text object; if each
  // replica created its own, they would be two conflicting values of `text`.
  setup: () => A.from({ text: '' }, { actor: amActor(0xff) }),
  dispose: (shared) => A.free(shared),
  replica(shared, agent) {
    return { doc: A.clone(shared, { actor: amActor(agentNumber(agent)) }) };
  },
  txn(r, patches) {
    r.doc = A.change(r.doc, (d) => {
      for (const [pos, del, ins] of patches) A.splice(d, ['text'], pos, del, ins);
    });
  },
  txnDelta(r, patches) {
    this.txn(r, patches);
    return A.getLastLocalChange(r.doc);
  },
  merge(r, deltas) {
    [r.doc] = A.applyChanges(r.doc, deltas);
  },
  text: (r) => r.doc.text,
  encode: (r) => A.save(r.doc),
  load(bytes) {
    const doc = A.load(bytes);
    return { text: doc.text, handle: doc };
  },
  free(x) {
    A.free(x.doc ?? x);
  },
};

// diamond-types has no transaction: each insert or delete is its own op run.
const diamond = {
  name: 'diamond-types',
  pkg: 'diamond-types-node',
  setup: () => null,
  replica(_shared, agent) {
    return { doc: new dt.Doc(`agent${agentNumber(agent)}`) };
  },
  txn(r, patches) {
    for (const [pos, del, ins] of patches) {
      if (del > 0) r.doc.del(pos, del);
      if (ins !== '') r.doc.ins(pos, ins);
    }
  },
  txnDelta(r, patches) {
    const before = r.doc.getLocalVersion();
    this.txn(r, patches);
    return r.doc.getPatchSince(before);
  },
  merge(r, deltas) {
    for (const d of deltas) r.doc.mergeBytes(d);
  },
  text: (r) => r.doc.get(),
  // toBytes writes the whole op log (diamond-types' native file format).
  encode: (r) => r.doc.toBytes(),
  load(bytes) {
    const doc = dt.Doc.fromBytes(bytes);
    return { text: doc.get(), handle: doc };
  },
  free(x) {
    (x.doc ?? x).free();
  },
};

// json-joy: a Model (the CRDT state) wrapped in a Log, which records every
// patch, so the saved file holds the full history as well as the state. Its
// session IDs must be at least 65536; lower ones are reserved.
const jjSession = (agent) => 100000 + agent;
const jsonJoy = {
  name: 'json-joy',
  pkg: 'json-joy',
  setup() {
    // The patch that creates the root string; every replica starts from it.
    const m = Model.create(s.str(''), jjSession(0xfff));
    return m.api.flush().toBinary();
  },
  replica(shared, agent) {
    const sid = jjSession(agentNumber(agent));
    const log = new Log(() => Model.create(undefined, sid));
    log.end.applyPatch(Patch.fromBinary(shared));
    return { log, str: log.end.api.str([]) };
  },
  txn(r, patches) {
    for (const [pos, del, ins] of patches) {
      if (del > 0) r.str.del(pos, del);
      if (ins !== '') r.str.ins(pos, ins);
    }
    // flush() turns the buffered operations into one patch; the Log keeps it.
    r.log.end.api.flush();
  },
  txnDelta(r, patches) {
    for (const [pos, del, ins] of patches) {
      if (del > 0) r.str.del(pos, del);
      if (ins !== '') r.str.ins(pos, ins);
    }
    // Deltas travel as bytes, as they would between two devices.
    return r.log.end.api.flush().toBinary();
  },
  merge(r, deltas) {
    for (const d of deltas) r.log.end.applyPatch(Patch.fromBinary(d));
  },
  text: (r) => r.log.end.view(),
  // The library's default log file layout: the view, the model (sidecar
  // encoding) and every patch in binary form, as a CBOR sequence.
  encode: (r) => new LogEncoder(logEncoderOpts).encode(r.log, { format: 'seq.cbor' }),
  load(bytes) {
    const { frontier } = new LogDecoder(logDecoderOpts).decode(bytes, {
      format: 'seq.cbor',
      frontier: true,
    });
    return { text: frontier.end.view(), handle: frontier };
  },
  free: () => {},
};

export const engines = new Map(
  [
    yjsAdapter('yjs', true),
    // gc:false keeps deleted text, which is what yjs needs to keep history
    // (snapshots, undo across sessions); the default discards it.
    yjsAdapter('yjs-nogc', false),
    loro,
    automerge,
    diamond,
    jsonJoy,
  ].map((e) => [e.name, e]),
);
