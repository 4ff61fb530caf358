// Package causal holds the identities and clocks that every other layer of
// converge agrees on: actor IDs, operation IDs (a Lamport counter plus an
// actor), change IDs (an actor plus its per-actor sequence number), and
// version vectors.
//
// It depends on the standard library only and does no I/O, so that the pure
// core (crdt, encoding, syncproto) can build for js/wasm and wasip1.
package causal
