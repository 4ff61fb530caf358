package seq

// The content tree: a B+tree whose leaves hold runs in sequence order and
// whose inner nodes hold, per child, the number of visible and of all
// elements below it. Descending by visible counts finds a visible index;
// walking up from a leaf (nodes keep parent and slot) turns a position back
// into an index. Leaves are also linked in order, for scans.

const (
	leafCap  = 32 // runs per leaf: 1.5 KB, a few cache lines to shift on insert
	innerCap = 32
)

type leaf struct {
	parent     *inner
	slot       int // index in parent
	n          int // runs in use
	prev, next *leaf
	runs       [leafCap]run
	// visAt is the leaf's visible start when Fast.ver was visStamp (0:
	// never noted; ver starts at 1). Every change bumps ver before it
	// changes a count, so a stamp of the current ver is still true.
	visAt    int
	visStamp uint64
}

type inner struct {
	parent *inner
	slot   int
	n      int
	bottom bool // children are leaves
	vis    [innerCap]int
	tot    [innerCap]int
	kids   [innerCap]*inner
	leaves [innerCap]*leaf
}

// cursor is a place in the sequence: before element off of run ri of leaf
// l. ri == l.n (with off 0) is the end of the leaf.
type cursor struct {
	l   *leaf
	ri  int
	off int
}

func (c cursor) run() *run { return &c.l.runs[c.ri] }

func (l *leaf) vis() int { return l.parent.vis[l.slot] }

// findVis returns the run and offset of the leaf's k-th visible element
// (k < l.vis()).
func (l *leaf) findVis(k int) (int, int) {
	for ri := 0; ; ri++ {
		r := &l.runs[ri]
		if r.visible() {
			if k < r.len() {
				return ri, k
			}
			k -= r.len()
		}
	}
}

func (l *leaf) insertRun(ri int, r run) {
	copy(l.runs[ri+1:l.n+1], l.runs[ri:l.n])
	l.runs[ri] = r
	l.n++
}

func (l *leaf) deleteRun(ri int) {
	copy(l.runs[ri:l.n-1], l.runs[ri+1:l.n])
	l.n--
}

// seekVis returns the leaf holding visible element i (0 ≤ i < Len) and the
// visible index of the leaf's start. Edits cluster, so the last leaf found
// is tried first.
func (f *Fast) seekVis(i int) (*leaf, int) {
	if l := f.hint; l != nil && i >= f.hintStart && i < f.hintStart+l.vis() {
		return l, f.hintStart
	}
	p, start := f.root, 0
	for {
		k := 0
		for ; k < p.n-1 && i-start >= p.vis[k]; k++ {
			start += p.vis[k]
		}
		if p.bottom {
			l := p.leaves[k]
			f.hint, f.hintStart = l, start
			return l, start
		}
		p = p.kids[k]
	}
}

// visStart is the number of visible elements before leaf l.
func (f *Fast) visStart(l *leaf) int {
	if l == f.hint {
		return f.hintStart
	}
	if l.visStamp == f.ver {
		return l.visAt
	}
	s, slot := 0, l.slot
	for p := l.parent; p != nil; slot, p = p.slot, p.parent {
		for k := 0; k < slot; k++ {
			s += p.vis[k]
		}
	}
	return s
}

// totStart is the number of elements (visible or not) before leaf l.
func totStart(l *leaf) int {
	s, slot := 0, l.slot
	for p := l.parent; p != nil; slot, p = p.slot, p.parent {
		for k := 0; k < slot; k++ {
			s += p.tot[k]
		}
	}
	return s
}

// visBefore is the number of visible elements before cursor c.
func (f *Fast) visBefore(c cursor) int {
	s := f.visStart(c.l)
	for k := 0; k < c.ri; k++ {
		if r := &c.l.runs[k]; r.visible() {
			s += r.len()
		}
	}
	if c.ri < c.l.n && c.l.runs[c.ri].visible() {
		s += c.off
	}
	return s
}

// totBefore is the number of elements before cursor c: its position.
func totBefore(c cursor) int {
	s := totStart(c.l)
	for k := 0; k < c.ri; k++ {
		s += c.l.runs[k].len()
	}
	return s + c.off
}

// bump adds dv visible and dt total elements to leaf l's counts.
func (f *Fast) bump(l *leaf, dv, dt int) {
	slot := l.slot
	for p := l.parent; p != nil; slot, p = p.slot, p.parent {
		p.vis[slot] += dv
		p.tot[slot] += dt
	}
	f.vis += dv
	f.tot += dt
	// Visible counts before the hint leaf may have changed.
	if dv != 0 && l != f.hint {
		f.hint = nil
	}
}

// nextRun moves c to the start of the run after c.ri, skipping empty
// leaves; at the end of the sequence it stays at the end of its leaf.
func nextRun(c cursor) cursor {
	if c.ri+1 < c.l.n {
		return cursor{c.l, c.ri + 1, 0}
	}
	for l := c.l.next; l != nil; l = l.next {
		if l.n > 0 {
			return cursor{l, 0, 0}
		}
	}
	return cursor{c.l, c.l.n, 0}
}

// after returns the cursor just after element off of run ri.
func after(l *leaf, ri, off int) cursor {
	if off+1 < l.runs[ri].len() {
		return cursor{l, ri, off + 1}
	}
	return nextRun(cursor{l, ri, off})
}

