package storetest

import (
	"bytes"
	"slices"
	"strings"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/store"
)

// model is the contract written as plainly as possible: linear scans, no
// indexes. It is the oracle that backends are compared with on random
// histories; it must stay obviously correct rather than fast.
type model struct {
	docs      map[string]*modelDoc
	deletions map[string]uint64
}

type modelDoc struct {
	snap *store.Snapshot
	log  []store.Change // append order
}

func newModel() *model {
	return &model{docs: make(map[string]*modelDoc), deletions: make(map[string]uint64)}
}

// delete removes doc, counting the deletion if the document was held.
func (m *model) delete(doc string) {
	if _, ok := m.docs[doc]; ok {
		delete(m.docs, doc)
		m.deletions[doc]++
	}
}

func (d *modelDoc) snapIncludes(id causal.ChangeID) bool {
	return d != nil && d.snap != nil && d.snap.Version.Includes(id)
}

func (d *modelDoc) logged(id causal.ChangeID) []byte {
	if d == nil {
		return nil
	}
	for _, c := range d.log {
		if c.ID == id {
			return c.Bytes
		}
	}
	return nil
}

// append returns the error class the contract demands (nil or
// store.ErrConflict) and applies the call if it succeeds.
func (m *model) append(doc string, changes []store.Change) error {
	d := m.docs[doc]
	var add []store.Change
	for _, c := range changes {
		if d.snapIncludes(c.ID) {
			continue
		}
		held := d.logged(c.ID)
		for _, a := range add {
			if a.ID == c.ID {
				held = a.Bytes
			}
		}
		if held != nil {
			if !bytes.Equal(held, c.Bytes) {
				return store.ErrConflict
			}
			continue
		}
		add = append(add, store.Change{ID: c.ID, Bytes: nonNil(c.Bytes)})
	}
	if len(changes) == 0 {
		return nil
	}
	if d == nil {
		d = &modelDoc{}
		m.docs[doc] = d
	}
	d.log = append(d.log, add...)
	return nil
}

func (m *model) saveSnapshot(doc string, snap store.Snapshot) error {
	d := m.docs[doc]
	if d != nil && d.snap != nil && !snap.Version.Contains(d.snap.Version) {
		return store.ErrStaleSnapshot
	}
	if d == nil {
		d = &modelDoc{}
		m.docs[doc] = d
	}
	d.snap = &store.Snapshot{Version: clean(snap.Version), Bytes: nonNil(snap.Bytes)}
	d.log = slices.DeleteFunc(d.log, func(c store.Change) bool { return snap.Version.Includes(c.ID) })
	return nil
}

func (m *model) changes(doc string, since causal.VersionVector) []store.Change {
	var out []store.Change
	for _, c := range m.docs[doc].log {
		if !since.Includes(c.ID) {
			out = append(out, c)
		}
	}
	return out
}

func (d *modelDoc) version() causal.VersionVector {
	v := causal.VersionVector{}
	if d.snap != nil {
		v.Merge(d.snap.Version)
	}
	for _, c := range d.log {
		v.Observe(c.ID)
	}
	return v
}

func (m *model) infos() []store.DocInfo {
	var out []store.DocInfo
	for id, d := range m.docs {
		info := store.DocInfo{ID: id, Version: d.version(), LogChanges: len(d.log)}
		if d.snap != nil {
			info.Bytes += int64(len(d.snap.Bytes))
		}
		for _, c := range d.log {
			info.Bytes += int64(len(c.Bytes))
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b store.DocInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// clean drops zero entries, which hold nothing, so that versions compare by
// what they hold.
func clean(v causal.VersionVector) causal.VersionVector {
	out := causal.VersionVector{}
	for a, s := range v {
		if s > 0 {
			out[a] = s
		}
	}
	return out
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return bytes.Clone(b)
}
