package crdt

import (
	"fmt"

	"github.com/converge-sync/converge/causal"
)

// Changes returns every applied change, in the order they were applied (a
// causal order: each after its dependencies). The changes are shared, not
// copied: they must not be modified.
func (d *Doc) Changes() []*Change { return d.history[:len(d.history):len(d.history)] }

// ChangesSince returns the applied changes that the version since lacks, in
// causal order: exactly what a replica at that version needs.
func (d *Doc) ChangesSince(since causal.VersionVector) []*Change {
	var out []*Change
	for _, c := range d.history {
		if !since.Includes(c.ID()) {
			out = append(out, c)
		}
	}
	return out
}

// ChangeByID returns an applied change.
func (d *Doc) ChangeByID(id causal.ChangeID) (*Change, bool) { return d.changeByID(id) }

// At returns a read-only copy of the document as it was at version v, which
// must be causally closed and contained in the document's version.
func (d *Doc) At(v causal.VersionVector) (*Doc, error) {
	if !d.version.Contains(v) {
		return nil, fmt.Errorf("crdt: version %v is not part of this document (%v): %w", v, d.version, ErrNotFound)
	}
	past := NewDoc(causal.ActorID{})
	var keep []*Change
	for _, c := range d.history {
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
	if _, err := f.Apply(d.history...); err != nil {
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
