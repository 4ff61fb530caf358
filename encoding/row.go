package encoding

import (
	"encoding/binary"
	"math"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// The row form writes one change field after field. It is used for a
// standalone change and for the stream form; both share rowState, which
// lets a field be written as the difference from what the reader already
// knows (the actor's previous seq, the largest op counter seen, the previous
// change's time). A standalone change starts from an empty state; a stream
// keeps its state from change to change.
type rowState struct {
	actors  []causal.ActorID
	index   map[causal.ActorID]int
	lastSeq []uint64 // per actor index: the seq of its latest change seen
	maxOp   uint64   // largest op counter of any change seen
	time    int64    // time of the previous change
}

func newRowState() *rowState { return &rowState{index: map[causal.ActorID]int{}} }

func (s *rowState) addActor(a causal.ActorID) int {
	i := len(s.actors)
	s.actors = append(s.actors, a)
	s.lastSeq = append(s.lastSeq, 0)
	s.index[a] = i
	return i
}

// after records a change as seen, on both the writing and the reading side.
func (s *rowState) after(c *crdt.Change, actor int) {
	s.lastSeq[actor] = c.Seq
	if m := c.StartOp + c.Width() - 1; m > s.maxOp {
		s.maxOp = m
	}
	s.time = c.Time
}

// Actor references: an index into the table, or the table's length followed
// by the 16 bytes of an actor not seen before, which joins the table.
func (s *rowState) appendActor(b []byte, a causal.ActorID, shift uint64) ([]byte, int) {
	if i, ok := s.index[a]; ok {
		return appendUvarint(b, uint64(i)+shift), i
	}
	i := s.addActor(a)
	b = appendUvarint(b, uint64(i)+shift)
	return append(b, a[:]...), i
}

func (s *rowState) readActor(r *reader, ref uint64) (int, error) {
	switch {
	case ref < uint64(len(s.actors)):
		return int(ref), nil
	case ref == uint64(len(s.actors)):
		b, err := r.bytes(16)
		if err != nil {
			return 0, err
		}
		a := causal.ActorID(b)
		if _, dup := s.index[a]; dup {
			return 0, r.fail(ErrMalformed, "actor %s announced twice", a.Short())
		}
		return s.addActor(a), nil
	}
	return 0, r.fail(ErrMalformed, "actor reference %d beyond table of %d", ref, len(s.actors))
}

// OpIDs in rows: 0 for the zero OpID, else actor reference + 1 and the
// counter, either absolute or as own-counter minus counter (rel), which is
// small for origins, predecessors and deleted characters near the op.
func (s *rowState) appendOpID(b []byte, id causal.OpID, own uint64, rel bool) []byte {
	if id.IsZero() {
		return append(b, 0)
	}
	b, _ = s.appendActor(b, id.Actor, 1)
	if rel {
		return appendSvarint(b, int64(own-id.Counter))
	}
	return appendUvarint(b, id.Counter)
}

func (s *rowState) readOpID(r *reader, own uint64, rel bool) (causal.OpID, error) {
	ref, err := r.uvarint()
	if err != nil || ref == 0 {
		return causal.OpID{}, err
	}
	a, err := s.readActor(r, ref-1)
	if err != nil {
		return causal.OpID{}, err
	}
	id := causal.OpID{Actor: s.actors[a]}
	if rel {
		d, err := r.svarint()
		id.Counter = own - uint64(d)
		return id, err
	}
	id.Counter, err = r.uvarint()
	return id, err
}

func (s *rowState) appendChange(b []byte, c *crdt.Change) []byte {
	b, a := s.appendActor(b, c.Actor, 0)
	b = appendSvarint(b, int64(c.Seq-(s.lastSeq[a]+1)))
	b = appendSvarint(b, int64(c.StartOp-(s.maxOp+1)))
	b = appendSvarint(b, c.Time-s.time)
	b = appendString(b, c.Message)
	b = appendUvarint(b, uint64(len(c.Deps)))
	for _, d := range c.Deps {
		var i int
		b, i = s.appendActor(b, d.Actor, 0)
		b = appendSvarint(b, int64(s.lastSeq[i]-d.Seq))
	}
	b = appendUvarint(b, uint64(len(c.Ops)))
	own := c.StartOp
	for i := range c.Ops {
		b = s.appendOp(b, &c.Ops[i], own)
		own += c.Ops[i].Width()
	}
	s.after(c, a)
	return b
}

func (s *rowState) readChange(r *reader) (*crdt.Change, error) {
	ref, err := r.uvarint()
	if err != nil {
		return nil, err
	}
	a, err := s.readActor(r, ref)
	if err != nil {
		return nil, err
	}
	c := &crdt.Change{Actor: s.actors[a]}
	var d int64
	if d, err = r.svarint(); err != nil {
		return nil, err
	}
	c.Seq = s.lastSeq[a] + 1 + uint64(d)
	if d, err = r.svarint(); err != nil {
		return nil, err
	}
	c.StartOp = s.maxOp + 1 + uint64(d)
	if d, err = r.svarint(); err != nil {
		return nil, err
	}
	c.Time = s.time + d
	if c.Message, err = r.string(); err != nil {
		return nil, err
	}
	n, err := r.count(2)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		c.Deps = make([]causal.ChangeID, n)
	}
	for i := range c.Deps {
		if ref, err = r.uvarint(); err != nil {
			return nil, err
		}
		da, err := s.readActor(r, ref)
		if err != nil {
			return nil, err
		}
		if d, err = r.svarint(); err != nil {
			return nil, err
		}
		c.Deps[i] = causal.ChangeID{Actor: s.actors[da], Seq: s.lastSeq[da] - uint64(d)}
	}
	if n, err = r.count(4); err != nil {
		return nil, err
	}
	if n > 0 {
		c.Ops = make([]crdt.Op, n)
	}
	own := c.StartOp
	for i := range c.Ops {
		if err := s.readOp(r, &c.Ops[i], own); err != nil {
			return nil, err
		}
		own += c.Ops[i].Width()
	}
	s.after(c, a)
	return c, nil
}

