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
// Every change is encoded once, into one continuous writer (log). While
// the changes arrive in canonical order (a single writer, or a replica that
// happened to apply in that order) the log is exactly the history section a
// saved document holds, and SaveDoc copies it (history_save.go); at the
// first change out of that order it stops tracking what only saving needs,
// and goes on as a log.
//
// Every chunkRows changes the log records a checkpoint (history_window.go):
// where each column stands and the little state a decoder carries, so that
// the window of changes after it can be decoded alone. A per-actor index
// (history_index.go) finds the window of a change and its MaxOp without
// decoding anything, so Get and Since decode only the windows they need and
// MaxOp decodes none.
//
// Append does not retain the *Change it is given. Changes returned by All,
// Since and Get are decoded afresh (Get: from a small cache) and must not be
// modified. A History is not safe for concurrent use, like the Doc it
// belongs to.
type History struct {
	actors *actorTable // every actor the changes mention, in order of first mention
	logs   []actorLog  // by actor index; empty for actors that made no change
	log    *historyWriter
	marks  checkpoints // one per window of chunkRows changes
	n      int
	nOps   int

	// whole is log while it is the canonical history section (nil once the
	// order stops being canonical); lastKey is the last change's canonical
	// sort key.
	whole   *historyWriter
	lastKey changeKey

	typing keystroke // the last change, if a keystroke (history_typing.go)
	// waiting is the run of keystrokes typed on that Append took but has
	// not written yet (see wait): their times and, typing, their characters.
	waiting struct {
		times []int64
		text  []byte
	}

	cached struct { // the last full window decoded, for runs of Get
		window  int
		changes []*crdt.Change
	}
}

// chunkRows is the number of changes in a window: small enough that Get,
// which decodes one window, stays cheap, large enough that the checkpoints
// (some twenty varints each) cost about a byte per change.
const chunkRows = 128

var _ crdt.History = (*History)(nil)

// NewHistory returns an empty History.
func NewHistory() *History {
	h := &History{actors: newActorTable(nil)}
	h.actors.grow = true // the log's writer adds each actor at its first mention
	h.log = newHistoryWriter(h.actors)
	h.log.text = &textTrack{}
	h.log.right1 = &uintCol{}
	h.whole = h.log
	h.cached.window = -1
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
	if h.typing.cont && h.typesOn(c) {
		return
	}
	if kind := keystrokeOf(c); kind != keyNone {
		// Not a keystroke that may wait (typesOn said so when the last one
		// continued its predecessor): written now, and remembered, for the
		// next one to continue.
		k := &h.typing
		cont, dir := k.continues(c, kind)
		h.writeWaiting()
		h.append(c)
		k.remember(c, kind, h.actors.of(c.Actor), cont, dir, h.actors)
		return
	}
	h.writeWaiting()
	h.typing.kind, h.typing.cont = keyNone, false
	h.append(c)
}

// typesOn is Append's quick way for the common case, checked first: the
// last change was a keystroke that continued the one before it, and c
// continues it in the same way (keystrokeOf and continues, in one pass).
// It takes c into the waiting run and returns true, or returns false
// having done nothing.
func (h *History) typesOn(c *crdt.Change) bool {
	k := &h.typing
	if len(c.Ops) != 1 || c.Seq != k.seq+1 || c.StartOp != k.own+1 || len(c.Deps) != 0 || len(c.Message) != 0 {
		return false
	}
	op := &c.Ops[0]
	if k.kind == keyType {
		if op.Action != crdt.ActInsertText || len(op.Text) != 1 || op.Text[0] >= 0x80 || op.Left.Counter != k.own {
			return false
		}
		if c.Actor != k.actor || op.Left.Actor != k.actor || op.Right != k.right || op.Obj != k.obj {
			return false
		}
	} else {
		if op.Action != crdt.ActDeleteText || op.Len != 1 || op.Elem.Counter != k.elem.Counter+uint64(k.dir) {
			return false
		}
		if c.Actor != k.actor || op.Elem.Actor != k.elem.Actor || op.Obj != k.obj {
			return false
		}
	}
	return h.wait(c)
}

// wait takes keystroke c, which continues a keystroke that continued the
// one before it in the same way, into the run of keystrokes waiting to be
// written (history_typing.go), if it may be written the quick way.
func (h *History) wait(c *crdt.Change) bool {
	k := &h.typing
	switch n := len(h.waiting.times); {
	case n == 0:
		// Whether the whole run may be written the quick way is settled
		// at its start: nothing else is written while it waits.
		if !h.log.canTypeOn(maxWaiting) {
			return false
		}
	case n == maxWaiting:
		return false
	}
	h.waiting.times = append(h.waiting.times, c.Time)
	if k.kind == keyType {
		h.waiting.text = append(h.waiting.text, c.Ops[0].Text[0])
	} else {
		k.elem.Counter = c.Ops[0].Elem.Counter
	}
	k.seq, k.own = c.Seq, c.StartOp
	return true
}

// maxWaiting bounds the keystrokes waiting to be written, so that writing
// them never holds up a read for long.
const maxWaiting = 1 << 14

