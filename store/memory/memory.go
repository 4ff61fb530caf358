package memory

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/store"
)

var _ store.Store = (*Store)(nil)

// Store is an in-memory store.Store, safe for concurrent use.
type Store struct {
	mu     sync.RWMutex
	closed bool
	docs   map[string]*document
	// deletions counts, per document ID, the times Delete removed it
	// (store.Store.Deletions): a number per ID, nothing of the document.
	deletions map[string]uint64
}

// document is one document's state. Logged changes are kept per actor,
// sorted by sequence number, so that "what does this version lack" is a
// binary search per actor; n numbers them in append order.
type document struct {
	snap       *store.Snapshot
	version    causal.VersionVector // snapshot and log together
	log        map[causal.ActorID][]*entry
	next       uint64 // n of the next appended change
	logChanges int
	logBytes   int64
	origins    map[causal.ActorID][]store.Origin // per actor, sorted by First
}

type entry struct {
	n     uint64
	id    causal.ChangeID
	bytes []byte
}

// New returns an empty store.
func New() *Store {
	return &Store{docs: make(map[string]*document), deletions: make(map[string]uint64)}
}

func newDocument() *document {
	return &document{version: causal.VersionVector{}, log: make(map[causal.ActorID][]*entry)}
}

// find returns the logged entry with id, or nil.
func (d *document) find(id causal.ChangeID) *entry {
	es := d.log[id.Actor]
	i := sort.Search(len(es), func(i int) bool { return es[i].id.Seq >= id.Seq })
	if i < len(es) && es[i].id.Seq == id.Seq {
		return es[i]
	}
	return nil
}

func (d *document) snapVersion() causal.VersionVector {
	if d.snap == nil {
		return nil
	}
	return d.snap.Version
}

