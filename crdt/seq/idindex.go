package seq

import "slices"

// actorIndex maps one actor's counters to the leaves that hold them: sorted,
// disjoint ranges [lo, hi) → leaf, with neighbouring ranges of the same leaf
// merged. The ranges live in blocks of at most idxBlockCap entries, so that
// an insert in the middle moves one block rather than the whole table, and a
// lookup is a binary search over blocks, then within one.
//
// It is the ID → position half of the engine: a remote insert finds its
// origins here, and Index(id) walks up the tree from the leaf found here.
type actorIndex struct {
	blocks []*idxBlock
}

const idxBlockCap = 64

type idxBlock struct {
	n int
	e [idxBlockCap]idxEntry
}

type idxEntry struct {
	lo, hi uint64
	l      *leaf
}

// search returns the position of the first entry with hi > ctr (the one
// that holds ctr, if any holds it); b == len(blocks) if there is none.
func (x *actorIndex) search(ctr uint64) (b, j int) {
	bs := x.blocks
	nb := len(bs)
	if nb == 0 {
		return 0, 0
	}
	// Editing touches the newest IDs most: try the last entry first.
	if last := bs[nb-1]; last.e[last.n-1].lo <= ctr {
		if last.e[last.n-1].hi > ctr {
			return nb - 1, last.n - 1
		}
		return nb, 0
	}
	lo, hi := 0, nb
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		blk := bs[m]
		if blk.e[blk.n-1].hi > ctr {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo == nb {
		return nb, 0
	}
	blk := bs[lo]
	i, k := 0, blk.n
	for i < k {
		m := int(uint(i+k) >> 1)
		if blk.e[m].hi > ctr {
			k = m
		} else {
			i = m + 1
		}
	}
	return lo, i
}

func (x *actorIndex) at(b, j int) *idxEntry { return &x.blocks[b].e[j] }

// next advances a position by one entry; b == len(blocks) past the end.
func (x *actorIndex) next(b, j int) (int, int) {
	if j+1 < x.blocks[b].n {
		return b, j + 1
	}
	return b + 1, 0
}

// find returns the leaf holding ctr, or nil.
func (x *actorIndex) find(ctr uint64) *leaf {
	b, j := x.search(ctr)
	if b == len(x.blocks) {
		return nil
	}
	if e := x.at(b, j); e.lo <= ctr {
		return e.l
	}
	return nil
}

// covers reports whether every counter in [lo, hi) is present.
func (x *actorIndex) covers(lo, hi uint64) bool {
	b, j := x.search(lo)
	for lo < hi {
		if b == len(x.blocks) {
			return false
		}
		e := x.at(b, j)
		if e.lo > lo {
			return false
		}
		lo = e.hi
		b, j = x.next(b, j)
	}
	return true
}

// firstIn returns the smallest present counter in [lo, hi).
func (x *actorIndex) firstIn(lo, hi uint64) (uint64, bool) {
	b, j := x.search(lo)
	if b == len(x.blocks) {
		return 0, false
	}
	e := x.at(b, j)
	if e.lo >= hi {
		return 0, false
	}
	return max(e.lo, lo), true
}

// each calls fn for every entry overlapping [lo, hi), clipped to it.
func (x *actorIndex) each(lo, hi uint64, fn func(lo, hi uint64, l *leaf)) {
	for b, j := x.search(lo); b < len(x.blocks); b, j = x.next(b, j) {
		e := x.at(b, j)
		if e.lo >= hi {
			return
		}
		fn(max(e.lo, lo), min(e.hi, hi), e.l)
	}
}

// insert records that the absent counters [lo, hi) are in leaf l.
func (x *actorIndex) insert(lo, hi uint64, l *leaf) {
	if nb := len(x.blocks); nb > 0 {
		// Typing: the new counters continue the newest entry.
		last := x.blocks[nb-1]
		if e := &last.e[last.n-1]; e.hi == lo && e.l == l {
			e.hi = hi
			return
		}
	}
	b, j := x.search(lo)
	var pred, succ *idxEntry
	if j > 0 {
		pred = x.at(b, j-1)
	} else if b > 0 {
		pb := x.blocks[b-1]
		pred = &pb.e[pb.n-1]
	}
	if b < len(x.blocks) {
		succ = x.at(b, j)
	}
	if pred != nil && pred.hi == lo && pred.l == l {
		pred.hi = hi
		if succ != nil && succ.lo == hi && succ.l == l {
			pred.hi = succ.hi
			x.deleteAt(b, j)
		}
		return
	}
	if succ != nil && succ.lo == hi && succ.l == l {
		succ.lo = lo
		return
	}
	if b == len(x.blocks) && b > 0 {
		b, j = b-1, x.blocks[b-1].n
	}
	x.insertAt(b, j, idxEntry{lo, hi, l})
}

// remove forgets the present counters [lo, hi).
func (x *actorIndex) remove(lo, hi uint64) {
	for lo < hi {
		b, j := x.search(lo)
		if b == len(x.blocks) {
			return
		}
		e := x.at(b, j)
		if e.lo >= hi {
			return
		}
		lo = max(lo, e.lo)
		switch {
		case e.lo < lo && e.hi > hi:
			tail := idxEntry{hi, e.hi, e.l}
			e.hi = lo
			x.insertAt(b, j+1, tail)
			return
		case e.lo < lo:
			lo, e.hi = e.hi, lo
		case e.hi > hi:
			e.lo = hi
			return
		default:
			lo = e.hi
			x.deleteAt(b, j)
		}
	}
}

// assign records that the present counters [lo, hi) moved to leaf l.
func (x *actorIndex) assign(lo, hi uint64, l *leaf) {
	b, j := x.search(lo)
	if b < len(x.blocks) {
		if e := x.at(b, j); e.lo <= lo && e.hi >= hi && e.l == l {
			return
		}
	}
	x.remove(lo, hi)
	x.insert(lo, hi, l)
}

func (x *actorIndex) insertAt(b, j int, e idxEntry) {
	if b == len(x.blocks) {
		x.blocks = append(x.blocks, &idxBlock{})
	}
	blk := x.blocks[b]
	if blk.n == idxBlockCap {
		// Split the full block in two halves; sequential appends (the usual
		// case) would leave the first half-empty forever, so when appending at
		// the end start a new block instead.
		half := idxBlockCap / 2
		if j == idxBlockCap && b == len(x.blocks)-1 {
			half = idxBlockCap
		}
		nb := &idxBlock{n: blk.n - half}
		copy(nb.e[:], blk.e[half:blk.n])
		clear(blk.e[half:blk.n])
		blk.n = half
		x.blocks = slices.Insert(x.blocks, b+1, nb)
		if j >= half {
			blk, j = nb, j-half
		}
	}
	copy(blk.e[j+1:blk.n+1], blk.e[j:blk.n])
	blk.e[j] = e
	blk.n++
}

func (x *actorIndex) deleteAt(b, j int) {
	blk := x.blocks[b]
	copy(blk.e[j:], blk.e[j+1:blk.n])
	blk.n--
	blk.e[blk.n] = idxEntry{}
	if blk.n == 0 {
		x.blocks = slices.Delete(x.blocks, b, b+1)
	}
}
