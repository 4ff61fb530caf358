// Package converge is the Go API of converge, a local-first sync engine.
//
// An application opens a Replica, a folder on the device holding its
// documents, and reads and edits them with no network:
//
//	r, err := converge.Open(ctx, dir)
//	doc, err := r.Doc(ctx, "notes/today")
//	err = doc.Change(ctx, func(tx *converge.Txn) error {
//		return tx.Set("/title", "Groceries")
//	})
//
// A change is durable on the device when Change returns (or, with
// WithBatchedWrites, when Flush returns). Documents merge with other
// replicas' changes deterministically and keep concurrent writes as
// conflicts for the application to show and resolve; the rules are in
// docs/semantics.md. Paths are JSON Pointers (RFC 6901).
//
// Doc.Subscribe reports every change as patches (local, or received from
// another replica); Doc.Conflicts lists concurrent writes to one value and
// Txn.Resolve keeps one. Doc.History lists the changes, and Doc.At and
// Doc.AtChange read the document as it was at a past version. Replica.Sync keeps a replica in sync with a
// converge server (or any replica answering with Replica.Serve) in the
// background; Doc.SetPresence shares who is where in a document. Doc.Save
// and Replica.Import carry a document as a file. Errors wrap the sentinels
// of this package (ErrNotFound, ErrWrongKind, …) for errors.Is.
//
// The lower layers are usable on their own: causal (IDs and clocks), crdt
// (the document model), encoding (the binary format) and store (durable
// storage).
package converge