// writeWaiting writes the keystrokes waiting (see wait) as the usual way
// would have written them one by one: a run at a time between checkpoints.
// Everything that reads the log, or appends to it, calls it first.
func (h *History) writeWaiting() {
	n := len(h.waiting.times)
	if n == 0 {
		return
	}
	k := &h.typing
	// k describes the last keystroke waiting; the first came n before it.
	seq, own, elem := k.seq-uint64(n)+1, k.own-uint64(n)+1, k.elem.Counter
	if k.kind == keyDelete {
		elem -= uint64((n - 1) * k.dir) // the first one's: the run moves by dir each keystroke
	}
	times, text := h.waiting.times, h.waiting.text
	for len(times) > 0 {
		if h.n%chunkRows == 0 {
			h.marks.record(h.log)
		}
		m := min(len(times), chunkRows-h.n%chunkRows)
		run := typingRun{seq: seq, own: own, elem: elem, times: times[:m]}
		if k.kind == keyType {
			run.text, text = text[:m], text[m:]
		}
		h.log.typeOn(k, run)
		h.logs[k.a].appendRun(seq, m, h.n/chunkRows, own)
		h.n += m
		h.nOps += m
		times = times[m:]
		seq, own = seq+uint64(m), own+uint64(m)
		elem += uint64(m * k.dir)
	}
	if h.whole != nil {
		h.lastKey.startOp, h.lastKey.seq = k.own, k.seq // the actor is the same
	}
	h.waiting.times, h.waiting.text = h.waiting.times[:0], h.waiting.text[:0]
	if cap(h.waiting.times) > 1024 {
		// A long run's buffers are not kept: a server holds thousands of
		// documents, each with a History.
		h.waiting.times, h.waiting.text = nil, nil
	}
}

func (h *History) append(c *crdt.Change) {
	if h.whole != nil {
		key := changeKey{c.StartOp, c.Actor, c.Seq}
		if h.n > 0 && c.StartOp <= h.lastKey.startOp && !h.lastKey.less(key) {
			// Applied order is not the canonical order: the log can no
			// longer be saved as it is, so what only saving needs stops.
			h.whole = nil
			h.log.text = nil
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
	if h.n%chunkRows == 0 {
		h.marks.record(h.log)
	}
	h.log.change(c)
	log.append(c.Seq, h.n/chunkRows, h.log.maxOp) // the writer's maxOp is c.MaxOp()
	h.n++
	h.nOps += len(c.Ops)
}

func (h *History) Len() int { return h.n + len(h.waiting.times) }

// CopiesChanges reports that Append keeps nothing of the change it is
// given (crdt.ChangeCopier).
func (h *History) CopiesChanges() bool { return true }

// All decodes every change, all of them cut from one array of changes and
// one of ops.
func (h *History) All() []*crdt.Change {
	h.writeWaiting()
	if h.n == 0 {
		return nil
	}
	a := &arena{changes: make([]crdt.Change, h.n), ops: make([]crdt.Op, h.nOps)}
	return h.decodeWindows(make([]*crdt.Change, 0, h.n), 0, h.windows(), a)
}

// windows is the number of windows, the last one possibly not full.
func (h *History) windows() int { return (h.n + chunkRows - 1) / chunkRows }

func (h *History) Since(v causal.VersionVector) []*crdt.Change {
	h.writeWaiting()
	var windows []int
	for ai := range h.logs {
		log := &h.logs[ai]
		have := v[h.actors.ids[ai]]
		if have >= log.n {
			continue
		}
		for _, run := range log.chunks[log.runOf(have+1):] {
			windows = append(windows, int(run.chunk))
		}
	}
	slices.Sort(windows)
	windows = slices.Compact(windows)
	var out []*crdt.Change
	a := &arena{}
	for len(windows) > 0 {
		// Consecutive windows are decoded in one pass.
		n := 1
		for n < len(windows) && windows[n] == windows[0]+n {
			n++
		}
		start := len(out)
		out = h.decodeWindows(out, windows[0], n, a)
		windows = windows[n:]
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
	h.writeWaiting()
	log, ok := h.logOf(id)
	if !ok {
		return nil, false
	}
	k := int(log.chunks[log.runOf(id.Seq)].chunk)
	var cs []*crdt.Change
	if k == h.cached.window {
		cs = h.cached.changes
	} else {
		cs = h.decodeWindow(nil, k, &arena{})
		if (k+1)*chunkRows <= h.n { // full: it will not change
			h.cached.window, h.cached.changes = k, cs
		}
	}
	for _, c := range cs {
		if c.Seq == id.Seq && c.Actor == id.Actor {
			return c, true
		}
	}
	panic("encoding: History index names a window without the change " + id.String())
}

func (h *History) MaxOp(id causal.ChangeID) (uint64, bool) {
	// The Doc asks for the previous change of every change it applies: a
	// keystroke still waiting is answered from the run, without writing
	// it (the run's keystrokes are one op each, one after the other).
	if n := uint64(len(h.waiting.times)); n > 0 && id.Actor == h.typing.actor {
		if k := &h.typing; id.Seq <= k.seq && id.Seq > k.seq-n {
			return k.own - (k.seq - id.Seq), true
		}
	}
	log, ok := h.logOf(id)
	if !ok {
		return 0, false
	}
	return log.maxOp(id.Seq), true
}

// logOf returns the index of id's actor if it holds id. Changes still
// waiting to be written are not in it: Get writes them first.
func (h *History) logOf(id causal.ChangeID) (*actorLog, bool) {
	a, ok := h.actors.lookup(id.Actor) // checking each applied change's deps asks for the same few actors
	if !ok || a >= len(h.logs) || id.Seq == 0 || id.Seq > h.logs[a].n {
		return nil, false
	}
	return &h.logs[a], true
}
