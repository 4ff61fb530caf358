package encoding

import (
	"encoding/binary"
	"math"
	"slices"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// The history section stores many changes as columns: the number of changes
// and of ops, then the columns below in this order, each as a varint length
// and its bytes. docs/format.md describes each one; the names are the ones
// FormatError reports.
const (
	colChActor = iota
	colChSeq
	colChStartOp
	colChTime
	colChMsgLen
	colChMsg
	colChDepCount
	colDepActor
	colDepSeq
	colChOpCount
	colOpAction
	colOpObjActor
	colOpObjCtr
	colTgtActor
	colTgtCtr
	colKeyLen
	colKey
	colValKind
	colValInt
	colValFloat
	colValStrLen
	colValStr
	colPredCount
	colPredActor
	colPredCtr
	colLeftActor
	colLeftCtr
	colRightActor
	colRightCtr
	colTextLen
	colTextSeg
	colText
	colDelActor
	colDelCtr
	colDelLen
	numCols
)

var colNames = [numCols]string{
	"chActor", "chSeq", "chStartOp", "chTime", "chMsgLen", "chMsg", "chDepCount", "depActor", "depSeq", "chOpCount",
	"opAction", "opObjActor", "opObjCtr", "tgtActor", "tgtCtr", "keyLen", "key",
	"valKind", "valInt", "valFloat", "valStrLen", "valStr", "predCount", "predActor", "predCtr",
	"leftActor", "leftCtr", "rightActor", "rightCtr", "textLen", "textSeg", "text", "delActor", "delCtr", "delLen",
}

// actorTable maps actors to their index in a chunk's sorted actor table.
//
// Writing an op looks up two or three actors (the object's, the origins'),
// usually the same two over and over (the author of the text's container,
// the typist): the last two answers are kept, so that a lookup rarely
// hashes a 16-byte key.
type actorTable struct {
	ids   []causal.ActorID
	index map[causal.ActorID]int
	lastA causal.ActorID
	lastI int // -1: none
	prevA causal.ActorID
	prevI int  // -1: none
	grow  bool // a History's table: of adds the actors it does not know
}

func newActorTable(ids []causal.ActorID) *actorTable {
	t := &actorTable{ids: ids, index: make(map[causal.ActorID]int, len(ids)), lastI: -1, prevI: -1}
	for i, a := range ids {
		t.index[a] = i
	}
	return t
}

// of returns a's index (0 if a is not in the table).
func (t *actorTable) of(a causal.ActorID) int {
	if a == t.lastA && t.lastI >= 0 {
		return t.lastI
	}
	if a == t.prevA && t.prevI >= 0 {
		t.lastA, t.prevA = t.prevA, t.lastA
		t.lastI, t.prevI = t.prevI, t.lastI
		return t.lastI
	}
	i, ok := t.index[a]
	if !ok {
		if !t.grow {
			return 0 // not cached: the caller asked for an actor the table lacks
		}
		i = len(t.ids)
		t.index[a] = i
		t.ids = append(t.ids, a)
	}
	t.prevA, t.prevI = t.lastA, t.lastI
	t.lastA, t.lastI = a, i
	return i
}

// lookup returns a's index, and false if a is not in the table (which
// does not grow).
func (t *actorTable) lookup(a causal.ActorID) (int, bool) {
	switch {
	case a == t.lastA && t.lastI >= 0:
		return t.lastI, true
	case a == t.prevA && t.prevI >= 0:
		return t.prevI, true
	}
	i, ok := t.index[a]
	return i, ok
}

// ref is the nullable form: 0 for the zero OpID, else index+1.
func (t *actorTable) ref(id causal.OpID) uint64 {
	if id.IsZero() {
		return 0
	}
	return uint64(t.of(id.Actor)) + 1
}

type historyWriter struct {
	actors   *actorTable
	u        [numCols]uintCol // RLE columns of unsigned values
	s        [numCols]intCol  // RLE columns of signed values
	d        [numCols]deltaCol
	raw      [numCols][]byte
	lastSeq  []uint64
	maxOp    uint64
	nOps     int
	nChanges int
	cur      cursor
	actor    int        // actor index of the change being written
	text     *textTrack // nil: this writer only writes text mode 0
	// The object of the last op and its actor reference: ops come in
	// long runs on one object.
	lastObj    causal.OpID
	lastObjRef uint64
	// right1, in a History's log, is the rightCtr column as version 1
	// writes it (no prediction): the prediction needs every op before it,
	// which a window decoded from a checkpoint does not have.
	right1 *uintCol
	// typed counts the keystrokes typeOn wrote whose repeated values are
	// not yet in the open runs of held: each adds the same value again to
	// each of those runs, so settle lengthens them once for all (see
	// history_typing.go). Whatever reads or writes a column settles first.
	typed uint64
	held  []*uintCol
}

// cursor predicts the counters of insert origins and deleted characters
// from the ops before them in the chunk: people type on from where they
// were, backspace over what they typed, and jump into the middle of what
// they wrote earlier. A prediction that holds costs a small code; one that
// fails costs the difference.
type cursor struct {
	lastIns   uint64 // counter of the last element inserted
	prevRight uint64 // counter of the last non-null right origin
	prevDel   uint64 // first counter of the last deleteText with an element
	prevLen   uint64 // and its length
}

// Codes of the rightCtr column in version 1.
const (
	rightSame   = 0 // the previous right origin
	rightAfterL = 1 // the element after the left origin: left + 1
	rightOther  = 2 // 2 + zigzag(right - previous right)
)

// Codes of the rightCtr column in version 2: the successor of the left
// origin first (textderive.go, predictRight), then version 1's shifted.
const (
	rightPredicted = 0
	rightShift     = 1
)

// Codes of the delCtr column.
const (
	delBefore  = 0 // ends just before the previous deletion (backspace)
	delAfter   = 1 // starts just after the previous deletion (delete key)
	delLastIns = 2 // ends at the last inserted element
	delOther   = 3 // 3 + zigzag(elem - previous deletion's elem)
)

func (k *cursor) rightCode(left, right uint64) uint64 {
	switch right {
	case k.prevRight:
		return rightSame
	case left + 1:
		return rightAfterL
	}
	return rightOther + zigzag(int64(right-k.prevRight))
}

func (k *cursor) rightFrom(left, code uint64) uint64 {
	switch code {
	case rightSame:
		return k.prevRight
	case rightAfterL:
		return left + 1
	}
	return k.prevRight + uint64(unzigzag(code-rightOther))
}

func (k *cursor) delCode(elem, n uint64) uint64 {
	switch {
	case elem+n == k.prevDel:
		return delBefore
	case elem == k.prevDel+k.prevLen:
		return delAfter
	case elem+n-1 == k.lastIns:
		return delLastIns
	}
	return delOther + zigzag(int64(elem-k.prevDel))
}

func (k *cursor) delFrom(n, code uint64) uint64 {
	switch code {
	case delBefore:
		return k.prevDel - n
	case delAfter:
		return k.prevDel + k.prevLen
	case delLastIns:
		return k.lastIns - n + 1
	}
	return k.prevDel + uint64(unzigzag(code-delOther))
}

// writeHistory writes changes into a new writer that tracks their text
// (for text mode 1).
func writeHistory(actors *actorTable, changes []*crdt.Change) *historyWriter {
	w := newHistoryWriter(actors)
	w.text = &textTrack{}
	w.text.reserve(changes)
	for _, c := range changes {
		w.change(c)
	}
	return w
}

func newHistoryWriter(actors *actorTable) *historyWriter {
	return &historyWriter{actors: actors, lastSeq: make([]uint64, len(actors.ids))}
}

// Text modes of a version 2 history section.
const (
	textSegments = 0 // the text content as segments (textdict.go)
	textDerived  = 1 // visible characters from the dictionary (textderive.go)
)

// textPlan is how a section writes its text. In mode 1 the deleted
// characters are not in the section: the chunk's state section carries
// them as its tail.
type textPlan struct {
	mode   int
	tail   []byte
	places *textPlaces // for derive, if known
}

// derivable reports whether mode 1 may express the writer's text against
// dict, readying the writer for deletedText and derive if so.
func (w *historyWriter) derivable(dict []byte) bool {
	return w.text != nil && w.text.canDerive(w.raw[colText], dict)
}

// derivedPays reports whether mode 1, with lit as its literal stream,
// stays within what a decoder allows (see minRowAllowance).
func (w *historyWriter) derivedPays(dict, lit []byte) bool {
	return int(w.text.nChars) <= minRowAllowance+len(dict)+len(lit)
}

// planText chooses the text mode against dict: mode 1 when the writer
// tracks its text and mode 1 can express it and pays.
func (w *historyWriter) planText(dict []byte) textPlan {
	if !w.derivable(dict) {
		return textPlan{mode: textSegments}
	}
	w.text.settle()
	lit := w.text.deletedText(w.raw[colText])
	if !w.derivedPays(dict, lit) {
		return textPlan{mode: textSegments}
	}
	return textPlan{mode: textDerived, tail: lit}
}

// appendSectionRenumbered appends the history section of the changes
// written so far, with the text written as plan says against dict, the
// actor indices mapped through renumber unless it is nil (see
// History.save), and the columns compressed if compress is set. If mode 1
// turns out impossible (a visible character missing from dict), the
// section falls back to mode 0 and plan says so: its tail is then nil.
func (w *historyWriter) appendSectionRenumbered(b []byte, dict []byte, plan *textPlan, renumber []uint64, compress bool) []byte {
	k := takeKit()
	defer k.release()
	var text sectionText
	if plan.mode == textDerived {
		var ok bool
		if text, ok = w.derivedText(dict, plan.places, k); !ok {
			*plan = textPlan{mode: textSegments}
		}
	}
	if plan.mode == textSegments {
		text = w.segmentText(dict)
	}
	cols := w.columns(renumber, compress)
	cols.addText(text, compress)
	cols.run(k, taskHuffman)
	var out [numCols][]byte
	cols.encode(&out)
	return w.appendSectionParts(b, plan.mode, &out)
}

// isTextColumn reports whether column i is one of those whose content
// depends on the text mode.
func isTextColumn(i int) bool { return i == colTextLen || i == colTextSeg || i == colText }

// sectionText is the content of the text columns in a section's mode.
type sectionText struct{ textLen, seg, lit []byte }

// derivedText computes the text columns of mode 1 (derivable first); ok is
// false if mode 1 cannot place every visible character in dict.
func (w *historyWriter) derivedText(dict []byte, places *textPlaces, k *kit) (sectionText, bool) {
	w.settle()
	deltas, ok := w.text.derive(w.raw[colText], dict, places, k)
	return sectionText{textLen: w.text.widths.bytes(), seg: deltas}, ok
}

// segmentText computes the text columns of mode 0.
func (w *historyWriter) segmentText(dict []byte) sectionText {
	seg, lit := matchText(w.raw[colText], dict)
	return sectionText{textLen: w.column(colTextLen), seg: seg, lit: lit}
}

// appendSectionParts appends a section from its encoded columns.
func (w *historyWriter) appendSectionParts(b []byte, mode int, cols *[numCols][]byte) []byte {
	n := 2*binary.MaxVarintLen64 + 1
	for _, c := range cols {
		n += len(c)
	}
	b = slices.Grow(b, n)
	b = appendUvarint(b, uint64(w.nChanges))
	b = appendUvarint(b, uint64(w.nOps))
	b = append(b, byte(mode))
	for i := range cols {
		b = append(b, cols[i]...)
	}
	return b
}

// Which writer each column uses; the decoder mirrors this table.
const (
	kindU = iota
	kindS
	kindD
	kindRaw
)

var colKinds = [numCols]int{
	colChActor: kindU, colChSeq: kindS, colChStartOp: kindS, colChTime: kindD, colChMsgLen: kindU, colChMsg: kindRaw,
	colChDepCount: kindU, colDepActor: kindU, colDepSeq: kindS, colChOpCount: kindU,
	colOpAction: kindU, colOpObjActor: kindU, colOpObjCtr: kindU, colTgtActor: kindU, colTgtCtr: kindS,
	colKeyLen: kindU, colKey: kindRaw, colValKind: kindU, colValInt: kindS, colValFloat: kindRaw,
	colValStrLen: kindU, colValStr: kindRaw, colPredCount: kindU, colPredActor: kindU, colPredCtr: kindS,
	colLeftActor: kindU, colLeftCtr: kindS, colRightActor: kindU, colRightCtr: kindU,
	colTextLen: kindU, colTextSeg: kindRaw, colText: kindRaw, colDelActor: kindU, colDelCtr: kindU, colDelLen: kindU,
}

func (w *historyWriter) column(i int) []byte {
	w.settle()
	switch colKinds[i] {
	case kindU:
		return w.u[i].bytes()
	case kindS:
		return w.s[i].bytes()
	case kindD:
		return w.d[i].bytes()
	}
	return w.raw[i]
}

func (w *historyWriter) change(c *crdt.Change) {
	a := w.actors.of(c.Actor)
	w.changeHeader(a, c.Seq, c.StartOp, c.Time, c.Message, len(c.Deps))
	for _, d := range c.Deps {
		da := w.actors.of(d.Actor)
		w.fitSeqs()
		w.u[colDepActor].add(uint64(da))
		w.s[colDepSeq].add(int64(w.lastSeq[da] - d.Seq))
	}
	w.u[colChOpCount].add(uint64(len(c.Ops)))
	own := c.StartOp
	for i := range c.Ops {
		w.op(&c.Ops[i], own)
		own += c.Ops[i].Width()
	}
	w.changeDone(a, c.Seq, own-1, len(c.Ops))
}

// changeHeader writes what a change by the actor of index a says of
// itself before its dependencies: its actor, seq, start op, time, message
// and how many dependencies it has.
func (w *historyWriter) changeHeader(a int, seq, startOp uint64, time int64, msg string, deps int) {
	w.settle()
	w.nChanges++
	w.fitSeqs()
	w.actor = a
	w.u[colChActor].add(uint64(a))
	w.s[colChSeq].add(int64(seq - (w.lastSeq[a] + 1)))
	w.s[colChStartOp].add(int64(startOp - (w.maxOp + 1)))
	w.d[colChTime].add(uint64(time))
	w.u[colChMsgLen].add(uint64(len(msg)))
	w.raw[colChMsg] = append(room(w.raw[colChMsg], len(msg)), msg...)
	w.u[colChDepCount].add(uint64(deps))
}

// changeDone records that the change (seq of the actor of index a, nOps
// ops, the last of them maxOp) is written.
func (w *historyWriter) changeDone(a int, seq, maxOp uint64, nOps int) {
	w.nOps += nOps
	w.lastSeq[a] = seq
	w.maxOp = maxOp
}

// keystroke writes keystroke k (history_typing.go) of the given seq, op
// counter and time, as change writes the change it stands for: typing
// ch after left, or deleting the character elem of k.elem's actor. A run
// of keystrokes whose columns are not yet typing's (history_behind.go,
// writeRun) begins so, without building a change: the actors' indices are
// known, and only what varies between keystrokes is looked at.
func (w *historyWriter) keystroke(k *keystroke, seq, own uint64, time int64, left *causal.OpID, ch byte, elem uint64) {
	w.changeHeader(k.a, seq, own, time, "", 0)
	w.u[colChOpCount].add(1)
	if k.kind == keyType {
		w.opObject(crdt.ActInsertText, &k.obj)
		w.insertText(&k.obj, left, &k.right, own, 1, oneByte(ch))
	} else {
		w.opObject(crdt.ActDeleteText, &k.obj)
		e := causal.OpID{Counter: elem, Actor: k.elem.Actor}
		w.deleteText(&e, k.elemA, 1)
	}
	w.changeDone(k.a, seq, own, 1)
}

// fitSeqs makes room in lastSeq for every actor of the table, which in a
// History grows as changes mention new actors.
func (w *historyWriter) fitSeqs() {
	for len(w.lastSeq) < len(w.actors.ids) {
		w.lastSeq = append(w.lastSeq, 0)
	}
}

func (w *historyWriter) op(op *crdt.Op, own uint64) {
	w.opObject(op.Action, &op.Obj)
	switch op.Action {
	case crdt.ActPut, crdt.ActDelete, crdt.ActIncrement:
		w.u[colTgtActor].add(w.actors.ref(op.Elem))
		if op.Elem.IsZero() {
			w.u[colKeyLen].add(uint64(len(op.Key)))
			w.raw[colKey] = append(room(w.raw[colKey], len(op.Key)), op.Key...)
		} else {
			w.s[colTgtCtr].add(int64(own - op.Elem.Counter))
		}
		if op.Action != crdt.ActDelete {
			w.value(op.Value)
		}
		w.u[colPredCount].add(uint64(len(op.Pred)))
		for _, p := range op.Pred {
			w.u[colPredActor].add(w.actors.ref(p))
			w.s[colPredCtr].add(int64(own - p.Counter))
		}
	case crdt.ActInsert:
		w.origins(op.Action, &op.Obj, &op.Left, &op.Right, own, op.Width())
		w.value(op.Value)
	case crdt.ActInsertText:
		w.insertText(&op.Obj, &op.Left, &op.Right, own, op.Width(), op.Text)
	case crdt.ActDeleteText:
		a := -1
		if !op.Elem.IsZero() {
			a = w.actors.of(op.Elem.Actor)
		}
		w.deleteText(&op.Elem, a, op.Len)
	}
}

// opObject writes an op's action and object.
func (w *historyWriter) opObject(action crdt.Action, obj *causal.OpID) {
	w.u[colOpAction].add(uint64(action))
	if *obj != w.lastObj { // the zero values agree: ref(zero) is 0
		w.lastObj, w.lastObjRef = *obj, w.actors.ref(*obj)
	}
	w.u[colOpObjActor].add(w.lastObjRef)
	if !obj.IsZero() {
		w.u[colOpObjCtr].add(obj.Counter)
	}
}

// origins writes the origins of an insert of width elements from own.
func (w *historyWriter) origins(action crdt.Action, obj, left, right *causal.OpID, own, width uint64) {
	w.u[colLeftActor].add(w.actors.ref(*left))
	if !left.IsZero() {
		w.s[colLeftCtr].add(int64(left.Counter - w.cur.lastIns))
	}
	w.u[colRightActor].add(w.actors.ref(*right))
	if !right.IsZero() {
		code := rightShift + w.cur.rightCode(left.Counter, right.Counter)
		if w.right1 != nil {
			w.right1.add(code - rightShift)
		}
		if w.text != nil && action == crdt.ActInsertText {
			if p, ok := w.text.predictRight(obj, left, w.actors); ok && p == *right {
				code = rightPredicted
			}
		}
		w.u[colRightCtr].add(code)
		w.cur.prevRight = right.Counter
	}
	w.cur.lastIns = own + width - 1
}

// insertText writes what follows the object of an insertText op of text
// (width characters) at own. (opObject has just written obj: its actor's
// reference is w.lastObjRef.)
func (w *historyWriter) insertText(obj, left, right *causal.OpID, own, width uint64, text string) {
	w.origins(crdt.ActInsertText, obj, left, right, own, width)
	w.u[colTextLen].add(uint64(len(text)))
	start := len(w.raw[colText])
	w.raw[colText] = append(room(w.raw[colText], len(text)), text...)
	if w.text != nil {
		la := -1
		if !left.IsZero() {
			la = w.actors.of(left.Actor)
		}
		w.text.insert(w.raw[colText], w.actor, own, *obj, *left, int(w.lastObjRef)-1, la, *right, text, start)
	}
}

// deleteText writes what follows the object of a deleteText op of n
// elements from elem, whose actor's index is elemA (unless elem is zero).
func (w *historyWriter) deleteText(elem *causal.OpID, elemA int, n uint64) {
	w.u[colDelActor].add(w.actors.ref(*elem))
	if !elem.IsZero() {
		w.u[colDelCtr].add(w.cur.delCode(elem.Counter, n))
		w.cur.prevDel, w.cur.prevLen = elem.Counter, n
		if w.text != nil {
			w.text.delete(elemA, elem.Counter, n)
		}
	}
	w.u[colDelLen].add(n)
}

func (w *historyWriter) value(v crdt.Value) {
	w.u[colValKind].add(uint64(v.Kind()))
	switch v.Kind() {
	case crdt.KindBool:
		if v.Bool() {
			w.s[colValInt].add(1)
		} else {
			w.s[colValInt].add(0)
		}
	case crdt.KindInt, crdt.KindCounter:
		w.s[colValInt].add(v.Int())
	case crdt.KindFloat:
		w.raw[colValFloat] = binary.LittleEndian.AppendUint64(w.raw[colValFloat], math.Float64bits(v.Float()))
	case crdt.KindString, crdt.KindBytes:
		w.u[colValStrLen].add(uint64(len(v.Str())))
		w.raw[colValStr] = append(room(w.raw[colValStr], len(v.Str())), v.Str()...)
	}
}
