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

// keystroke is what History remembers of the last change it appended, if
// that change was a keystroke (see isKeystroke).
type keystroke struct {
	ok     bool // the last change was a keystroke
	cont   bool // and it continued the change before it
	actor  causal.ActorID
	a      int // its index in the actor table
	seq    uint64
	own    uint64 // the counter of its character
	obj    causal.OpID
	right  causal.OpID
	hadObj bool
}

// isKeystroke reports whether c is one change of one insertText op of one
// ASCII character, with no dependency but its actor's previous change and
// no message.
func isKeystroke(c *crdt.Change) bool {
	if len(c.Ops) != 1 || len(c.Deps) != 0 || c.Message != "" {
		return false
	}
	op := &c.Ops[0]
	return op.Action == crdt.ActInsertText && len(op.Text) == 1 && op.Text[0] < 0x80 && !op.Left.IsZero()
}

// continues reports whether the keystroke c types on from k.
func (k *keystroke) continues(c *crdt.Change) bool {
	op := &c.Ops[0]
	return k.ok && c.Actor == k.actor && c.Seq == k.seq+1 && c.StartOp == k.own+1 &&
		op.Left.Counter == k.own && op.Left.Actor == k.actor && op.Obj == k.obj && op.Right == k.right
}

// remember records keystroke c (appended at actor index a) as the last
// change; cont says whether it continued the one before.
func (k *keystroke) remember(c *crdt.Change, a int, cont bool) {
	op := &c.Ops[0]
	*k = keystroke{ok: true, cont: cont, actor: c.Actor, a: a, seq: c.Seq, own: c.StartOp,
		obj: op.Obj, right: op.Right, hadObj: !op.Obj.IsZero()}
}

// canTypeOn reports whether typeOn may write the next keystroke: not if
// the text tracking has given up or is near its size limits, where the
// usual way may change course.
func (w *historyWriter) canTypeOn() bool {
	t := w.text
	return t == nil || !t.bad && t.nChars < 1<<30 && len(w.raw[colText]) < 1<<30 && len(t.pieces) > 0
}

// typeOn writes keystroke c, which continues the last change, itself a
// keystroke that continued the one before it, as the usual way would (see
// above), if canTypeOn.
func (w *historyWriter) typeOn(c *crdt.Change, k *keystroke) {
	t := w.text
	w.nChanges++
	w.nOps++
	w.u[colChActor].n++
	w.s[colChSeq].n++
	w.s[colChStartOp].n++
	w.d[colChTime].add(uint64(c.Time))
	w.u[colChMsgLen].n++
	w.u[colChDepCount].n++
	w.u[colChOpCount].n++
	w.u[colOpAction].n++
	w.u[colOpObjActor].n++
	if k.hadObj {
		w.u[colOpObjCtr].n++
	}
	w.u[colLeftActor].n++
	w.s[colLeftCtr].n++
	w.u[colRightActor].n++
	if !k.right.IsZero() {
		w.u[colRightCtr].n++
		if w.right1 != nil {
			w.right1.n++
		}
	}
	w.u[colTextLen].n++
	text := c.Ops[0].Text
	w.raw[colText] = append(w.raw[colText], text[0])
	if t != nil {
		// textTrack.insert's way for a character that extends the last
		// piece, the previous keystroke's.
		t.widths.n++
		t.prevIns.own = c.StartOp
		p := &t.pieces[len(t.pieces)-1]
		p.nChars++
		p.nBytes++
		t.nChars++
		t.grow()
	}
	w.actor = k.a
	w.lastSeq[k.a] = c.Seq
	w.maxOp = c.StartOp
	w.cur.lastIns = c.StartOp
}
