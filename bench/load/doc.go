// Package load is a load generator for a converge sync server: many
// WebSocket clients spread over a few documents, each making a steady
// stream of edits, and the fan-out latency from an edit being made to its
// arrival at every other client of the document. It is the library behind
// `converge bench sync`.
//
// The clients speak the real protocol (syncproto.Session over
// transport/ws) to a real server, but are kept light so that one process
// can run a thousand of them without becoming what is measured: each holds
// a crdt document with the document's seed and its own edits only. What
// the others send is decoded (the protocol's change streams require it)
// but not applied; the server still merges, stores and forwards everything
// as it would for full replicas, since the edits of different clients are
// concurrent changes to the same text and map.
//
// Latency is recovered from the edits themselves: each edit puts the time
// it was made (nanoseconds on the generator's monotonic clock) into the
// document's map, so a receiver in the same process needs no shared table.
package load
