package converge

import (
	"errors"
	"fmt"
	"sync"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// Snapshot is a document as it was at a past version (Doc.At,
// Doc.AtChange): read-only, and on its own — later changes to the Doc do
// not reach it. It is safe for concurrent use.
type Snapshot struct {
	id      string
	version causal.VersionVector

	mu  sync.Mutex // the document model's reads are not safe to run at once
	doc *crdt.Doc
}

// At returns the document as it was at version v: with exactly the
// changes v includes. v must name only changes this replica holds (else
// an error wrapping ErrUnknownChange) and be causally closed: every
// change it includes comes with the changes it depends on (else
// ErrNotCausallyClosed). Both are *VersionError. The empty version is the
// document before any change.
//
// The past is rebuilt from the history, at a cost proportional to the
// history's length; the document is locked only while its history is
// read.
func (d *Doc) At(v causal.VersionVector) (*Snapshot, error) {
	have, all := d.history()
	for _, a := range v.Actors() {
		if v[a] > have[a] {
			return nil, &VersionError{Doc: d.id, Change: causal.ChangeID{Actor: a, Seq: have[a] + 1}, Err: ErrUnknownChange}
		}
	}
	return d.snapshot(all, v)
}

// AtChange returns the document just after the change id, as its author
// saw it: that change and every change it depends on, directly or not
// (ChangeInfo.ID names the changes of Doc.History). For a change this
// replica made, that is the document as it was right after the change;
// for one it received, the changes this replica made meanwhile (which the
// author had not seen) are not there. A change this replica does not hold
// is an error wrapping ErrUnknownChange.
func (d *Doc) AtChange(id causal.ChangeID) (*Snapshot, error) {
	have, all := d.history()
	if id.Seq == 0 || !have.Includes(id) {
		return nil, &VersionError{Doc: d.id, Change: id, Err: ErrUnknownChange}
	}
	return d.snapshot(all, pastOf(all, id))
}

// history returns the document's version and its applied changes, in the
// order applied (each after its dependencies).
func (d *Doc) history() (have causal.VersionVector, all []*crdt.Change) {
	d.read(func(doc *crdt.Doc) {
		have = doc.Version()
		all = doc.Changes()
	})
	return have, all
}

// pastOf returns the version made of id and every change it depends on,
// directly or not. all is in causal order, so walking it backwards meets
// each change after every change that depends on it: by then, whether it
// belongs is settled. One pass, no lookups.
func pastOf(all []*crdt.Change, id causal.ChangeID) causal.VersionVector {
	v := causal.VersionVector{id.Actor: id.Seq}
	for i := len(all) - 1; i >= 0; i-- {
		c := all[i]
		if !v.Includes(c.ID()) {
			continue
		}
		for _, dep := range c.Deps {
			v.Observe(dep)
		}
		// The actor's previous change is implied: v's entry already covers it.
	}
	return v
}

// snapshot rebuilds the document from the changes of all that v includes.
// Called without the document's lock.
func (d *Doc) snapshot(all []*crdt.Change, v causal.VersionVector) (*Snapshot, error) {
	keep := make([]*crdt.Change, 0, v.Total())
	for _, c := range all {
		if !v.Includes(c.ID()) {
			continue
		}
		for _, dep := range c.Deps {
			if !v.Includes(dep) {
				return nil, &VersionError{Doc: d.id, Change: dep, DependedOnBy: c.ID(), Err: ErrNotCausallyClosed}
			}
		}
		keep = append(keep, c)
	}
	past := crdt.NewDoc(causal.ActorID{}) // read-only: it never makes a change
	past.SetPatches(false)
	if _, err := past.Apply(keep...); err != nil {
		// Every change was valid when the document applied it.
		return nil, fmt.Errorf("converge: rebuilding %q at %v: %w", d.id, v, err)
	}
	version := past.Version()
	if version.Compare(v) != causal.Equal {
		// Unreachable when the history holds what the version says; said
		// rather than handing out a document that is not at v.
		return nil, fmt.Errorf("converge: rebuilding %q at %v gave %v", d.id, v, version)
	}
	return &Snapshot{id: d.id, version: version, doc: past}, nil
}

// VersionError says why a version cannot be read: it names a change this
// replica does not hold (Err is ErrUnknownChange), or leaves out a change
// that one it includes depends on (ErrNotCausallyClosed).
type VersionError struct {
	Doc string
	// Change is the first change not held, or the dependency left out.
	Change causal.ChangeID
	// DependedOnBy is, for ErrNotCausallyClosed, a change of the version
	// that depends on Change.
	DependedOnBy causal.ChangeID
	Err          error
}

func (e *VersionError) Error() string {
	switch {
	case errors.Is(e.Err, ErrNotCausallyClosed):
		return fmt.Sprintf("converge: document %q: the version is not causally closed: it includes change %s but not change %s, which that depends on",
			e.Doc, e.DependedOnBy, e.Change)
	case errors.Is(e.Err, ErrUnknownChange):
		return fmt.Sprintf("converge: document %q: change %s is not held by this replica", e.Doc, e.Change)
	}
	return fmt.Sprintf("converge: document %q: change %s: %v", e.Doc, e.Change, e.Err)
}

func (e *VersionError) Unwrap() error { return e.Err }

// ID returns the document's ID.
func (s *Snapshot) ID() string { return s.id }

// Version returns the version the snapshot shows.
func (s *Snapshot) Version() causal.VersionVector { return s.version.Clone() }

func (s *Snapshot) read(fn func(doc *crdt.Doc)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.doc)
}

// Get returns the value at pointer then, as Doc.Get does now.
func (s *Snapshot) Get(pointer string) (v any, err error) {
	s.read(func(doc *crdt.Doc) { v, err = getValue(doc, pointer) })
	return v, err
}

// JSON returns the value at pointer then as JSON, as Doc.JSON does now.
func (s *Snapshot) JSON(pointer string) (b []byte, err error) {
	s.read(func(doc *crdt.Doc) { b, err = valueJSON(doc, pointer) })
	return b, err
}

// Conflicts lists the conflicts unresolved then.
func (s *Snapshot) Conflicts() (out []Conflict) {
	s.read(func(doc *crdt.Doc) { out = conflictsOf(doc) })
	return out
}

// ConflictsAt returns every value held at pointer then: one if there was
// no conflict.
func (s *Snapshot) ConflictsAt(pointer string) (out []Candidate, err error) {
	s.read(func(doc *crdt.Doc) { out, err = candidatesAt(doc, pointer) })
	return out, err
}

// History lists the changes the snapshot holds, in the order the document
// applied them.
func (s *Snapshot) History() (out []ChangeInfo) {
	s.read(func(doc *crdt.Doc) {
		for _, c := range doc.Changes() {
			out = append(out, changeInfo(c))
		}
	})
	return out
}
