package encoding

import (
	"fmt"
	"slices"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// History is a crdt.History that keeps the changes encoded, in the
// columns of the history section, instead of as Change structs: a
// keystroke costs a few bytes instead of a few hundred. Use it with
//
//	crdt.NewDoc(actor, crdt.WithHistory(encoding.NewHistory()))
//
// Changes are written into an open chunk; every chunkRows changes the chunk
// is sealed into the bytes of a history section of its own (fresh writer
// state, no text dictionary), which can be decoded alone. A per-actor index
// (history_index.go) finds the chunk of a change and its MaxOp without
// decoding anything, so Get and Since decode only the chunks they need and
// MaxOp decodes none.
//
// Besides the chunks, History writes every change once more into one
// continuous writer, the history section a saved document would hold, as
// long as that is still possible: while the changes arrive in canonical
// order (history_save.go).
//
// Append does not retain the *Change it is given. Changes returned by All,
// Since and Get are decoded afresh (Get: from a small cache) and must not be
// modified. A History is not safe for concurrent use, like the Doc it
// belongs to.
type History struct {
	actors *actorTable // every actor the changes mention, in order of first mention
	logs   []actorLog  // by actor index; empty for actors that made no change
	sealed [][]byte    // history sections of chunkRows changes each
	open   *historyWriter
	n      int
	nOps   int

	// whole is the continuous writer (nil once the order stops being
	// canonical); lastKey is the last change's canonical sort key.
	whole   *historyWriter
	lastKey changeKey

	cached struct { // the last sealed chunk decoded, for runs of Get
		chunk   int
		changes []*crdt.Change
	}
}

// chunkRows is the number of changes in a sealed chunk: large enough that
// per-chunk overhead (column lengths, a fresh writer state) stays small,
// small enough that Get, which decodes one chunk, stays cheap.
const chunkRows = 128

var _ crdt.History = (*History)(nil)

// NewHistory returns an empty History.
func NewHistory() *History {
	h := &History{actors: newActorTable(nil)}
	h.open = newHistoryWriter(h.actors)
	h.whole = newHistoryWriter(h.actors)
	h.whole.text = &textTrack{}
	h.cached.chunk = -1
	return h
}

// changeKey is what the canonical order sorts by (order.go).
type changeKey struct {
	startOp uint64
	actor   causal.ActorID
	seq     uint64
}

func (k changeKey) less(o changeKey) bool {
	if k.startOp != o.startOp {
		return k.startOp < o.startOp
	}
	if c := k.actor.Compare(o.actor); c != 0 {
		return c < 0
	}
	return k.seq < o.seq
}

// Append records c. The Doc appends each actor's changes in seq order;
// anything else breaks the index, so it panics.
func (h *History) Append(c *crdt.Change) {
	h.addActors(c)
	if h.whole != nil {
		key := changeKey{c.StartOp, c.Actor, c.Seq}
		if h.n > 0 && !h.lastKey.less(key) {
			h.whole = nil // applied order is not the canonical order
		}
		h.lastKey = key
	}
	a := h.actors.of(c.Actor)
	for len(h.logs) <= a {
		h.logs = append(h.logs, actorLog{})
	}
	log := &h.logs[a]
	if c.Seq != log.n+1 {
		panic(fmt.Sprintf("encoding: History: change %v appended after seq %d of its actor", c.ID(), log.n))
	}
	log.append(c.Seq, len(h.sealed), c.MaxOp())
	h.open.change(c)
	if h.whole != nil {
		h.whole.change(c)
	}
	h.n++
	h.nOps += len(c.Ops)
	if h.open.nChanges == chunkRows {
		h.sealed = append(h.sealed, h.open.appendSection(nil))
		h.open.reset() // its buffers serve the next chunk: a writer is a few KB

	}
}

func (h *History) addActors(c *crdt.Change) {
	t := h.actors
	add := func(a causal.ActorID) {
		if a != t.lastA || t.lastI < 0 {
			t.add(a)
		}
	}
	addID := func(id causal.OpID) {
		if !id.IsZero() {
			add(id.Actor)
		}
	}
	add(c.Actor)
	for _, d := range c.Deps {
		add(d.Actor)
	}
	for i := range c.Ops {
		op := &c.Ops[i]
		addID(op.Obj)
		addID(op.Elem)
		addID(op.Left)
		addID(op.Right)
		for _, p := range op.Pred {
			addID(p)
		}
	}
}

func (h *History) Len() int { return h.n }

// All decodes every change, all of them cut from one array of changes and
// one of ops.
func (h *History) All() []*crdt.Change {
	a := &arena{changes: make([]crdt.Change, h.n), ops: make([]crdt.Op, h.nOps)}
	out := make([]*crdt.Change, 0, h.n)
	for i := 0; i <= len(h.sealed); i++ {
		out = h.decodeChunk(out, i, a)
	}
	return out
}

// decodeChunk appends the changes of chunk i (len(sealed): the open one).
func (h *History) decodeChunk(out []*crdt.Change, i int, a *arena) []*crdt.Change {
	var body []byte
	if i < len(h.sealed) {
		body = h.sealed[i]
	} else {
		body = h.open.appendSection(nil)
	}
	out, err := decodeHistoryInto(out, body, h.actors.ids, nil, nil, Version, a, false)
	if err != nil {
		panic("encoding: History cannot decode its own chunk: " + err.Error())
	}
	return out
}

func (h *History) Since(v causal.VersionVector) []*crdt.Change {
	var chunks []int
	for ai := range h.logs {
		log := &h.logs[ai]
		have := v[h.actors.ids[ai]]
		if have >= log.n {
			continue
		}
		for _, run := range log.chunks[log.runOf(have+1):] {
			chunks = append(chunks, int(run.chunk))
		}
	}
	slices.Sort(chunks)
	chunks = slices.Compact(chunks)
	var out []*crdt.Change
	a := &arena{}
	for _, i := range chunks {
		start := len(out)
		out = h.decodeChunk(out, i, a)
		keep := out[:start]
		for _, c := range out[start:] {
			if c.Seq > v[c.Actor] {
				keep = append(keep, c)
			}
		}
		out = keep
	}
	return out
}

func (h *History) Get(id causal.ChangeID) (*crdt.Change, bool) {
	log, ok := h.log(id)
	if !ok {
		return nil, false
	}
	i := int(log.chunks[log.runOf(id.Seq)].chunk)
	var cs []*crdt.Change
	if i == h.cached.chunk {
		cs = h.cached.changes
	} else {
		cs = h.decodeChunk(nil, i, &arena{})
		if i < len(h.sealed) {
			h.cached.chunk, h.cached.changes = i, cs
		}
	}
	for _, c := range cs {
		if c.Seq == id.Seq && c.Actor == id.Actor {
			return c, true
		}
	}
	panic("encoding: History index names a chunk without the change " + id.String())
}

func (h *History) MaxOp(id causal.ChangeID) (uint64, bool) {
	log, ok := h.log(id)
	if !ok {
		return 0, false
	}
	return log.maxOp(id.Seq), true
}

func (h *History) log(id causal.ChangeID) (*actorLog, bool) {
	a, ok := h.actors.index[id.Actor]
	if !ok || a >= len(h.logs) || id.Seq == 0 || id.Seq > h.logs[a].n {
		return nil, false
	}
	return &h.logs[a], true
}
