// Package encoding holds converge's versioned binary formats: one for a
// single change (the unit of sync and storage), a stateful stream form of it
// for a sync connection, and one for a whole document with its full history.
//
// The byte layout is specified in docs/format.md; this package is the
// reference implementation of that text. Nothing here does I/O or reads a
// clock, so that it builds for js/wasm and wasip1. Two jobs use a second
// goroutine where a second processor can run it: saving a large document
// (save_parallel.go), and writing a History's log behind the document that
// appends to it (history_behind.go); on one processor both run on the
// caller's goroutine.
//
// Decoders treat their input as hostile: every length is checked against the
// bytes that remain before anything is allocated, every checksum is verified,
// and every failure is an error that errors.Is matches against one of the
// sentinels below, wrapped in a *FormatError that says where it happened.
package encoding
