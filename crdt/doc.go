// Package crdt is converge's document model: JSON-like documents (maps,
// lists, text, counters and scalars, nested freely) that many replicas edit
// concurrently and offline and that always converge.
//
// A Doc is a pure state machine in the style of etcd's raft: it is handed
// changes (local ones made through a Txn, remote ones through Apply) and
// returns what happened (the Change to persist and send, the Patches to show).
// It does no I/O, starts no goroutines and never reads the clock; the wall
// time of a change is passed in by the caller.
//
// The merge rules are written down in docs/semantics.md, one rule per
// section, each with a table test in semantics_test.go. In short: a map key
// or list element is a multi-value register (concurrent writes are all kept,
// the one with the highest OpID is shown, a later write that saw them all
// resolves them); a delete removes only what it saw, so a concurrent write
// survives it; lists and text order concurrent inserts with FugueMax, which
// never interleaves two runs of typing; counters add up.
package crdt
