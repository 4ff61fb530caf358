// Package trace reads the editing traces that converge is benchmarked and
// checked against: real character-by-character editing histories, kept as
// JSON (usually gzipped) beside the project, not in it.
//
// A sequential trace is a list of transactions, each a list of patches
// [pos, numDeleted, inserted]; applied in order to an empty text they give the
// trace's end content. A concurrent trace adds, per transaction, the agent
// (replica) that made it and its parents, the earlier transactions it comes
// causally after; positions are relative to that agent's document at that
// point, so replaying it needs a CRDT. Positions count Unicode code points.
//
// Load decodes and validates a file's structure; ApplySequential is the
// obviously correct replay of a sequential trace on a plain rune slice, the
// oracle that engines are checked against, and the check that every position
// is in range.
package trace
