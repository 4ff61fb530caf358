package encoding

import (
	"fmt"
	"slices"
	"sync"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// A saved document is one or more chunks back to back. A chunk is the
// header (magic, version, type 'd') and its sections, each an id byte and a
// body framed with flags, lengths and a CRC-32C: the actor table (always),
// the state (optional) and the history (always), then a zero byte. The
// document's history is every chunk's history; its state is that of the
// last chunk that has one. EncodeDocument writes a single chunk;
// AppendChanges adds one after the bytes already saved.

// Section ids, in the order they must appear.
const (
	secEnd     = 0
	secActors  = 1
	secState   = 2
	secHistory = 3
)

// Options tune the encoders. The zero value writes uncompressed sections.
type Options struct {
	// Compress stores the state and history sections DEFLATE-compressed
	// (each only if that makes it smaller). Decoders read both forms.
	Compress bool
}

// EncodeDocument encodes the state and the complete history of a document
// as one chunk, with the changes in canonical order: the same state and the
// same set of changes always give the same bytes, whatever order the changes
// came in. st may be nil, for a document saved without its state.
func EncodeDocument(st *State, changes []*crdt.Change, opt Options) ([]byte, error) {
	return encodeDocument(st, changes, opt, nil)
}

// encodeDocument is EncodeDocument reading where the history's characters
// are in st from d, the document they come from, if it is not nil (see
// textPlaces): the same document still always gives the same bytes, but
// not always EncodeDocument's.
func encodeDocument(st *State, changes []*crdt.Change, opt Options, d *crdt.Doc) ([]byte, error) {
	ordered, err := canonicalOrder(changes)
	if err != nil {
		return nil, err
	}
	if err := checkState(st); err != nil {
		return nil, err
	}
	return appendChunk(nil, st, ordered, opt, d), nil
}

// AppendChanges returns saved with a chunk holding changes appended, the way
// append does: the saved bytes are not rewritten, so a store can append the
// chunk to the file it already has. The chunk has no state, so after it the
// saved state lags behind the history (Document.StateIsCurrent reports
// false) until AppendState or Compact writes a new one.
func AppendChanges(saved []byte, changes ...*crdt.Change) ([]byte, error) {
	return AppendState(saved, nil, changes, Options{Compress: true})
}

// AppendState is AppendChanges with a state: the chunk carries st, which
// must be the state after all the saved changes and these ones. st may be
// nil. Compression applies only if it makes a section smaller.
func AppendState(saved []byte, st *State, changes []*crdt.Change, opt Options) ([]byte, error) {
	if err := readHeader(newReader(saved, ""), typeDocument); err != nil {
		return nil, err
	}
	if err := checkState(st); err != nil {
		return nil, err
	}
	cs := slices.Clone(changes)
	slices.SortStableFunc(cs, changeKeyCompare)
	return appendChunk(saved, st, cs, opt, nil), nil
}

// Compact rewrites a saved document as one canonical chunk. st is the
// current state; if it is nil, the saved state is kept when it is current,
// and otherwise computed by replaying the history.
func Compact(saved []byte, st *State, opt Options) ([]byte, error) {
	d, err := DecodeDocument(saved)
	if err != nil {
		return nil, err
	}
	cs, err := d.Changes()
	if err != nil {
		return nil, err
	}
	if st == nil && d.StateIsCurrent() {
		st = d.State()
	} else if st == nil {
		if st, err = replayState(cs); err != nil {
			return nil, fmt.Errorf("%w: replaying the history to compute its state: %v", ErrInvalid, err)
		}
	}
	return EncodeDocument(st, cs, opt)
}

func appendChunk(b []byte, st *State, changes []*crdt.Change, opt Options, d *crdt.Doc) []byte {
	set := newActorSet()
	set.addChanges(changes)
	if st != nil {
		set.addNode(st.Root)
	}
	tab := set.table()
	return appendChunkWith(b, tab, st, opt, writeHistory(tab, changes), nil, placesOf(d, st, tab), nil)
}

// appendChunkWith writes a chunk with the history section of the changes
// w holds, its actor indices mapped through renumber (see History.save).
// places, if not nil, says where the history's characters are in st: it
// comes from the live document being saved (SaveDoc), whose save favours
// speed (see liveStateCodec), where EncodeDocument and Compact, which have
// no document, favour size. sw, if not nil, is the state worker started
// for this save (see startStateWorker); it is used or abandoned.
func appendChunkWith(b []byte, tab *actorTable, st *State, opt Options, w *historyWriter, renumber []uint64, places *textPlaces, sw *stateWorker) []byte {
	dict := stateDict(st)
	b = appendHeader(b, typeDocument)
	actors := appendUvarint(nil, uint64(len(tab.ids)))
	for _, a := range tab.ids {
		actors = append(actors, a[:]...)
	}
	b = appendSection(b, secActors, actors, codecNone)
	codec := codecNone // the state's
	if opt.Compress {
		codec = codecZstd
		if places != nil {
			codec = liveStateCodec
		}
	}
	var stateSec, hist []byte
	switch {
	case st == nil:
		plan := textPlan{mode: textSegments}
		hist = w.appendSectionRenumbered(nil, dict, &plan, renumber, opt.Compress)
	case goesParallel(w, opt):
		if sw == nil {
			sw = startStateWorker(w, renumber)
		}
		stateSec, hist = appendSectionsParallel(tab, st, dict, w, renumber, places, codec, sw)
		sw = nil
	default:
		plan := w.planText(dict)
		plan.places = places
		hist = w.appendSectionRenumbered(nil, dict, &plan, renumber, opt.Compress)
		stateSec = appendSection(nil, secState, append(appendState(nil, tab, st), plan.tail...), codec)
	}
	sw.abandon()
	b = slices.Grow(b, len(stateSec)+len(hist)+16)
	b = append(b, stateSec...)
	// The history section compresses its columns one by one.
	b = appendSection(b, secHistory, hist, codecNone)
	return append(b, secEnd)
}

func appendSection(b []byte, id byte, raw []byte, codec int) []byte {
	start := len(b)
	return appendBody(append(b, id), start, raw, codec)
}

func (k *kit) appendSection(b []byte, id byte, raw []byte, codec int) []byte {
	start := len(b)
	return k.appendBody(append(b, id), start, raw, codec)
}

// checkState refuses a state the decoder would refuse: a non-map root, map
// keys out of order or without values, missing nodes.
func checkState(st *State) error {
	if st == nil {
		return nil
	}
	if st.Root == nil || st.Root.Kind != crdt.KindMap {
		return fmt.Errorf("%w: state root must be a map", ErrInvalid)
	}
	var check func(n *Node, depth int) error
	check = func(n *Node, depth int) error {
		if n == nil {
			return fmt.Errorf("%w: nil node in state", ErrInvalid)
		}
		if !n.Kind.Valid() || depth > maxDepth {
			return fmt.Errorf("%w: bad node kind %v or nesting too deep", ErrInvalid, n.Kind)
		}
		if n.Kind == crdt.KindMap {
			if len(n.Keys) != len(n.Items) {
				return fmt.Errorf("%w: map %v has %d keys and %d values", ErrInvalid, n.Obj, len(n.Keys), len(n.Items))
			}
			for i := 1; i < len(n.Keys); i++ {
				if n.Keys[i] <= n.Keys[i-1] {
					return fmt.Errorf("%w: map %v keys not sorted and unique", ErrInvalid, n.Obj)
				}
			}
		}
		if !n.Kind.IsContainer() && n.Value.Kind() != n.Kind {
			return fmt.Errorf("%w: scalar node of kind %v holds a %v", ErrInvalid, n.Kind, n.Value.Kind())
		}
		for _, it := range n.Items {
			if err := check(it, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return check(st.Root, 0)
}

// Document is a decoded saved document. The state is decoded at once; the
// history only when Changes is first called. Its methods are safe for
// concurrent use.
type Document struct {
	state   *State
	stateAt int // index of the chunk the state came from, -1 if none
	chunks  []chunk

	once    sync.Once
	changes []*crdt.Change
	err     error
	trusted bool // saved by this program (LoadDoc): no rows-per-byte bound
}

type chunk struct {
	version byte
	actors  []causal.ActorID
	state   *State // nil if the chunk has none
	tail    []byte // the state section's bytes after the state (version 2)
	history framed
}

// State returns the saved state, or nil if no chunk carried one.
func (d *Document) State() *State { return d.state }

// StateIsCurrent reports whether the state includes every saved change.
// It is false when changes were appended after the last state was written;
// ChangesAfterState returns those.
func (d *Document) StateIsCurrent() bool { return d.state != nil && d.stateAt == len(d.chunks)-1 }

// Chunks returns the number of chunks (1 for a compact document).
func (d *Document) Chunks() int { return len(d.chunks) }

// Changes decodes and returns the whole history: each chunk's changes in the
// order stored, chunk after chunk, a change saved twice only once.
func (d *Document) Changes() ([]*crdt.Change, error) {
	d.once.Do(func() { d.changes, d.err = decodeChunks(d.chunks, !d.trusted) })
	return d.changes, d.err
}

// ChangesAfterState decodes the changes of the chunks written after the
// state (all of them if there is no state): what must be applied on top of
// State to bring it up to date.
func (d *Document) ChangesAfterState() ([]*crdt.Change, error) {
	return decodeChunks(d.chunks[d.stateAt+1:], !d.trusted)
}

func decodeChunks(chunks []chunk, limited bool) ([]*crdt.Change, error) {
	var all []*crdt.Change
	var seen map[causal.ChangeID]bool
	for i, ch := range chunks {
		body, err := ch.history.open()
		if err != nil {
			return nil, err
		}
		cs, err := decodeHistoryInto(nil, body, ch.actors, stateDict(ch.state), ch.tail, ch.version, &arena{}, limited)
		if err != nil {
			if fe, ok := err.(*FormatError); ok && len(chunks) > 1 {
				fe.Section = fmt.Sprintf("chunk %d %s", i, fe.Section)
			}
			return nil, err
		}
		if len(chunks) == 1 {
			return cs, nil
		}
		if seen == nil {
			seen = map[causal.ChangeID]bool{}
		}
		for _, c := range cs {
			if !seen[c.ID()] {
				seen[c.ID()] = true
				all = append(all, c)
			}
		}
	}
	return all, nil
}

// DecodeDocument reads a saved document: it checks every chunk's header and
// every section's checksum and decodes the state, and leaves the history
// encoded until Changes is called.
func DecodeDocument(b []byte) (*Document, error) {
	d := &Document{stateAt: -1}
	r := newReader(b, "")
	for first := true; first || !r.done(); first = false {
		ch, st, err := readChunk(r)
		if err != nil {
			return nil, err
		}
		d.chunks = append(d.chunks, ch)
		if st != nil {
			d.state, d.stateAt = st, len(d.chunks)-1
		}
	}
	return d, nil
}

func readChunk(r *reader) (chunk, *State, error) {
	var ch chunk
	var st *State
	v, err := readHeaderVersion(r, typeDocument)
	if err != nil {
		return ch, nil, err
	}
	ch.version = v
	allowed := byte(flagDeflate)
	if v >= 2 {
		allowed |= flagZstd
	}
	want := []byte{secActors, secState, secHistory, secEnd}
	for {
		start := r.off
		id, err := r.byte()
		if err != nil {
			return ch, nil, err
		}
		i := slices.Index(want, id)
		if i < 0 || (i > 0 && ch.actors == nil) {
			return ch, nil, r.fail(ErrMalformed, "section %d unknown or out of order", id)
		}
		want = want[i+1:]
		switch id {
		case secEnd:
			if len(want) != 0 || ch.history.what == "" {
				return ch, nil, r.fail(ErrMalformed, "chunk ends without a history section")
			}
			return ch, st, nil
		case secActors:
			body, err := readBody(r, start, "actors", allowed)
			if err != nil {
				return ch, nil, err
			}
			if ch.actors, err = decodeActors(body); err != nil {
				return ch, nil, err
			}
		case secState:
			body, err := readBody(r, start, "state", allowed)
			if err != nil {
				return ch, nil, err
			}
			if st, ch.tail, err = decodeState(body, newActorTable(ch.actors), v); err != nil {
				return ch, nil, err
			}
			ch.state = st
		case secHistory:
			if ch.history, err = readFramed(r, start, "history", allowed); err != nil {
				return ch, nil, err
			}
		}
	}
}

func decodeActors(body []byte) ([]causal.ActorID, error) {
	r := newReader(body, "actors")
	n, err := r.count(16)
	if err != nil {
		return nil, err
	}
	ids := make([]causal.ActorID, n)
	for i := range ids {
		b, _ := r.bytes(16)
		ids[i] = causal.ActorID(b)
		if i > 0 && ids[i].Compare(ids[i-1]) <= 0 {
			return nil, r.fail(ErrMalformed, "actor table not sorted and unique")
		}
	}
	if !r.done() {
		return nil, r.fail(ErrMalformed, "%d bytes after the actor table", r.rest())
	}
	return ids, nil
}
