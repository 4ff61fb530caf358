package encoding

import (
	"encoding/binary"
	"math"
	"slices"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// Decoder limit for untrusted input: run-length encoding lets a few bytes
// stand for many rows, so the rows a history section may announce (changes,
// ops, dependencies and predecessors together) are capped at maxRowsPerByte
// per raw byte of the section and its text, plus minRowAllowance; a forged
// count is refused before anything is allocated. Real histories can be far
// more compact than that (typing or counting in a tight loop is a few runs
// per column), which the allowance covers up to a million rows; a document
// this program saved itself (LoadDoc, the in-memory History) is not bounded
// this way.
const (
	maxRowsPerByte  = 64
	minRowAllowance = 1 << 20
)

// rawCol reads byte strings out of a raw column. The column is converted to
// a string once and sliced, so decoded keys and texts share its memory.
type rawCol struct {
	r reader
	s string
}

func (c *rawCol) take(n uint64) (string, error) {
	start := c.r.off
	if _, err := c.r.bytes(n); err != nil {
		return "", err
	}
	return c.s[start:c.r.off], nil
}

func (c *rawCol) end() error {
	if !c.r.done() {
		return c.r.fail(ErrMalformed, "%d bytes not used by any row", c.r.rest())
	}
	return nil
}

type historyReader struct {
	actors  []causal.ActorID
	u       [numCols]*uintIter
	d       [numCols]*deltaIter
	raw     [numCols]*rawCol
	budget  int
	lastSeq []uint64
	maxOp   uint64
	top     *reader
	cur     cursor
	arena   *arena
	version byte

	chActor causal.ActorID // of the change being read
	width   uint64         // of the op just read
	derived bool           // text mode 1
	dr      deriveReader
	// LoadDoc's first pass over a text mode 1 section skims: no texts,
	// no right origins, only what says which characters are deleted.
	skim      bool
	charLimit uint64
}

func (h *historyReader) spend(n int, what string) error {
	if n > h.budget {
		return h.top.fail(ErrMalformed, "%s exceed the decoder limit", what)
	}
	h.budget -= n
	return nil
}

// decodeHistory decodes a history section's (uncompressed) bytes, written
// by format version v; dict is the chunk's text dictionary.
func decodeHistory(body []byte, actors []causal.ActorID, dict []byte, v byte) ([]*crdt.Change, error) {
	return decodeHistoryInto(nil, body, actors, dict, nil, v, &arena{}, true)
}

// readColumns reads the column table of a history section of version v,
// decompressing the columns of version 2, and returns the total raw size.
func readColumns(r *reader, v byte) (cols [numCols][]byte, total int, err error) {
	for i := 0; i < numCols; i++ {
		r.column = colNames[i]
		n, err := r.uvarint()
		if err != nil {
			return cols, 0, err
		}
		var flags byte
		var rawLen uint64
		if v >= 2 && n > 0 {
			if flags, err = r.byte(); err != nil {
				return cols, 0, err
			}
			if flags&^(flagDeflate|flagZstd) != 0 || flags == flagDeflate|flagZstd {
				return cols, 0, r.fail(ErrMalformed, "unknown flags %#x", flags)
			}
			if flags != 0 {
				if rawLen, err = r.uvarint(); err != nil {
					return cols, 0, err
				}
			}
		}
		b, err := r.bytes(n)
		if err != nil {
			return cols, 0, err
		}
		if flags != 0 {
			if fe := checkRawLen(flags, rawLen, len(b)); fe != nil {
				return cols, 0, r.fail(ErrMalformed, "%s", fe.Detail)
			}
			if b, err = decompress(b, flags, int(rawLen), r.section, colNames[i]); err != nil {
				return cols, 0, err
			}
		}
		cols[i] = b
		total += len(b)
	}
	r.column = ""
	return cols, total, nil
}

// decodeHistoryInto appends the decoded changes to out, taking the changes,
// ops, dependencies and predecessors from a (see arena.go). tail is what
// followed the state in the chunk's state section (version 2).
// limited bounds the rows by the input's size (untrusted input).
func decodeHistoryInto(out []*crdt.Change, body []byte, actors []causal.ActorID, dict, tail []byte, v byte, a *arena, limited bool) ([]*crdt.Change, error) {
	s, err := openHistory(body, actors, dict, tail, v, limited)
	if err != nil {
		return nil, err
	}
	s.h.arena = a
	if s.h.derived {
		s.h.dr.waiting = make([]waitingOp, 0, min(s.opsLeft, 1<<20))
	}
	if out, err = s.next(out, s.changesLeft); err != nil {
		return nil, err
	}
	if err := s.finish(); err != nil {
		return nil, err
	}
	return out, nil
}

// historyStream decodes the changes of a history section in order, as
// many at a time as asked (LoadDoc replays a long history in batches).
type historyStream struct {
	h                    *historyReader
	dict, tail           []byte
	changesLeft, opsLeft int       // announced and not read yet
	read                 int       // changes read
	recycle              *recycled // if not nil, every batch is cut from the same memory
}

// recycled is the memory of a pass whose batches are dropped before the
// next one is read (LoadDoc's passes over a long history: the first only
// learns which characters are deleted, the second's changes are copied by
// the document they are applied to): each batch's changes and ops are cut
// from what the batch before used, which the cache still holds, rather
// than from memory the system must map and zero, and the collector then
// scan.
type recycled struct {
	changes []crdt.Change
	ops     []crdt.Op
	used    int // ops handed out in this batch
}

// batch returns n cleared changes, and starts handing out ops from the
// beginning again.
func (r *recycled) batch(n int) []crdt.Change {
	if cap(r.changes) < n {
		r.changes = make([]crdt.Change, n)
	}
	cs := r.changes[:n]
	clear(cs)
	r.used = 0
	return cs
}

// opsFor returns m cleared ops. Growing makes a new array: the batch's
// earlier changes keep theirs.
func (r *recycled) opsFor(m int) []crdt.Op {
	if r.used+m > len(r.ops) {
		r.ops, r.used = make([]crdt.Op, max(2*len(r.ops), m, 16*minArena)), 0
	}
	ops := r.ops[r.used : r.used+m : r.used+m]
	clear(ops)
	r.used += m
	return ops
}

// openHistory reads a history section's header and columns and sets up
// its readers.
func openHistory(body []byte, actors []causal.ActorID, dict, tail []byte, v byte, limited bool) (*historyStream, error) {
	const section = "history"
	r := newReader(body, section)
	h := &historyReader{actors: actors, lastSeq: make([]uint64, len(actors)), top: r, version: v}
	nc, err := r.uvarint()
	if err != nil {
		return nil, err
	}
	no, err := r.uvarint()
	if err != nil {
		return nil, err
	}
	if v >= 2 {
		m, err := r.byte()
		if err != nil {
			return nil, err
		}
		if m > textDerived {
			return nil, r.fail(ErrMalformed, "unknown text mode %d", m)
		}
		h.derived = m == textDerived
	}
	if !h.derived && len(tail) > 0 {
		return nil, formatErr(ErrMalformed, "state", "", 0, "%d bytes after the root", len(tail))
	}
	cols, total, err := readColumns(r, v)
	if err != nil {
		return nil, err
	}
	if !r.done() {
		return nil, r.fail(ErrMalformed, "%d bytes after the last column", r.rest())
	}
	// The limit counts the raw bytes: the body for version 1, whose whole
	// section is compressed, the columns for version 2.
	size := len(body)
	if v >= 2 {
		size = total
	}
	size += len(dict) + len(tail)
	h.budget = math.MaxInt / 8
	if limited && size <= (math.MaxInt/8-minRowAllowance)/maxRowsPerByte {
		h.budget = minRowAllowance + maxRowsPerByte*size
	}
	if nc > uint64(h.budget) || no > uint64(h.budget) {
		return nil, r.fail(ErrMalformed, "%d changes and %d ops exceed the decoder limit", nc, no)
	}
	if err := h.spend(int(nc)+int(no), "changes and ops"); err != nil {
		return nil, err
	}
	for i := 0; i < numCols; i++ {
		b := cols[i]
		kind := colKinds[i]
		if h.derived && i == colTextSeg {
			kind = kindU // the deltas of text mode 1
		}
		switch kind {
		case kindU, kindS:
			h.u[i] = newUintIter(b, section, colNames[i])
		case kindD:
			h.d[i] = newDeltaIter(b, section, colNames[i])
		default:
			h.raw[i] = &rawCol{r: reader{b: b, section: section, column: colNames[i]}, s: string(b)}
		}
	}
	if h.derived {
		if len(cols[colText]) != 0 {
			return nil, r.fail(ErrMalformed, "text column not empty in text mode 1")
		}
		h.charLimit = uint64(h.budget) + uint64(len(dict)) + uint64(len(tail))
	} else {
		text, err := expandText(h.raw[colTextSeg].r.b, h.raw[colText].r.b, dict, h.budget+4*len(dict))
		if err != nil {
			return nil, err
		}
		h.raw[colTextSeg].r.off = len(h.raw[colTextSeg].r.b)
		h.raw[colText] = &rawCol{r: reader{b: text, section: section, column: colNames[colText]}, s: string(text)}
	}
	return &historyStream{h: h, dict: dict, tail: tail, changesLeft: int(nc), opsLeft: int(no)}, nil
}

// next appends the next n changes (fewer if fewer are left), taking them
// from h.arena. In text mode 1 their texts are set by finish, unless the
// reader places them as it reads (h.dr.placing) or skims (h.skim: no
// texts at all).
func (s *historyStream) next(out []*crdt.Change, n int) ([]*crdt.Change, error) {
	h, r := s.h, s.h.top
	n = min(n, s.changesLeft)
	out = slices.Grow(out, n)
	var cs []crdt.Change
	all := n == s.changesLeft
	var ops []crdt.Op
	switch {
	case s.recycle != nil:
		cs = s.recycle.batch(n)
	case all:
		cs = take(&h.arena.changes, n, 0)
		ops = take(&h.arena.ops, s.opsLeft, 0)
	default:
		cs = take(&h.arena.changes, n, 0)
	}
	for i := range cs {
		c := &cs[i]
		a, m, err := h.change(c)
		if err != nil {
			return nil, err
		}
		if m > uint64(s.opsLeft) {
			return nil, r.fail(ErrMalformed, "change %d has %d ops, only %d left", s.read, m, s.opsLeft)
		}
		if m > 0 {
			switch {
			case s.recycle != nil:
				c.Ops = s.recycle.opsFor(int(m))
			case all:
				c.Ops = ops[:m:m]
				ops = ops[m:]
			default:
				c.Ops = take(&h.arena.ops, int(m), 16*minArena)
			}
		}
		s.opsLeft -= int(m)
		own := c.StartOp
		h.chActor = c.Actor
		for j := range c.Ops {
			if err := h.op(&c.Ops[j], own); err != nil {
				return nil, err
			}
			own += h.width
		}
		h.lastSeq[a] = c.Seq
		h.maxOp = own - 1
		out = append(out, c)
		s.read++
	}
	s.changesLeft -= n
	switch {
	case h.dr.placing:
		h.dr.settle()
	case h.skim:
		h.dr.forget()
	}
	return out, nil
}

// finish checks, once every change is read, that the columns hold nothing
// more, and in text mode 1 gives the ops their texts (unless placed).
func (s *historyStream) finish() error {
	h := s.h
	if s.opsLeft != 0 {
		return h.top.fail(ErrMalformed, "%d ops announced but not used", s.opsLeft)
	}
	if h.derived {
		var err error
		switch {
		case h.dr.placing:
			err = h.dr.endPlacing()
		case !h.skim:
			err = h.dr.rebuild(s.dict, s.tail, h.u[colTextSeg])
		}
		if err != nil {
			return err
		}
	}
	for i := 0; i < numCols; i++ {
		var err error
		switch {
		case h.skim && i == colTextSeg:
			continue // the first pass does not read the texts
		case h.u[i] != nil:
			err = h.u[i].end()
		case h.d[i] != nil:
			err = h.d[i].end()
		default:
			err = h.raw[i].end()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (h *historyReader) actor(col int) (int, error) {
	i, err := h.u[col].next()
	if err == nil && i >= uint64(len(h.actors)) {
		err = h.u[col].r.fail(ErrMalformed, "actor index %d beyond table of %d", i, len(h.actors))
	}
	return int(i), err
}

// opID reads a nullable actor column and, for a non-null ID, its counter
// through ctr.
func (h *historyReader) opID(actorCol int, ctr func() (uint64, error)) (causal.OpID, error) {
	ref, err := h.u[actorCol].next()
	if err != nil || ref == 0 {
		return causal.OpID{}, err
	}
	if ref > uint64(len(h.actors)) {
		return causal.OpID{}, h.u[actorCol].r.fail(ErrMalformed, "actor index %d beyond table of %d", ref-1, len(h.actors))
	}
	c, err := ctr()
	return causal.OpID{Counter: c, Actor: h.actors[ref-1]}, err
}

// rel reads a counter stored as base minus counter.
func (h *historyReader) rel(col int, own uint64) func() (uint64, error) {
	return func() (uint64, error) {
		d, err := h.u[col].nextInt()
		return own - uint64(d), err
	}
}

// plus reads a counter stored as counter minus base.
func (h *historyReader) plus(col int, base uint64) func() (uint64, error) {
	return func() (uint64, error) {
		d, err := h.u[col].nextInt()
		return base + uint64(d), err
	}
}

func (h *historyReader) change(c *crdt.Change) (actor int, nOps uint64, err error) {
	a, err := h.actor(colChActor)
	if err != nil {
		return 0, 0, err
	}
	c.Actor = h.actors[a]
	d, err := h.u[colChSeq].nextInt()
	if err != nil {
		return 0, 0, err
	}
	c.Seq = h.lastSeq[a] + 1 + uint64(d)
	if d, err = h.u[colChStartOp].nextInt(); err != nil {
		return 0, 0, err
	}
	c.StartOp = h.maxOp + 1 + uint64(d)
	t, err := h.d[colChTime].next()
	if err != nil {
		return 0, 0, err
	}
	c.Time = int64(t)
	n, err := h.u[colChMsgLen].next()
	if err != nil {
		return 0, 0, err
	}
	if c.Message, err = h.raw[colChMsg].take(n); err != nil {
		return 0, 0, err
	}
	if n, err = h.u[colChDepCount].next(); err != nil {
		return 0, 0, err
	}
	if n > 0 {
		if n > uint64(h.budget) {
			return 0, 0, h.top.fail(ErrMalformed, "%d dependencies exceed the decoder limit", n)
		}
		if err := h.spend(int(n), "dependencies"); err != nil {
			return 0, 0, err
		}
		c.Deps = take(&h.arena.deps, int(n), minArena)
	}
	for i := range c.Deps {
		da, err := h.actor(colDepActor)
		if err != nil {
			return 0, 0, err
		}
		if d, err = h.u[colDepSeq].nextInt(); err != nil {
			return 0, 0, err
		}
		c.Deps[i] = causal.ChangeID{Actor: h.actors[da], Seq: h.lastSeq[da] - uint64(d)}
	}
	nOps, err = h.u[colChOpCount].next()
	return a, nOps, err
}

func (h *historyReader) op(op *crdt.Op, own uint64) error {
	h.width = 1
	act, err := h.u[colOpAction].next()
	if err != nil {
		return err
	}
	op.Action = crdt.Action(act)
	if act > math.MaxUint8 || !validAction(op.Action) {
		return h.u[colOpAction].r.fail(ErrMalformed, "unknown action %d", act)
	}
	if op.Obj, err = h.opID(colOpObjActor, h.u[colOpObjCtr].next); err != nil {
		return err
	}
	switch op.Action {
	case crdt.ActPut, crdt.ActDelete, crdt.ActIncrement:
		if op.Elem, err = h.opID(colTgtActor, h.rel(colTgtCtr, own)); err != nil {
			return err
		}
		if op.Elem.IsZero() {
			n, err := h.u[colKeyLen].next()
			if err != nil {
				return err
			}
			if op.Key, err = h.raw[colKey].take(n); err != nil {
				return err
			}
		}
		if op.Action != crdt.ActDelete {
			if op.Value, err = h.value(); err != nil {
				return err
			}
		}
		n, err := h.u[colPredCount].next()
		if err != nil {
			return err
		}
		if n > 0 {
			if n > uint64(h.budget) {
				return h.top.fail(ErrMalformed, "%d predecessors exceed the decoder limit", n)
			}
			if err := h.spend(int(n), "predecessors"); err != nil {
				return err
			}
			op.Pred = take(&h.arena.preds, int(n), minArena)
		}
		for i := range op.Pred {
			if op.Pred[i], err = h.opID(colPredActor, h.rel(colPredCtr, own)); err != nil {
				return err
			}
		}
	case crdt.ActInsert, crdt.ActInsertText:
		if op.Left, err = h.opID(colLeftActor, h.plus(colLeftCtr, h.cur.lastIns)); err != nil {
			return err
		}
		right := func() (uint64, error) {
			code, err := h.u[colRightCtr].next()
			if err != nil || h.version < 2 {
				return h.cur.rightFrom(op.Left.Counter, code), err
			}
			if code == rightPredicted {
				if h.skim {
					return 0, nil // right origins do not bear on which characters are deleted
				}
				p, ok := h.dr.predictRight(op.Obj, op.Left)
				if !ok {
					return 0, h.u[colRightCtr].r.fail(ErrMalformed, "right origin predicted where there is no prediction")
				}
				return p.Counter, nil
			}
			return h.cur.rightFrom(op.Left.Counter, code-rightShift), nil
		}
		if op.Right, err = h.opID(colRightActor, right); err != nil {
			return err
		}
		if !op.Right.IsZero() {
			h.cur.prevRight = op.Right.Counter
		}
		h.width = 1
		if op.Action == crdt.ActInsert {
			op.Value, err = h.value()
		} else {
			n, err2 := h.u[colTextLen].next()
			if err2 != nil {
				return err2
			}
			if h.derived {
				// n characters, rebuilt once every op is known.
				if n > h.charLimit-h.dr.nChars {
					return h.u[colTextLen].r.fail(ErrMalformed, "text exceeds the decoder limit of %d characters", h.charLimit)
				}
				h.width = n
			} else {
				op.Text, err = h.raw[colText].take(n)
				h.width = op.Width()
			}
			if h.version >= 2 {
				if err := h.dr.insert(op, own, h.chActor, h.width); err != nil {
					return err
				}
			}
		}
		h.cur.lastIns = own + h.width - 1
		return err
	case crdt.ActDeleteText:
		if op.Len, err = h.u[colDelLen].next(); err != nil {
			return err
		}
		elem := func() (uint64, error) {
			code, err := h.u[colDelCtr].next()
			return h.cur.delFrom(op.Len, code), err
		}
		if op.Elem, err = h.opID(colDelActor, elem); err != nil {
			return err
		}
		if !op.Elem.IsZero() {
			h.cur.prevDel, h.cur.prevLen = op.Elem.Counter, op.Len
			if h.derived {
				h.dr.deleteText(op)
			}
		}
		return nil
	}
	return nil
}

func (h *historyReader) value() (crdt.Value, error) {
	k, err := h.u[colValKind].next()
	if err != nil {
		return crdt.Value{}, err
	}
	switch kind := crdt.Kind(k); {
	case k > math.MaxUint8 || !kind.Valid():
		return crdt.Value{}, h.u[colValKind].r.fail(ErrMalformed, "unknown value kind %d", k)
	case kind == crdt.KindBool:
		n, err := h.u[colValInt].nextInt()
		if err == nil && n != 0 && n != 1 {
			err = h.u[colValInt].r.fail(ErrMalformed, "bool value %d", n)
		}
		return crdt.Bool(n == 1), err
	case kind == crdt.KindInt:
		n, err := h.u[colValInt].nextInt()
		return crdt.Int(n), err
	case kind == crdt.KindCounter:
		n, err := h.u[colValInt].nextInt()
		return crdt.Counter(n), err
	case kind == crdt.KindFloat:
		s, err := h.raw[colValFloat].take(8)
		if err != nil {
			return crdt.Value{}, err
		}
		return crdt.Float(math.Float64frombits(binary.LittleEndian.Uint64([]byte(s)))), nil
	case kind == crdt.KindString || kind == crdt.KindBytes:
		n, err := h.u[colValStrLen].next()
		if err != nil {
			return crdt.Value{}, err
		}
		s, err := h.raw[colValStr].take(n)
		if kind == crdt.KindBytes {
			return crdt.Bytes([]byte(s)), err
		}
		return crdt.String(s), err
	case kind == crdt.KindNull:
		return crdt.Null(), nil
	case kind == crdt.KindMap:
		return crdt.NewMap(), nil
	case kind == crdt.KindList:
		return crdt.NewList(), nil
	}
	return crdt.NewText(), nil
}
