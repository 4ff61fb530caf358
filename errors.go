package converge

import (
	"errors"

	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/store"
)

// Errors for errors.Is. Errors from the document model and the store wrap
// theirs, so errors.Is(err, crdt.ErrOutOfRange) works too.
var (
	// ErrClosed: the replica was closed (Replica.Close).
	ErrClosed = errors.New("converge: replica is closed")
	// ErrNotFound: no value at a pointer (a missing key, an index that is
	// not a number), or a pointer that does not start with '/'.
	ErrNotFound = crdt.ErrNotFound
	// ErrWrongKind: the value at a pointer is not of the kind the call
	// needs (Splice on a scalar, Increment on a string, a step into a
	// text).
	ErrWrongKind = crdt.ErrWrongKind
	// ErrBadValue: a Go value that has no document equivalent (a channel, a
	// map with non-string keys, …), or a presence state that is not JSON or
	// is too large (Doc.SetPresence).
	ErrBadValue = crdt.ErrBadValue
	// ErrLocked: another process has the replica folder open.
	ErrLocked = store.ErrLocked
	// ErrEvicted: a Doc handle used for a change after Replica.Evict
	// unloaded it (or Replica.Delete deleted it); open the document again
	// with Replica.Doc.
	ErrEvicted = errors.New("converge: document was unloaded from memory; open it again")

	// ErrRolledBack: a merge brought changes of this replica's own actor
	// (its writer for the document) past the last one it made. It never
	// made them: its folder was restored from an older copy, or copied
	// and used on another device, and the changes it has made since carry
	// IDs that other replicas hold for different changes. Nothing of the
	// merge is kept; syncing the document stops on that connection. Open
	// a new replica (an empty folder) and sync it: the server and the
	// other devices hold everything this one synced.
	ErrRolledBack = errors.New("converge: this replica's folder was rolled back or copied")

	// ErrChangeTooLarge: a change over the replica's bound on one change
	// (WithMaxChangeSize); nothing of it was kept. Split it into smaller
	// changes (a long text inserted a part at a time), or keep large
	// blobs outside the document.
	ErrChangeTooLarge = errors.New("converge: change too large")
	// ErrBadDocID: an empty, too long, or non-UTF-8 document ID.
	ErrBadDocID = store.ErrBadDocID
	// ErrUnknownChange: a version or change ID (Doc.At, Doc.AtChange)
	// that names a change this replica does not hold.
	ErrUnknownChange = errors.New("converge: change not held by this replica")
	// ErrNotCausallyClosed: a version (Doc.At) that includes a change but
	// not one it depends on.
	ErrNotCausallyClosed = crdt.ErrNotCausallyClosed
)
