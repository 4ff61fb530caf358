// Package store is where replicas and servers keep documents durably: an
// append-only log of encoded changes per document, and a saved (compacted)
// copy of each document that the log is folded into.
//
// Store is the interface; its contract is in the method comments and is
// checked for every backend by store/storetest. Backends are sub-packages:
// store/sqlite (the embedded default) and store/memory (tests, simulation).
//
// A store holds bytes: it never decodes a change or a document. Each change
// arrives with its ChangeID, which is all the store needs to answer "what
// does this version lack".
package store
