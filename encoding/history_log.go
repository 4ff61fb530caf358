package encoding

import (
	"fmt"
	"slices"
	"sync"

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
// modified.
//
// Append hands the writing of the log to a goroutine of its own, which
// runs beside the document's (history_behind.go): a History, like the Doc
// it belongs to, is used by one goroutine at a time, and every method
// waits for what it reads to be written.
type History struct {
	// The log and what indexes it: written by the writer goroutine, or by
	// the caller's goroutine in settle, always with mu held.
	mu     sync.Mutex
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

	cached struct { // the last full window decoded, for runs of Get
		window  int
		changes []*crdt.Change
	}
	times []int64 // a run's times, for writeRun
	chars []byte  // and (typing) its characters

	// The intake: the caller's goroutine's alone.
	typing keystroke // the last change appended, if a keystroke (history_typing.go)
	in     struct {
		total  int    // changes appended
		batch  *batch // the pending batch, nil if none yet
		handed bool   // batches were queued since the last settle
		failed any    // what the writer goroutine panicked with, once raised
		// waiting is the number of keystrokes typed on that Append took
		// into the run at the end of the pending batch (see wait), whose
		// keystrokes start at keys0.
		waiting         int
		keys0           int32
		time0, lastTime int64 // the run's first keystroke's time, and its last's
		first           bool  // the run's first keystroke continues one that did not continue
		// head: the run's first keystroke continues nothing (its left
		// origin, typing, is headLeft)
		head     bool
		headLeft causal.OpID
		// latest is the last change appended by each of the last few
		// actors to append one (see MaxOp), replaced in turn.
		latest     [4]latestChange
		latestNext int
	}

	// Between the two: the batches queued for the writer.
	q struct {
		sync.Mutex
		queue   []*batch
		running bool // a writer goroutine is running
		failed  any  // what the writer panicked with
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
// anything else breaks the index, so it panics (if the writer goroutine
// finds it, at the next call).
func (h *History) Append(c *crdt.Change) {
	h.in.total++
	if k := &h.typing; k.cont {
		if h.typesOn(c) {
			return
		}
	} else if k.kind != keyNone && h.startsRun(c) {
		return
	}
	// Not a keystroke that continues the last one. A keystroke heads a
	// new waiting run (the keystrokes that continue it will join it); any
	// other change is copied whole after the waiting run.
	b := h.pending()
	h.endRun()
	if kind := keystrokeOf(c); kind != keyNone {
		h.typing.remember(c, kind)
		h.wait(c, false)
		h.in.head, h.in.headLeft = true, c.Ops[0].Left
	} else {
		b.copyChange(c)
		h.typing.kind, h.typing.cont = keyNone, false
		h.noteLatest(c.Actor, c.Seq, c.MaxOp())
	}
	if b.full() {
		h.raise()
		if !h.handOver() {
			h.Flush()
		}
	}
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
	return h.wait(c, false)
}

// startsRun is Append's way for a keystroke c that continues the last
// change, a keystroke that did not continue its own predecessor (it heads
// the waiting run, unless a read wrote the run since): c joins the run, or
// starts one whose first keystroke the writer writes the usual way
// (writeRun). It returns false, having done nothing, if c does not
// continue the last change.
func (h *History) startsRun(c *crdt.Change) bool {
	kind := keystrokeOf(c)
	if kind == keyNone {
		return false
	}
	k := &h.typing
	ok, dir := k.continues(c, kind)
	if !ok {
		return false
	}
	k.cont, k.dir = true, dir
	return h.wait(c, true)
}

// wait takes keystroke c, which continues the last keystroke, into the
// run of keystrokes waiting to be written (history_typing.go), unless the
// run is as long as it may be. first says that the last keystroke did not
// continue its own predecessor (then the run is new).
func (h *History) wait(c *crdt.Change, first bool) bool {
	b := h.pending()
	switch h.in.waiting {
	case 0:
		h.in.keys0 = int32(len(b.keys))
		h.in.first, h.in.head = first, false
		h.in.time0, h.in.lastTime = c.Time, c.Time
	case maxWaiting:
		return false
	}
	gap := c.Time - h.in.lastTime
	if gap < -maxKeyGap || gap > maxKeyGap {
		return false // hours since the keystroke before: a run of its own
	}
	h.in.waiting++
	h.in.lastTime = c.Time
	k := &h.typing
	var ch byte
	if k.kind == keyType {
		ch = c.Ops[0].Text[0]
	} else {
		k.elem.Counter = c.Ops[0].Elem.Counter
	}
	b.keys = append(b.keys, packKey(gap, ch))
	k.seq, k.own = c.Seq, c.StartOp
	return true
}

type latestChange struct {
	actor      causal.ActorID
	seq, maxOp uint64
}

// noteLatest records that the latest change appended by actor is seq,
// whose last op counter is maxOp.
func (h *History) noteLatest(actor causal.ActorID, seq, maxOp uint64) {
	for i := range h.in.latest {
		if l := &h.in.latest[i]; l.actor == actor {
			l.seq, l.maxOp = seq, maxOp
			return
		}
	}
	h.in.latest[h.in.latestNext] = latestChange{actor, seq, maxOp}
	h.in.latestNext = (h.in.latestNext + 1) % len(h.in.latest)
}

// maxWaiting bounds the keystrokes of a waiting run, so that writing them
// never holds up a read for long.
const maxWaiting = 1 << 14

func (h *History) append(c *crdt.Change) {
	log := h.admit(c.Actor, h.actors.of(c.Actor), c.Seq, c.StartOp)
	h.log.change(c)
	h.admitted(log, c.Seq, len(c.Ops))
}

// appendKeystroke is append for keystroke k of a run (writeRun) of the
// given seq, op counter and time, written without building its change
// (historyWriter.keystroke says what the other arguments are).
func (h *History) appendKeystroke(k *keystroke, seq, own uint64, time int64, left *causal.OpID, ch byte, elem uint64) {
	log := h.admit(k.actor, k.a, seq, own)
	h.log.keystroke(k, seq, own, time, left, ch, elem)
	h.admitted(log, seq, 1)
}

// admit readies the log for change seq of actor (its index a) starting at
// op startOp, and returns the actor's index of changes.
func (h *History) admit(actor causal.ActorID, a int, seq, startOp uint64) *actorLog {
	if h.whole != nil {
		key := changeKey{startOp, actor, seq}
		if h.n > 0 && startOp <= h.lastKey.startOp && !h.lastKey.less(key) {
			// Applied order is not the canonical order: the log can no
			// longer be saved as it is, so what only saving needs stops.
			h.whole = nil
			h.log.text = nil
		}
		h.lastKey = key
	}
	for len(h.logs) <= a {
		h.logs = append(h.logs, actorLog{})
	}
	log := &h.logs[a]
	if seq != log.n+1 {
		panic(fmt.Sprintf("encoding: History: change %v appended after seq %d of its actor", causal.ChangeID{Actor: actor, Seq: seq}, log.n))
	}
	if h.n%chunkRows == 0 {
		h.marks.record(h.log)
	}
	return log
}

// admitted indexes change seq, of nOps ops, which the log has written.
func (h *History) admitted(log *actorLog, seq uint64, nOps int) {
	log.append(seq, h.n/chunkRows, h.log.maxOp) // the writer's maxOp is the change's MaxOp()
	h.n++
	h.nOps += nOps
}

func (h *History) Len() int { return h.in.total }

// CopiesChanges reports that Append keeps nothing of the change it is
// given (crdt.ChangeCopier).
func (h *History) CopiesChanges() bool { return true }

// All decodes every change, all of them cut from one array of changes and
// one of ops.
func (h *History) All() []*crdt.Change {
	h.settle()
	defer h.mu.Unlock()
	if h.n == 0 {
		return nil
	}
	a := &arena{changes: make([]crdt.Change, h.n), ops: make([]crdt.Op, h.nOps)}
	return h.decodeWindows(make([]*crdt.Change, 0, h.n), 0, h.windows(), a)
}

// windows is the number of windows, the last one possibly not full.
func (h *History) windows() int { return (h.n + chunkRows - 1) / chunkRows }

func (h *History) Since(v causal.VersionVector) []*crdt.Change {
	h.settle()
	defer h.mu.Unlock()
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
	h.settle()
	defer h.mu.Unlock()
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
	if n := uint64(h.in.waiting); n > 0 && id.Actor == h.typing.actor {
		if k := &h.typing; id.Seq <= k.seq && id.Seq > k.seq-n {
			return k.own - (k.seq - id.Seq), true
		}
	}
	// So is an actor's latest change, and the dependencies of a change
	// applied are mostly other actors' latest: answered without writing
	// what waits for the writer, which then goes on writing beside the
	// document applying changes.
	for i := range h.in.latest {
		if l := &h.in.latest[i]; l.seq == id.Seq && l.actor == id.Actor {
			return l.maxOp, true
		}
	}
	h.settle()
	defer h.mu.Unlock()
	log, ok := h.logOf(id)
	if !ok {
		return 0, false
	}
	return log.maxOp(id.Seq), true
}

// logOf returns the index of id's actor if it holds id: a change
// appended is in it once written (settle).
func (h *History) logOf(id causal.ChangeID) (*actorLog, bool) {
	a, ok := h.actors.lookup(id.Actor) // checking each applied change's deps asks for the same few actors
	if !ok || a >= len(h.logs) || id.Seq == 0 || id.Seq > h.logs[a].n {
		return nil, false
	}
	return &h.logs[a], true
}
