package encoding

import (
	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// Typing on, in O(1).
//
// Most changes of an editing session are keystrokes that continue the one
// before: the same actor, the next seq and counter, no other dependency,
// one insertText op of one ASCII character into the same text, after the
// character just typed and before the same right origin. Written the usual
// way, such a change adds to some twenty columns and looks up actors and
// predictions, and every value it adds is the one the previous keystroke
// added, provided that one continued its own predecessor too: the seq,
// start-op and left-origin deltas are 0, the right origin is the previous
// one (and predicted), the actor, object, action and counts are the same.
// Each integer column keeps its last value as an open run, so adding the
// same value again is one increment. So once a keystroke has continued the
// one before it, the next ones that continue it are written by incrementing
// those runs, adding the time (which varies) and the character, and
// extending the text piece; the result is byte for byte what the usual way
// writes (TestHistoryTypingMatchesEncodeDocument).
//
// They are not even written one by one: History.Append keeps such a
// keystroke's time and character in a waiting run, and writes the run in
// one go (typeOn, below) when a change that does not continue it arrives
// or anything reads the log.

// keystroke is what History remembers of the last change it appended, if
// that change was a keystroke (see keystrokeOf).
type keystroke struct {
	kind  int  // keyNone, keyType or keyDelete
	cont  bool // it continued the change before it
	actor causal.ActorID
	a     int // its index in the actor table (set by writeRun)
	seq   uint64
	own   uint64 // its op's counter
	obj   causal.OpID
	right causal.OpID // keyType: the right origin
	elem  causal.OpID // keyDelete: the deleted character
	elemA int         // and its actor's index
	dir   int         // keyDelete, if cont: +1 deleting forward, -1 backspacing
}

// The kinds of keystroke.
const (
	keyNone   = iota
	keyType   // one insertText op of one ASCII character after a character
	keyDelete // one deleteText op of one character
)

// keystrokeOf returns the kind of keystroke c is: a change of one op,
// with no dependency but its actor's previous change and no message, that
// types one ASCII character or deletes one character.
func keystrokeOf(c *crdt.Change) int {
	if len(c.Ops) != 1 || len(c.Deps) != 0 || c.Message != "" {
		return keyNone
	}
	switch op := &c.Ops[0]; op.Action {
	case crdt.ActInsertText:
		if len(op.Text) == 1 && op.Text[0] < 0x80 && !op.Left.IsZero() {
			return keyType
		}
	case crdt.ActDeleteText:
		if op.Len == 1 && !op.Elem.IsZero() {
			return keyDelete
		}
	}
	return keyNone
}

// continues reports whether c, a keystroke of the given kind, follows on
// from k: typing after the character k typed, before the same right
// origin; or deleting the character next to the one k deleted (dir says
// which side).
func (k *keystroke) continues(c *crdt.Change, kind int) (ok bool, dir int) {
	op := &c.Ops[0]
	if k.kind != kind || c.Actor != k.actor || c.Seq != k.seq+1 || c.StartOp != k.own+1 || op.Obj != k.obj {
		return false, 0
	}
	if kind == keyType {
		return op.Left.Counter == k.own && op.Left.Actor == k.actor && op.Right == k.right, 0
	}
	if op.Elem.Actor != k.elem.Actor {
		return false, 0
	}
	switch op.Elem.Counter {
	case k.elem.Counter + 1:
		return true, 1
	case k.elem.Counter - 1:
		return true, -1
	}
	return false, 0
}

// remember records keystroke c (of the given kind) as the last change,
// one that continues nothing (startsRun then sees whether the next one
// continues it). (The actor indices are the writer's to fill in: see
// writeRun.)
func (k *keystroke) remember(c *crdt.Change, kind int) {
	op := &c.Ops[0]
	*k = keystroke{kind: kind, actor: c.Actor, seq: c.Seq, own: c.StartOp,
		obj: op.Obj, right: op.Right, elem: op.Elem}
}

// canTypeOn reports whether typeOn may write the next keystroke, with
// waiting more before it: not if the text tracking has given up or is
// near its size limits, where the usual way may change course.
func (w *historyWriter) canTypeOn(waiting int) bool {
	t := w.text
	return t == nil || !t.bad && t.nChars+uint32(waiting) < 1<<30 && len(w.raw[colText])+waiting < 1<<30 && len(t.pieces) > 0
}

// typingRun is a run of keystrokes, each continuing the one before in the
// same way: the first one's seq, op counter and (deleting) deleted
// character's counter, and each one's time and (typing) character.
type typingRun struct {
	seq, own, elem uint64
	times          []int64
	text           []byte
}

// typeOn writes run, whose keystrokes continue the last change k, itself a
// keystroke of the same kind that continued the one before it in the same
// way, as the usual way would (see above), if canTypeOn. Of the values
// they add, only the times and the characters vary; the others lengthen
// open runs, which it leaves to settle. A run of keystrokes then costs
// about a time each.
func (w *historyWriter) typeOn(k *keystroke, run typingRun) {
	n := uint64(len(run.times))
	w.nChanges += int(n)
	w.nOps += int(n)
	if w.typed == 0 {
		w.hold(k)
	}
	w.typed += n
	for _, t := range run.times {
		w.d[colChTime].add(uint64(t))
	}
	last := run.own + n - 1
	w.actor = k.a
	w.lastSeq[k.a] = run.seq + n - 1
	w.maxOp = last
	if k.kind == keyDelete {
		// The characters deleted, one after another in the direction of
		// k.dir, are a range of counters.
		lo := run.elem
		if k.dir < 0 {
			lo = run.elem - (n - 1)
		}
		w.cur.prevDel = run.elem + uint64(int(n-1)*k.dir)
		if w.text != nil {
			w.text.delete(k.elemA, lo, n)
		}
		return
	}
	w.raw[colText] = append(room(w.raw[colText], len(run.text)), run.text...)
	if t := w.text; t != nil {
		// textTrack.insert's way for characters that extend the last
		// piece, the previous keystroke's.
		t.prevIns.own = last
		p := &t.pieces[len(t.pieces)-1]
		p.nChars += uint32(n)
		p.nBytes += uint32(n)
		t.nChars += uint32(n)
		t.grow()
	}
	w.cur.lastIns = last
}

// hold lists the open runs that each keystroke typing on like k lengthens
// by one: the change's actor, seq and start-op deltas, message length, dependency
// and op counts; the op's action and object; for a deletion the deleted
// character's actor and code and the length; for typing the origins'
// actors and codes and the text length (in both text modes).
func (w *historyWriter) hold(k *keystroke) {
	h := append(w.held[:0], &w.u[colChActor], &w.s[colChSeq].uintCol, &w.s[colChStartOp].uintCol,
		&w.u[colChMsgLen], &w.u[colChDepCount], &w.u[colChOpCount], &w.u[colOpAction], &w.u[colOpObjActor])
	if !k.obj.IsZero() {
		h = append(h, &w.u[colOpObjCtr])
	}
	if k.kind == keyDelete {
		h = append(h, &w.u[colDelActor], &w.u[colDelCtr], &w.u[colDelLen])
	} else {
		h = append(h, &w.u[colLeftActor], &w.s[colLeftCtr].uintCol, &w.u[colRightActor], &w.u[colTextLen])
		if !k.right.IsZero() {
			h = append(h, &w.u[colRightCtr])
			if w.right1 != nil {
				h = append(h, w.right1)
			}
		}
		if w.text != nil {
			h = append(h, &w.text.widths)
		}
	}
	w.held = h
}

// settle adds to the held runs what typeOn left for later.
func (w *historyWriter) settle() {
	if w.typed == 0 {
		return
	}
	for _, c := range w.held {
		c.n += w.typed
	}
	w.typed = 0
}
