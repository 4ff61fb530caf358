package crdt

import (
	"errors"
	"fmt"

	"github.com/converge-sync/converge/causal"
)

// Errors returned by the document model. Callers test for them with errors.Is.
var (
	// ErrInvalidChange: a remote change breaks the model's rules (an
	// impossible op ID, an op on an unknown container or element, a bad
	// value). Such a change is refused whole and the document is unchanged.
	ErrInvalidChange = errors.New("crdt: invalid change")
	// ErrNotFound: no container, key, element or path by that name.
	ErrNotFound = errors.New("crdt: not found")
	// ErrWrongKind: the operation does not fit the container (a text splice on
	// a map, a key on a list).
	ErrWrongKind = errors.New("crdt: wrong kind of container")
	// ErrOutOfRange: an index or length beyond the end of a list or text.
	ErrOutOfRange = errors.New("crdt: index out of range")
	// ErrBadValue: a value that cannot be written (an unknown kind, a
	// negative counter increment target, invalid UTF-8 in text).
	ErrBadValue = errors.New("crdt: bad value")
	// ErrTxnDone: a Txn used after its Change call returned, or a Change
	// started inside another one.
	ErrTxnDone = errors.New("crdt: transaction is not open")
	// ErrNotCausallyClosed: a version that names a change without the
	// changes it depends on.
	ErrNotCausallyClosed = errors.New("crdt: version is not causally closed")
)

// ChangeError says which change, and which op in it, was refused and why.
// It wraps ErrInvalidChange and, where there is one, the specific cause.
type ChangeError struct {
	Change causal.ChangeID
	Op     int // index of the offending op, or -1 for the change header
	Reason string
	Err    error
}

func (e *ChangeError) Error() string {
	where := "header"
	if e.Op >= 0 {
		where = fmt.Sprintf("op %d", e.Op)
	}
	msg := fmt.Sprintf("crdt: invalid change %s (%s): %s", e.Change, where, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *ChangeError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidChange, e.Err}
	}
	return []error{ErrInvalidChange}
}

// invalid builds an error for an op that breaks the rules; apply wraps it
// into a ChangeError with the change and op index.
type opError struct {
	reason string
	err    error
}

func (e *opError) Error() string { return e.reason }

func invalidOp(err error, format string, args ...any) error {
	return &opError{reason: fmt.Sprintf(format, args...), err: err}
}
