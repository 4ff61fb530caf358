// Package encoding holds converge's versioned binary formats: one for a
// single change (the unit of sync and storage), a stateful stream form of it
// for a sync connection, and one for a whole document with its full history.
//
// The byte layout is specified in docs/format.md; this package is the
// reference implementation of that text. Everything here is pure (no I/O, no
// goroutines, no clock) so that it builds for js/wasm and wasip1.
//
// Decoders treat their input as hostile: every length is checked against the
// bytes that remain before anything is allocated, every checksum is verified,
// and every failure is an error that errors.Is matches against one of the
// sentinels below, wrapped in a *FormatError that says where it happened.
package encoding
