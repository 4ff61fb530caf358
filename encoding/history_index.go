package encoding

import (
	"bytes"
	"encoding/binary"
	"sort"
)

// actorLog indexes one actor's changes in a History. The Doc appends an
// actor's changes in seq order (1, 2, 3, … causally), so seq s is the s-th
// change of the actor, and both lookups below are by seq.
//
// Where a change lives: runs of seqs that landed in the same chunk. A
// single writer's history has one run per chunk; interleaved writers, at
// most one per chunk each. So the index grows with the number of chunks,
// not of changes.
//
// Each change's MaxOp, which the Doc asks for on every remote change (the
// Lamport check of its dependencies): the difference from the previous
// seq's, as a zigzag uvarint (a byte for a keystroke), with a mark every
// maxOpMarkEvery seqs so a lookup decodes at most that many. The latest
// seq, by far the most asked for, is answered from last.
type actorLog struct {
	n      uint64     // seqs 1…n recorded
	chunks []seqChunk // ascending by first seq
	last   uint64     // MaxOp of seq n
	deltas []byte     // MaxOp(s) - MaxOp(s-1), zigzag uvarints, s = 1…n
	marks  []maxOpMark
}

type seqChunk struct {
	first uint64 // first seq of the run
	chunk int32  // chunk index in the History
}

// maxOpMark k is the state before seq k*maxOpMarkEvery+1 is decoded.
type maxOpMark struct {
	off   uint32 // offset in deltas
	maxOp uint64 // MaxOp of seq k*maxOpMarkEvery
}

const maxOpMarkEvery = 64

func (l *actorLog) append(seq uint64, chunk int, maxOp uint64) {
	if l.n%maxOpMarkEvery == 0 {
		l.marks = append(grow2(l.marks), maxOpMark{off: uint32(len(l.deltas)), maxOp: l.last})
	}
	l.deltas = binary.AppendUvarint(room(l.deltas, binary.MaxVarintLen64), zigzag(int64(maxOp-l.last)))
	l.last, l.n = maxOp, seq
	if k := len(l.chunks); k == 0 || l.chunks[k-1].chunk != int32(chunk) {
		l.chunks = append(grow2(l.chunks), seqChunk{first: seq, chunk: int32(chunk)})
	}
}

// appendRun records seqs first … first+n-1, changes of one op each, the
// first one's op counter being maxOp, all in chunk.
func (l *actorLog) appendRun(first uint64, n, chunk int, maxOp uint64) {
	l.append(first, chunk, maxOp)
	for left := uint64(n - 1); left > 0; {
		if l.n%maxOpMarkEvery == 0 {
			l.marks = append(grow2(l.marks), maxOpMark{off: uint32(len(l.deltas)), maxOp: l.last})
		}
		// Up to the next mark, each seq is one op after the one before.
		k := min(left, maxOpMarkEvery-l.n%maxOpMarkEvery)
		l.deltas = append(room(l.deltas, int(k)), oneOpDeltas[:k]...)
		l.last += k
		l.n += k
		left -= k
	}
}

// oneOpDeltas is a run of zigzag(1), the delta of a change of one op.
var oneOpDeltas = bytes.Repeat([]byte{2}, maxOpMarkEvery)

// runOf returns the index in l.chunks of the run holding seq (1 ≤ seq ≤ n).
func (l *actorLog) runOf(seq uint64) int {
	return sort.Search(len(l.chunks), func(i int) bool { return l.chunks[i].first > seq }) - 1
}

func (l *actorLog) maxOp(seq uint64) uint64 {
	if seq == l.n {
		return l.last
	}
	m := l.marks[(seq-1)/maxOpMarkEvery]
	v, b := m.maxOp, l.deltas[m.off:]
	for i := (seq-1)%maxOpMarkEvery + 1; i > 0; i-- {
		d, k := binary.Uvarint(b)
		v += uint64(unzigzag(d))
		b = b[k:]
	}
	return v
}
