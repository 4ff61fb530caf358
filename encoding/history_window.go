package encoding

import (
	"encoding/binary"
	"math"
	"sort"

	"github.com/converge-sync/converge/crdt"
)

// Decoding a window of a History's log from its checkpoint.
//
// The log is one continuous history section, written change by change and
// never rewritten: each integer column only ever appends groups to its
// bytes, and keeps the values of its last group pending (literals waiting
// for their header, an open run). So where a column stood when window k
// began is fixed by four numbers: the length of its written bytes (off);
// the literals then pending (nLits, litBytes of them), which will be the
// first values of the literal group that will start at off; and the length
// of the open run (nOpen), which follows them, in that group or in the
// next. A reader put at off skips nLits literals in one step (litBytes) and
// nOpen values more, and stands at the window's first value. Raw columns
// only append bytes: an offset is enough.
//
// Besides, a decoder carries a little state from change to change: the
// last seq of each actor (known from the per-actor index), the last op
// counter, the cursor that predicts counters, and the previous time. The
// checkpoint keeps the last three. Right origins are read from the log's
// right1 column, not from rightCtr, whose predictions need every op before
// them.

// checkpoints holds the checkpoints of a log, one per window, as uvarints.
type checkpoints struct {
	b   []byte
	off []uint32 // where checkpoint k starts in b
}

// colState is where an integer column stood at a checkpoint.
type colState struct {
	off, litBytes, nLits, nOpen uint64
}

func stateOf(c *uintCol) colState {
	return colState{off: uint64(len(c.buf)), litBytes: uint64(len(c.lits)), nLits: c.nLits, nOpen: c.n}
}

// intColumn returns the writer's uintCol of integer column i (nil for a
// raw column), with right1 standing in for rightCtr.
func (w *historyWriter) intColumn(i int) *uintCol {
	w.settle()
	switch {
	case i == colRightCtr:
		return w.right1
	case i == colTextSeg: // the log writes its text raw (text mode 0, no dictionary)
		return nil
	}
	switch colKinds[i] {
	case kindU:
		return &w.u[i]
	case kindS:
		return &w.s[i].uintCol
	case kindD:
		return &w.d[i].uintCol
	}
	return nil
}

// record adds the checkpoint of w as it stands.
func (p *checkpoints) record(w *historyWriter) {
	if len(p.b) > math.MaxUint32 {
		panic("encoding: History checkpoints past 4 GB")
	}
	w.settle()
	p.off = append(grow2(p.off), uint32(len(p.b)))
	b := room(p.b, (6+4*numCols)*binary.MaxVarintLen64)
	b = binary.AppendUvarint(b, w.maxOp)
	b = binary.AppendUvarint(b, w.d[colChTime].prev)
	b = binary.AppendUvarint(b, w.cur.lastIns)
	b = binary.AppendUvarint(b, w.cur.prevRight)
	b = binary.AppendUvarint(b, w.cur.prevDel)
	b = binary.AppendUvarint(b, w.cur.prevLen)
	for i := 0; i < numCols; i++ {
		if i == colTextSeg {
			continue
		}
		if c := w.intColumn(i); c != nil {
			s := stateOf(c)
			b = binary.AppendUvarint(b, s.off)
			b = binary.AppendUvarint(b, s.litBytes)
			b = binary.AppendUvarint(b, s.nLits)
			b = binary.AppendUvarint(b, s.nOpen)
		} else {
			b = binary.AppendUvarint(b, uint64(len(w.raw[i])))
		}
	}
	p.b = b
}

// colFrom returns the bytes of column c from off to the end, as if the
// column were closed: its written bytes, then its pending values.
func colFrom(c *uintCol, off uint64) []byte {
	if c.nLits == 0 && c.n == 0 {
		return c.buf[off:len(c.buf):len(c.buf)]
	}
	b := make([]byte, 0, len(c.buf)-int(off)+len(c.lits)+3*binary.MaxVarintLen64)
	return c.appendPending(append(b, c.buf[off:]...))
}

// seek puts it at the value a checkpoint names, reading b (the column from
// s.off on).
func seekUint(b []byte, s colState, column string) *uintIter {
	it := &uintIter{r: reader{b: b, section: "history", column: column}}
	if s.nLits > 0 {
		h, _ := it.r.uvarint()
		it.left, it.lit = h>>1-s.nLits, true
		it.r.off += int(s.litBytes)
	}
	for n := s.nOpen; n > 0; {
		if it.left == 0 {
			h, _ := it.r.uvarint()
			it.left, it.lit = h>>1, h&1 == 1
			if !it.lit {
				it.val, _ = it.r.uvarint()
			}
		}
		if it.lit {
			it.r.uvarint()
			it.left--
			n--
			continue
		}
		k := min(n, it.left)
		it.left -= k
		n -= k
	}
	return it
}

