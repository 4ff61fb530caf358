package sqlite

import "github.com/converge-sync/converge/causal"

// The writer keeps, per document it has written, the document's row and
// the version rows it has read or written, so that an Append, the write a
// server makes for every change it receives, need not read them back
// (two of its statements of five). Only the writer goroutine touches the
// cache, and only the writer writes, so the cache is what the database
// holds, as long as it forgets what a failed write may have left behind:
// a write call that fails forgets its document, a commit that fails
// forgets everything, and the calls other than Append (SaveSnapshot,
// Delete) forget their document before they run. Rows read from the cache
// skip their checksum check: they were checked when read, or written here.

// docMeta is what the writer knows of one document's rows.
type docMeta struct {
	row  docRow
	vers map[causal.ActorID]verRow // dirty is always false here
}

// maxMeta bounds the documents the cache holds; past it, it starts over.
const maxMeta = 16 << 10

// metaOf returns the cached rows of doc, or nil.
func (s *Store) metaOf(doc string) *docMeta { return s.meta[doc] }

// remember records doc's rows as written by a write call that succeeded.
func (s *Store) remember(d docRow, vs map[causal.ActorID]*verRow) {
	m := s.meta[d.name]
	if m == nil {
		if len(s.meta) >= maxMeta {
			clear(s.meta)
		}
		m = &docMeta{vers: make(map[causal.ActorID]verRow, len(vs))}
		s.meta[d.name] = m
	}
	m.row = d
	for a, v := range vs {
		m.vers[a] = verRow{seq: v.seq, snapSeq: v.snapSeq}
	}
}

// version returns actor's cached version row of m's document, if known.
func (m *docMeta) version(a causal.ActorID) (verRow, bool) {
	if m == nil {
		return verRow{}, false
	}
	v, ok := m.vers[a]
	return v, ok
}

// forget drops what the cache holds of doc.
func (s *Store) forget(doc string) { delete(s.meta, doc) }

// forgetAll empties the cache.
func (s *Store) forgetAll() { clear(s.meta) }
