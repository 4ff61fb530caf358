// Package seq is the sequence CRDT behind converge's lists and text.
//
// A sequence is an ordered set of elements, each named by the OpID of the
// operation that inserted it. Deleted elements stay as invisible tombstones,
// so that concurrent inserts next to them still find their place. Concurrent
// inserts are ordered by FugueMax (Weidner & Kleppmann, "The Art of the
// Fugue", 2023), which never interleaves two concurrent runs of typing; it is
// run here in the list form that Gentle calls YjsMod: every element records
// the neighbours it was inserted between (its left and right origins), and a
// remote insert scans forward from its left origin to find its place.
//
// Sequence is the interface the document model uses. Simple is the plain,
// obviously correct implementation: a slice of elements with linear scans. It
// is the oracle that faster engines are checked against on random histories.
package seq
