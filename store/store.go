package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/converge-sync/converge/causal"
)

// Errors every backend returns, for errors.Is.
var (
	// ErrNotFound: no document by that ID.
	ErrNotFound = errors.New("store: not found")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrLocked: another process holds the store (one writer per folder).
	ErrLocked = errors.New("store: locked by another process")
	// ErrConflict: a change ID already held with different bytes. Two
	// different changes must never share an ID; this is a broken or hostile
	// peer, and the store keeps what it had.
	ErrConflict = errors.New("store: different change with the same ID")
	// ErrCorrupt: stored bytes failed their check.
	ErrCorrupt = errors.New("store: corrupt data")
	// ErrStaleSnapshot: a snapshot whose version does not contain the
	// version of the snapshot already held. Saving it would lose changes.
	ErrStaleSnapshot = errors.New("store: snapshot does not contain the one held")
	// ErrBadChangeID: a change ID (or a snapshot version entry) with the
	// zero actor, or a sequence number outside 1..MaxSeq.
	ErrBadChangeID = errors.New("store: bad change ID")
)

// MaxSeq is the largest sequence number a store accepts. SQL backends keep
// sequence numbers in signed 64-bit columns, and every backend must accept
// the same changes.
const MaxSeq = 1<<63 - 1

// CorruptError names the document whose stored data is damaged, so that an
// operator knows what to restore; the other documents stay readable.
type CorruptError struct {
	Doc    string
	Detail string
	Err    error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("store: document %q is corrupt: %s", e.Doc, e.Detail)
}

func (e *CorruptError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrCorrupt, e.Err}
	}
	return []error{ErrCorrupt}
}

// Change is one encoded change as the store keeps it.
type Change struct {
	ID    causal.ChangeID
	Bytes []byte
	// Origin names who sent the change, for audit: the subject of the
	// token of the connection it arrived on. Empty for a change made on
	// this replica or whose sender is unknown. Append records it (see
	// Origins); Changes and Load leave it empty.
	Origin string
}

// Origin says who sent a run of one actor's changes: the changes of Actor
// with sequence numbers First through Last (inclusive) arrived from
// Subject.
type Origin struct {
	Actor       causal.ActorID
	First, Last uint64
	Subject     string
}

// Snapshot is a saved copy of a whole document (encoded with its history)
// and the version it holds.
type Snapshot struct {
	Version causal.VersionVector
	Bytes   []byte
}

// DocInfo describes one stored document.
type DocInfo struct {
	ID         string
	Version    causal.VersionVector // every change held: in the snapshot or the log
	LogChanges int                  // changes in the log not yet folded into the snapshot
	Bytes      int64                // bytes held: the snapshot's plus the logged changes' (backend overhead not counted)
}

// Store keeps documents durably. Implementations must be safe for
// concurrent use by multiple goroutines. Document IDs are non-empty UTF-8
// strings of at most 1024 bytes and may contain '/' (ErrBadDocID otherwise).
//
// A store keeps no reference to the slices and vectors it is given (callers
// may reuse their buffers), and what it returns belongs to the caller.
//
// A call whose context is already done returns the context's error and
// changes nothing. A write interrupted by its context is rolled back whole.
type Store interface {
	// Append adds changes to doc's log (creating the document if new), and
	// returns only once they are durable: after a crash, every change of a
	// call that returned nil is there. A call is atomic: all its changes are
	// stored or none. Appending a change whose ID is already held (in the log
	// or the snapshot) with the same bytes is a no-op; with different bytes
	// it fails with ErrConflict and stores nothing of that call.
	//
	// A change that the snapshot includes is held too, but its bytes were
	// folded away and cannot be compared: appending it again is a no-op.
	// Change IDs must name a non-zero actor and a Seq in 1..MaxSeq
	// (ErrBadChangeID). An Append of no changes does nothing and creates no
	// document.
	//
	// A change with an Origin that the call stores (not one already held)
	// has its origin recorded in the same transaction, for Origins.
	Append(ctx context.Context, doc string, changes []Change) error

	// Origins returns who sent doc's changes, as recorded by Append: runs
	// sorted by actor and then First, consecutive changes of one actor
	// from one subject in one run. Changes appended without an Origin
	// appear in no run. Origins outlive SaveSnapshot (an audit trail must
	// not depend on compaction) and go with Delete. A document never
	// written gives ErrNotFound.
	Origins(ctx context.Context, doc string) ([]Origin, error)

	// Changes returns doc's logged changes that since does not include, in
	// the order they were appended. Changes already folded into the snapshot
	// are not returned (read them from the snapshot). The cost is
	// proportional to what is returned, not to the log's size. A document
	// never written gives ErrNotFound.
	Changes(ctx context.Context, doc string, since causal.VersionVector) ([]Change, error)

	// Load returns what rebuilds doc: its latest snapshot (nil if none) and
	// the logged changes not included in it, in append order. A document
	// never written gives ErrNotFound.
	Load(ctx context.Context, doc string) (*Snapshot, []Change, error)

	// SaveSnapshot stores snap as doc's saved copy, replacing any older one,
	// and removes from the log every change that snap.Version includes (they
	// are in the snapshot now). Atomic and durable on return. A snapshot whose
	// version does not contain the previous snapshot's version is refused
	// with ErrStaleSnapshot (the store never goes back in time). Saving a
	// snapshot of a new document creates it.
	SaveSnapshot(ctx context.Context, doc string, snap Snapshot) error

	// Version returns every change held for doc, in the snapshot or the log.
	// A document never written gives ErrNotFound.
	Version(ctx context.Context, doc string) (causal.VersionVector, error)

	// Docs lists the stored documents, sorted by ID.
	Docs(ctx context.Context) ([]DocInfo, error)

	// Delete removes doc entirely and, in the same transaction, counts the
	// deletion (see Deletions). Deleting a document the store does not
	// hold changes nothing and is not an error.
	Delete(ctx context.Context, doc string) error

	// Deletions returns how many times Delete has removed doc from this
	// store: 0 for a document never deleted, or never written. The count
	// is a tombstone: it outlives the document (and a document of the same
	// ID written afterwards, which a later Delete counts again), survives
	// restarts, and is all the store keeps of a deleted document. A
	// replica numbers a document's incarnations by it, so that its
	// changes to a document written again after a deletion never reuse
	// the change IDs of the old one, which other replicas still hold.
	// Tombstones are not documents: Docs does not list them.
	Deletions(ctx context.Context, doc string) (uint64, error)

	// Close releases the store; later calls fail with ErrClosed.
	Close() error
}

// MaxDocIDLen is the longest document ID a store accepts.
const MaxDocIDLen = 1024

// ErrBadDocID: a document ID that is empty, too long, or not UTF-8.
var ErrBadDocID = errors.New("store: document IDs are 1 to 1024 bytes of UTF-8")