// first returns the cursor at the first element (or the end if empty).
func (f *Fast) firstCursor() cursor {
	for l := f.head; l != nil; l = l.next {
		if l.n > 0 {
			return cursor{l, 0, 0}
		}
	}
	return cursor{f.tail, f.tail.n, 0}
}

// endCursor returns the cursor at the end of the sequence.
func (f *Fast) endCursor() cursor { return cursor{f.tail, f.tail.n, 0} }

// before returns the element just before cursor c (counter 0 if none).
func before(c cursor) cid {
	if c.off > 0 {
		return c.run().at(c.off - 1)
	}
	if c.ri > 0 {
		return c.l.runs[c.ri-1].last()
	}
	for l := c.l.prev; l != nil; l = l.prev {
		if l.n > 0 {
			return l.runs[l.n-1].last()
		}
	}
	return cid{}
}

// atCursor returns the element at cursor c (counter 0 at the end).
func atCursor(c cursor) cid {
	if c.ri == c.l.n {
		return cid{}
	}
	return c.run().at(c.off)
}

// room makes space for k more runs in the leaf of cursor c, splitting the
// leaf if it is full, and returns where c's run (or end) now is.
func (f *Fast) room(c cursor, k int) cursor {
	if c.l.n+k <= f.leafMax {
		return c
	}
	at := c.l.n / 2
	if c.ri == c.l.n {
		// Appending at a leaf's end, as typing at the end of a document
		// does: start a fresh leaf rather than moving half of this one.
		at = c.l.n
	}
	nl := f.splitLeaf(c.l, at)
	if c.ri >= at {
		return cursor{nl, c.ri - at, c.off}
	}
	return c
}

// splitLeaf moves the runs from index at on into a new leaf after l.
func (f *Fast) splitLeaf(l *leaf, at int) *leaf {
	nl := &leaf{n: l.n - at, prev: l, next: l.next}
	copy(nl.runs[:], l.runs[at:l.n])
	l.n = at
	if l.next != nil {
		l.next.prev = nl
	} else {
		f.tail = nl
	}
	l.next = nl
	v, t := 0, 0
	for i := 0; i < nl.n; i++ {
		r := &nl.runs[i]
		t += r.len()
		if r.visible() {
			v += r.len()
		}
		f.actors.idx[r.act].assign(r.ctr, r.end(), nl)
	}
	l.parent.vis[l.slot] -= v
	l.parent.tot[l.slot] -= t
	f.addChild(l.parent, l.slot+1, nil, nl, v, t)
	return nl
}

// addChild inserts a child (an inner node, or a leaf at the bottom level)
// with counts v, t into p at slot. The child's elements must already be
// counted in p's ancestors: it was carved out of a sibling whose count in p
// the caller lowered by as much. So no ancestor changes, unless p is full and
// splits and the child lands in the new half.
func (f *Fast) addChild(p *inner, slot int, kid *inner, lf *leaf, v, t int) {
	if p.n == f.innerMax {
		q := f.splitInner(p)
		if slot > p.n {
			slot -= p.n
			// The child's elements were counted under p; move them to q.
			addUp(p, -v, -t)
			addUp(q, v, t)
			p = q
		}
	}
	copy(p.vis[slot+1:p.n+1], p.vis[slot:p.n])
	copy(p.tot[slot+1:p.n+1], p.tot[slot:p.n])
	p.vis[slot], p.tot[slot] = v, t
	if p.bottom {
		copy(p.leaves[slot+1:p.n+1], p.leaves[slot:p.n])
		p.leaves[slot] = lf
		lf.parent = p
	} else {
		copy(p.kids[slot+1:p.n+1], p.kids[slot:p.n])
		p.kids[slot] = kid
		kid.parent = p
	}
	p.n++
	for k := slot; k < p.n; k++ {
		if p.bottom {
			p.leaves[k].slot = k
		} else {
			p.kids[k].slot = k
		}
	}
}

// splitInner moves the second half of p's children into a new node after p.
func (f *Fast) splitInner(p *inner) *inner {
	half := p.n / 2
	q := &inner{bottom: p.bottom, n: p.n - half}
	copy(q.vis[:], p.vis[half:p.n])
	copy(q.tot[:], p.tot[half:p.n])
	qv, qt := 0, 0
	for k := 0; k < q.n; k++ {
		qv += q.vis[k]
		qt += q.tot[k]
		if p.bottom {
			q.leaves[k], p.leaves[half+k] = p.leaves[half+k], nil
			q.leaves[k].parent, q.leaves[k].slot = q, k
		} else {
			q.kids[k], p.kids[half+k] = p.kids[half+k], nil
			q.kids[k].parent, q.kids[k].slot = q, k
		}
	}
	p.n = half
	if p.parent == nil {
		root := &inner{n: 1}
		root.kids[0] = p
		root.vis[0], root.tot[0] = f.vis, f.tot
		p.parent, p.slot = root, 0
		f.root = root
	}
	p.parent.vis[p.slot] -= qv
	p.parent.tot[p.slot] -= qt
	f.addChild(p.parent, p.slot+1, q, nil, qv, qt)
	return q
}

// addUp adds dv, dt to the counts of node x in all its ancestors.
func addUp(x *inner, dv, dt int) {
	s := x.slot
	for a := x.parent; a != nil; s, a = a.slot, a.parent {
		a.vis[s] += dv
		a.tot[s] += dt
	}
}