func (s *rowState) appendOp(b []byte, op *crdt.Op, own uint64) []byte {
	b = append(b, byte(op.Action))
	b = s.appendOpID(b, op.Obj, own, false)
	switch op.Action {
	case crdt.ActPut, crdt.ActDelete, crdt.ActIncrement:
		b = s.appendOpID(b, op.Elem, own, true)
		if op.Elem.IsZero() {
			b = appendString(b, op.Key)
		}
		if op.Action != crdt.ActDelete {
			b = appendValue(b, op.Value)
		}
		b = appendUvarint(b, uint64(len(op.Pred)))
		for _, p := range op.Pred {
			b = s.appendOpID(b, p, own, true)
		}
	case crdt.ActInsert, crdt.ActInsertText:
		b = s.appendOpID(b, op.Left, own, true)
		b = s.appendOpID(b, op.Right, own, true)
		if op.Action == crdt.ActInsert {
			b = appendValue(b, op.Value)
		} else {
			b = appendString(b, op.Text)
		}
	case crdt.ActDeleteText:
		b = s.appendOpID(b, op.Elem, own, true)
		b = appendUvarint(b, op.Len)
	}
	return b
}

func (s *rowState) readOp(r *reader, op *crdt.Op, own uint64) error {
	act, err := r.byte()
	if err != nil {
		return err
	}
	op.Action = crdt.Action(act)
	if !validAction(op.Action) {
		return r.fail(ErrMalformed, "unknown action %d", act)
	}
	if op.Obj, err = s.readOpID(r, own, false); err != nil {
		return err
	}
	switch op.Action {
	case crdt.ActPut, crdt.ActDelete, crdt.ActIncrement:
		if op.Elem, err = s.readOpID(r, own, true); err != nil {
			return err
		}
		if op.Elem.IsZero() {
			if op.Key, err = r.string(); err != nil {
				return err
			}
		}
		if op.Action != crdt.ActDelete {
			if op.Value, err = readValue(r); err != nil {
				return err
			}
		}
		n, err := r.count(1)
		if err != nil {
			return err
		}
		if n > 0 {
			op.Pred = make([]causal.OpID, n)
		}
		for i := range op.Pred {
			if op.Pred[i], err = s.readOpID(r, own, true); err != nil {
				return err
			}
		}
	case crdt.ActInsert, crdt.ActInsertText:
		if op.Left, err = s.readOpID(r, own, true); err != nil {
			return err
		}
		if op.Right, err = s.readOpID(r, own, true); err != nil {
			return err
		}
		if op.Action == crdt.ActInsert {
			op.Value, err = readValue(r)
		} else {
			op.Text, err = r.string()
		}
		return err
	case crdt.ActDeleteText:
		if op.Elem, err = s.readOpID(r, own, true); err != nil {
			return err
		}
		op.Len, err = r.uvarint()
		return err
	}
	return nil
}

func validAction(a crdt.Action) bool { return a >= crdt.ActPut && a <= crdt.ActDeleteText }

// Values: the kind byte, then for bool one byte 0 or 1, for int and
// counter a signed varint, for float the 8 bytes of its IEEE 754 bits (little
// endian), for string and bytes a length and the bytes; null and the
// container kinds carry nothing more.
func appendValue(b []byte, v crdt.Value) []byte {
	b = append(b, byte(v.Kind()))
	switch v.Kind() {
	case crdt.KindBool:
		if v.Bool() {
			return append(b, 1)
		}
		return append(b, 0)
	case crdt.KindInt, crdt.KindCounter:
		return appendSvarint(b, v.Int())
	case crdt.KindFloat:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float()))
	case crdt.KindString, crdt.KindBytes:
		return appendString(b, v.Str())
	}
	return b
}

func readValue(r *reader) (crdt.Value, error) {
	k, err := r.byte()
	if err != nil {
		return crdt.Value{}, err
	}
	return readValuePayload(r, crdt.Kind(k))
}

func readValuePayload(r *reader, k crdt.Kind) (crdt.Value, error) {
	switch k {
	case crdt.KindNull:
		return crdt.Null(), nil
	case crdt.KindBool:
		c, err := r.byte()
		if err == nil && c > 1 {
			err = r.fail(ErrMalformed, "bool byte %d", c)
		}
		return crdt.Bool(c == 1), err
	case crdt.KindInt, crdt.KindCounter:
		n, err := r.svarint()
		if k == crdt.KindCounter {
			return crdt.Counter(n), err
		}
		return crdt.Int(n), err
	case crdt.KindFloat:
		u, err := r.uint64le()
		return crdt.Float(math.Float64frombits(u)), err
	case crdt.KindString, crdt.KindBytes:
		s, err := r.string()
		if k == crdt.KindBytes {
			return crdt.Bytes([]byte(s)), err
		}
		return crdt.String(s), err
	case crdt.KindMap:
		return crdt.NewMap(), nil
	case crdt.KindList:
		return crdt.NewList(), nil
	case crdt.KindText:
		return crdt.NewText(), nil
	}
	return crdt.Value{}, r.fail(ErrMalformed, "unknown value kind %d", k)
}
