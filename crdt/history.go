package crdt

import (
	"fmt"
	"slices"

	"github.com/converge-sync/converge/causal"
)

// History keeps a document's applied changes. The Doc appends each change
// once, after applying it, in a causal order; it never modifies a change
// after appending it. Implementations may keep the changes as they are or
// encoded (see WithHistory); changes they return must not be modified.
type History interface {
	// Append records an applied change.
	Append(c *Change)
	// Len is the number of changes recorded.
	Len() int
	// All returns every change, in the order appended.
	All() []*Change
	// Since returns the changes that version v does not include, in the
	// order appended, at a cost proportional to how many there are.
	Since(v causal.VersionVector) []*Change
	// Get returns the change with the given ID.
	Get(id causal.ChangeID) (*Change, bool)
	// MaxOp returns the counter of the change's last op (see Change.MaxOp).
	MaxOp(id causal.ChangeID) (uint64, bool)
}

// ChangeCopier is implemented by a History whose Append keeps nothing of
// the *Change it is given (it encodes it, say) and returns true from
// CopiesChanges. A document with such a history builds the changes of Edit,
// which nobody else holds, in memory it reuses.
type ChangeCopier interface {
	CopiesChanges() bool
}

// SliceHistory is the plain History: the changes themselves, in a slice,
// with a per-actor index.
type SliceHistory struct {
	changes []*Change
	byActor map[causal.ActorID][]int32 // index in changes of seq 1, 2, …
}

// NewSliceHistory returns an empty SliceHistory.
func NewSliceHistory() *SliceHistory {
	return &SliceHistory{byActor: make(map[causal.ActorID][]int32)}
}

func (h *SliceHistory) Append(c *Change) {
	h.byActor[c.Actor] = append(h.byActor[c.Actor], int32(len(h.changes)))
	h.changes = append(h.changes, c)
}

func (h *SliceHistory) Len() int { return len(h.changes) }

func (h *SliceHistory) All() []*Change { return h.changes[:len(h.changes):len(h.changes)] }

func (h *SliceHistory) Since(v causal.VersionVector) []*Change {
	var idx []int32
	for actor, log := range h.byActor {
		if have := v[actor]; have < uint64(len(log)) {
			idx = append(idx, log[have:]...)
		}
	}
	slices.Sort(idx)
	out := make([]*Change, len(idx))
	for i, k := range idx {
		out[i] = h.changes[k]
	}
	return out
}

func (h *SliceHistory) Get(id causal.ChangeID) (*Change, bool) {
	log := h.byActor[id.Actor]
	if id.Seq == 0 || id.Seq > uint64(len(log)) {
		return nil, false
	}
	return h.changes[log[id.Seq-1]], true
}

func (h *SliceHistory) MaxOp(id causal.ChangeID) (uint64, bool) {
	c, ok := h.Get(id)
	if !ok {
		return 0, false
	}
	return c.MaxOp(), true
}

// Changes returns every applied change, in the order they were applied (a
// causal order: each after its dependencies). The changes must not be
// modified.
func (d *Doc) Changes() []*Change { return d.history.All() }

// ChangesSince returns the applied changes that the version since lacks, in
// causal order: exactly what a replica at that version needs. The cost is
// proportional to what is missing, not to the history's length.
func (d *Doc) ChangesSince(since causal.VersionVector) []*Change { return d.history.Since(since) }

// ChangeByID returns an applied change.
func (d *Doc) ChangeByID(id causal.ChangeID) (*Change, bool) { return d.history.Get(id) }

// At returns a read-only copy of the document as it was at version v, which
// must be causally closed and contained in the document's version.
func (d *Doc) At(v causal.VersionVector) (*Doc, error) {
	if !d.applied().Contains(v) {
		return nil, fmt.Errorf("crdt: version %v is not part of this document (%v): %w", v, d.applied(), ErrNotFound)
	}
	past := NewDoc(causal.ActorID{})
	var keep []*Change
	for _, c := range d.history.All() {
		if v.Includes(c.ID()) {
			keep = append(keep, c)
		}
	}
	if _, err := past.Apply(keep...); err != nil {
		return nil, err
	}
	if len(past.pending) > 0 {
		return nil, fmt.Errorf("crdt: version %v: %w", v, ErrNotCausallyClosed)
	}
	return past, nil
}

// Fork returns an independent copy of the document whose local changes are
// made by actor.
func (d *Doc) Fork(actor causal.ActorID) *Doc {
	f := NewDoc(actor)
	if _, err := f.Apply(d.history.All()...); err != nil {
		// Every change in d's history was valid when d applied it.
		panic("crdt: fork: " + err.Error())
	}
	return f
}

// Load builds a document from changes (in any order) made or received by
// actor. It fails if a change is invalid.
func Load(actor causal.ActorID, changes []*Change) (*Doc, error) {
	d := NewDoc(actor)
	if _, err := d.Apply(changes...); err != nil {
		return nil, err
	}
	return d, nil
}