// decodeWindow appends the changes of window k, cut from a.
func (h *History) decodeWindow(out []*crdt.Change, k int, a *arena) []*crdt.Change {
	return h.decodeWindows(out, k, 1, a)
}

// decodeWindows appends the changes of the n windows from k on, cut from
// a, in one pass: one reader per column from checkpoint k, each raw column
// copied from there to where window k+n starts. (Decoding them one window
// at a time took each column from its window's checkpoint to the end of
// the log: a decode of the whole history copied it about as many times as
// it has windows.)
func (h *History) decodeWindows(out []*crdt.Change, k, n int, a *arena) []*crdt.Change {
	w := h.log
	at := h.checkpointAt(k)
	end := h.checkpointAt(k + n)
	top := reader{section: "history checkpoint"}
	rd := &historyReader{actors: h.actors.ids, top: &top, arena: a, version: 1, budget: math.MaxInt / 8}
	rd.maxOp, rd.cur = at.maxOp, at.cur
	for i := 0; i < numCols; i++ {
		if i == colTextSeg {
			continue
		}
		c := w.intColumn(i)
		if c == nil {
			raw := w.raw[i][at.raw[i]:end.raw[i]]
			rd.raw[i] = &rawCol{r: reader{b: raw, section: "history", column: colNames[i]}, s: string(raw)}
			continue
		}
		it := seekUint(colFrom(c, at.cols[i].off), at.cols[i], colNames[i])
		if colKinds[i] == kindD {
			rd.d[i] = &deltaIter{uintIter: *it, prev: at.timePrev}
		} else {
			rd.u[i] = it
		}
	}
	rd.lastSeq = h.lastSeqAt(k)

	nc := min(n*chunkRows, h.n-k*chunkRows)
	cs := take(&a.changes, nc, 0)
	for i := range cs {
		c := &cs[i]
		act, nOps, err := rd.change(c)
		if err != nil {
			panic("encoding: History cannot decode its own log: " + err.Error())
		}
		c.Ops = take(&a.ops, int(nOps), 4*minArena)
		own := c.StartOp
		rd.chActor = c.Actor
		for j := range c.Ops {
			if err := rd.op(&c.Ops[j], own); err != nil {
				panic("encoding: History cannot decode its own log: " + err.Error())
			}
			own += rd.width
		}
		rd.lastSeq[act] = c.Seq
		rd.maxOp = own - 1
		out = append(out, c)
	}
	return out
}

// checkpoint is a checkpoint decoded (see checkpoints.record).
type checkpoint struct {
	maxOp, timePrev uint64
	cur             cursor
	cols            [numCols]colState // integer columns
	raw             [numCols]uint64   // raw columns: their length
}

// checkpointAt decodes checkpoint k; past the last one, where the log
// ends (only the raw columns' lengths are filled in).
func (h *History) checkpointAt(k int) (cp checkpoint) {
	w := h.log
	if k >= len(h.marks.off) {
		for i := range cp.raw {
			cp.raw[i] = uint64(len(w.raw[i]))
		}
		return cp
	}
	r := reader{b: h.marks.b[h.marks.off[k]:], section: "history checkpoint"}
	next := func() uint64 {
		v, err := r.uvarint()
		if err != nil {
			panic("encoding: History checkpoint unreadable: " + err.Error())
		}
		return v
	}
	cp.maxOp, cp.timePrev = next(), next()
	cp.cur = cursor{lastIns: next(), prevRight: next(), prevDel: next(), prevLen: next()}
	for i := 0; i < numCols; i++ {
		switch {
		case i == colTextSeg:
		case w.intColumn(i) == nil:
			cp.raw[i] = next()
		default:
			cp.cols[i] = colState{off: next(), litBytes: next(), nLits: next(), nOpen: next()}
		}
	}
	return cp
}

// lastSeqAt returns, for every actor, the last seq it had written before
// window k began.
func (h *History) lastSeqAt(k int) []uint64 {
	out := make([]uint64, len(h.actors.ids))
	for ai := range h.logs {
		log := &h.logs[ai]
		i := sort.Search(len(log.chunks), func(i int) bool { return int(log.chunks[i].chunk) >= k })
		if i < len(log.chunks) {
			out[ai] = log.chunks[i].first - 1
		} else {
			out[ai] = log.n
		}
	}
	return out
}
