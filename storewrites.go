package converge

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/converge-sync/converge/store"
)

// StoreWrites says how the replica's writes to its store have gone: what
// a health check needs to tell a working store from one that takes reads
// but no longer writes (a full disk, a file turned read-only).
type StoreWrites struct {
	// Failed counts the writes that failed since Open. A write refused for
	// what it was given (store.ErrConflict, a bad ID), cut short by its
	// caller's context, or made after Close is not the store failing and
	// is not counted.
	Failed uint64
	// LastError is the last failure if no write has succeeded after it,
	// nil otherwise; LastErrorTime is when it happened (the replica's
	// clock, see WithClock).
	LastError     error
	LastErrorTime time.Time
}

// StoreWrites reports how the replica's store writes have gone.
func (r *Replica) StoreWrites() StoreWrites {
	r.writes.mu.Lock()
	defer r.writes.mu.Unlock()
	return r.writes.StoreWrites
}

// writeLog follows the outcomes of the replica's store writes.
type writeLog struct {
	mu sync.Mutex
	StoreWrites
	// failing is LastError != nil, read without the lock: a write that
	// succeeds while nothing failed (every write, on a healthy store)
	// records nothing.
	failing atomic.Bool
}

// appendToStore is store.Append, followed.
func (r *Replica) appendToStore(ctx context.Context, doc string, changes []store.Change) error {
	err := r.st.Append(ctx, doc, changes)
	r.wrote(ctx, err)
	return err
}

// saveSnapshot is store.SaveSnapshot, followed.
func (r *Replica) saveSnapshot(ctx context.Context, doc string, snap store.Snapshot) error {
	err := r.st.SaveSnapshot(ctx, doc, snap)
	r.wrote(ctx, err)
	return err
}

// wrote records the outcome of one store write.
func (r *Replica) wrote(ctx context.Context, err error) {
	if err == nil && !r.writes.failing.Load() || err != nil && !storeFailed(ctx, err) {
		return
	}
	r.writes.mu.Lock()
	defer r.writes.mu.Unlock()
	if err == nil {
		r.writes.LastError = nil
		r.writes.failing.Store(false)
		return
	}
	r.writes.Failed++
	r.writes.LastError, r.writes.LastErrorTime = err, r.now()
	r.writes.failing.Store(true)
}

// storeFailed reports whether a write's error is the store's failure
// rather than a refusal of its input, or the caller going away.
func storeFailed(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	for _, refusal := range []error{store.ErrConflict, store.ErrBadChangeID, store.ErrBadDocID, store.ErrStaleSnapshot, store.ErrClosed} {
		if errors.Is(err, refusal) {
			return false
		}
	}
	return true
}
