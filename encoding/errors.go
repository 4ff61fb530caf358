package encoding

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error a decoder returns matches exactly one of them
// with errors.Is.
var (
	// ErrBadMagic: the input does not start with the converge magic number,
	// or holds a different kind of object than the caller asked for.
	ErrBadMagic = errors.New("encoding: not a converge object (bad magic number)")
	// ErrUnsupportedVersion: the object was written by a format version this
	// decoder does not know. It is refused rather than guessed at.
	ErrUnsupportedVersion = errors.New("encoding: unsupported format version")
	// ErrChecksum: the bytes were damaged after they were written.
	ErrChecksum = errors.New("encoding: checksum mismatch")
	// ErrTruncated: the input ends before the object does.
	ErrTruncated = errors.New("encoding: truncated input")
	// ErrMalformed: the bytes are intact but do not follow the format, or
	// exceed a decoder limit.
	ErrMalformed = errors.New("encoding: malformed input")
	// ErrInvalid: the caller handed the encoder something it cannot write
	// (a history with missing dependencies or a duplicated change).
	ErrInvalid = errors.New("encoding: invalid input to encoder")
)

// FormatError says where decoding failed: the section and column (empty when
// not inside one) and the byte offset within that section's (uncompressed)
// data, or within the whole input when Section is empty.
type FormatError struct {
	Section string
	Column  string
	Offset  int
	Detail  string
	Err     error // one of the sentinels
}

func (e *FormatError) Error() string {
	where := ""
	if e.Section != "" {
		where = " in " + e.Section
		if e.Column != "" {
			where += "/" + e.Column
		}
	}
	msg := fmt.Sprintf("%v%s at offset %d", e.Err, where, e.Offset)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

func (e *FormatError) Unwrap() error { return e.Err }

func formatErr(kind error, section, column string, off int, format string, args ...any) *FormatError {
	return &FormatError{Section: section, Column: column, Offset: off, Detail: fmt.Sprintf(format, args...), Err: kind}
}