// begin checks what every call checks first, in the same order for all
// methods: closed, then context, then the document ID.
func (s *Store) begin(ctx context.Context, doc string) error {
	if s.closed {
		return store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return store.CheckDocID(doc)
}

// held returns doc's state for a read, with s.mu held by the caller:
// ErrNotFound if the store holds nothing of it.
func (s *Store) held(ctx context.Context, doc string) (*document, error) {
	if err := s.begin(ctx, doc); err != nil {
		return nil, err
	}
	d := s.docs[doc]
	if d == nil {
		return nil, fmt.Errorf("%w: %q", store.ErrNotFound, doc)
	}
	return d, nil
}

// Append implements store.Store.
func (s *Store) Append(ctx context.Context, doc string, changes []store.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin(ctx, doc); err != nil {
		return err
	}
	for _, c := range changes {
		if err := store.CheckChangeID(c.ID); err != nil {
			return err
		}
	}
	if len(changes) == 0 {
		return nil
	}
	d := s.docs[doc]
	if d == nil {
		d = newDocument()
	}
	// First decide, storing nothing, so that a conflict leaves no trace.
	fresh := make(map[causal.ChangeID][]byte)
	var add []store.Change
	for _, c := range changes {
		if d.snapVersion().Includes(c.ID) {
			continue
		}
		held := fresh[c.ID]
		if e := d.find(c.ID); e != nil {
			held = e.bytes
		}
		if held != nil {
			if !bytes.Equal(held, c.Bytes) {
				return fmt.Errorf("%w: %v in %q", store.ErrConflict, c.ID, doc)
			}
			continue
		}
		b := bytes.Clone(c.Bytes)
		if b == nil {
			b = []byte{} // nil marks "not held" in fresh
		}
		fresh[c.ID] = b
		add = append(add, store.Change{ID: c.ID, Bytes: b, Origin: c.Origin})
	}
	for _, c := range add {
		e := &entry{n: d.next, id: c.ID, bytes: c.Bytes}
		d.next++
		es := d.log[c.ID.Actor]
		i := sort.Search(len(es), func(i int) bool { return es[i].id.Seq > c.ID.Seq })
		d.log[c.ID.Actor] = slices.Insert(es, i, e)
		d.version.Observe(c.ID)
		d.logChanges++
		d.logBytes += int64(len(c.Bytes))
		if c.Origin != "" {
			if d.origins == nil {
				d.origins = make(map[causal.ActorID][]store.Origin)
			}
			d.origins[c.ID.Actor] = store.AddOrigin(d.origins[c.ID.Actor], c.ID, c.Origin)
		}
	}
	s.docs[doc] = d
	return nil
}

// Origins implements store.Store.
func (s *Store) Origins(ctx context.Context, doc string) ([]store.Origin, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, err := s.held(ctx, doc)
	if err != nil {
		return nil, err
	}
	out := []store.Origin{}
	for _, a := range slices.SortedFunc(maps.Keys(d.origins), causal.ActorID.Compare) {
		out = append(out, d.origins[a]...)
	}
	return out, nil
}

// collect returns the logged changes since does not include, in append
// order, copied.
func (d *document) collect(since causal.VersionVector) []store.Change {
	var es []*entry
	for a, list := range d.log {
		have := since.Get(a)
		i := sort.Search(len(list), func(i int) bool { return list[i].id.Seq > have })
		es = append(es, list[i:]...)
	}
	slices.SortFunc(es, func(a, b *entry) int { return cmp.Compare(a.n, b.n) })
	out := make([]store.Change, len(es))
	for i, e := range es {
		out[i] = store.Change{ID: e.id, Bytes: bytes.Clone(e.bytes)}
	}
	return out
}

// Changes implements store.Store.
func (s *Store) Changes(ctx context.Context, doc string, since causal.VersionVector) ([]store.Change, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, err := s.held(ctx, doc)
	if err != nil {
		return nil, err
	}
	return d.collect(since), nil
}

// Load implements store.Store.
func (s *Store) Load(ctx context.Context, doc string) (*store.Snapshot, []store.Change, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, err := s.held(ctx, doc)
	if err != nil {
		return nil, nil, err
	}
	var snap *store.Snapshot
	if d.snap != nil {
		snap = &store.Snapshot{Version: d.snap.Version.Clone(), Bytes: bytes.Clone(d.snap.Bytes)}
	}
	return snap, d.collect(nil), nil
}

// SaveSnapshot implements store.Store.
func (s *Store) SaveSnapshot(ctx context.Context, doc string, snap store.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin(ctx, doc); err != nil {
		return err
	}
	if err := store.CheckVersion(snap.Version); err != nil {
		return err
	}
	d := s.docs[doc]
	if d == nil {
		d = newDocument()
	}
	if old := d.snapVersion(); !snap.Version.Contains(old) {
		return fmt.Errorf("%w: %q holds %v, given %v", store.ErrStaleSnapshot, doc, old, snap.Version)
	}
	v := causal.VersionVector{}
	for a, n := range snap.Version {
		if n > 0 {
			v[a] = n
		}
	}
	for a, n := range v {
		list := d.log[a]
		i := sort.Search(len(list), func(i int) bool { return list[i].id.Seq > n })
		for _, e := range list[:i] {
			d.logChanges--
			d.logBytes -= int64(len(e.bytes))
		}
		if i == len(list) {
			delete(d.log, a)
		} else {
			d.log[a] = slices.Clone(list[i:])
		}
	}
	b := bytes.Clone(snap.Bytes)
	if b == nil {
		b = []byte{}
	}
	d.snap = &store.Snapshot{Version: v, Bytes: b}
	d.version.Merge(v)
	s.docs[doc] = d
	return nil
}

// Version implements store.Store.
func (s *Store) Version(ctx context.Context, doc string) (causal.VersionVector, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, err := s.held(ctx, doc)
	if err != nil {
		return nil, err
	}
	return d.version.Clone(), nil
}

// Docs implements store.Store.
func (s *Store) Docs(ctx context.Context) ([]store.DocInfo, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]store.DocInfo, 0, len(s.docs))
	for id, d := range s.docs {
		n := d.logBytes
		if d.snap != nil {
			n += int64(len(d.snap.Bytes))
		}
		out = append(out, store.DocInfo{ID: id, Version: d.version.Clone(), LogChanges: d.logChanges, Bytes: n})
	}
	slices.SortFunc(out, func(a, b store.DocInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, doc string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin(ctx, doc); err != nil {
		return err
	}
	if _, ok := s.docs[doc]; ok {
		delete(s.docs, doc)
		s.deletions[doc]++
	}
	return nil
}

// Deletions implements store.Store.
func (s *Store) Deletions(ctx context.Context, doc string) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.begin(ctx, doc); err != nil {
		return 0, err
	}
	return s.deletions[doc], nil
}

// Close implements store.Store. It drops everything held.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	s.closed = true
	s.docs, s.deletions = nil, nil
	return nil
}
