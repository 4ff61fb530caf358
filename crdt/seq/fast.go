package seq

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Fast is the production Sequence: runs of elements in a B+tree counted by
// visible length, an ID index per actor, and the text in one append-only
// arena. Local typing extends a run in place; lookups by index or by ID are
// O(log n). See docs/sequence.md for the design and its measurements.
//
// It gives exactly the results of Simple for the same calls.
type Fast struct {
	root       *inner
	head, tail *leaf
	vis, tot   int // visible and all elements
	arena      []byte
	actors     actorTable

	// Test hooks: node capacities below the array sizes, so that small
	// random tests build deep trees.
	leafMax, innerMax int

	// Caches, each checked before use, so that a stale one costs a lookup
	// and never a wrong answer.
	hint      *leaf // the leaf seekVis found last, and its visible start
	hintStart int
	loc       cursor // the run an ID was last found in
	org       originsCache
	runSlab   slab
	hideBuf   []Run // HideAt's result, reused
	// The element whose character is last in the arena, and before the
	// last insert the same and where the arena ended: see extends.
	textLast, textPrevLast cid
	textPrevEnd            uint64
	// Bumped by every change before it changes anything: it validates org,
	// and the leaves' visible starts Text notes (leaf.visAt).
	ver uint64
}

// originsCache remembers where the last Origins call pointed, so that the
// Insert that follows it (local typing) skips finding its origins again;
// and where the last Insert or InsertAt ended, for the next InsertAt.
type originsCache struct {
	ver         uint64
	left, right ID
	lc, rc      cid
	at          cursor
	index       int
	next        bool // set by Insert and InsertAt: at is visible index index, origins not filled in
}

var _ Sequence = (*Fast)(nil)

// NewFast returns an empty sequence.
func NewFast() *Fast { return newFast(leafCap, innerCap) }

func newFast(leafMax, innerMax int) *Fast {
	l := &leaf{}
	root := &inner{n: 1, bottom: true}
	root.leaves[0] = l
	l.parent = root
	return &Fast{root: root, head: l, tail: l, leafMax: leafMax, innerMax: innerMax, ver: 1}
}

func (f *Fast) Len() int { return f.vis }

// cursorAtVis returns the cursor at visible element i, or the end for
// i == Len().
func (f *Fast) cursorAtVis(i int) cursor {
	if i == f.vis {
		return f.endCursor()
	}
	l, start := f.seekVis(i)
	ri, off := l.findVis(i - start)
	return cursor{l, ri, off}
}

func (f *Fast) Origins(i int) (left, right ID, err error) {
	if i < 0 || i > f.vis {
		return ID{}, ID{}, fmt.Errorf("%w: index %d, length %d", ErrOutOfRange, i, f.vis)
	}
	c := f.localPlace(i)
	lc, rc := before(c), atCursor(c)
	left, right = f.actors.id(lc), f.actors.id(rc)
	f.org = originsCache{ver: f.ver, left: left, right: right, lc: lc, rc: rc, at: c, index: i}
	return left, right, nil
}

// localPlace is where a local insert at visible index i goes (0 ≤ i ≤
// Len()): after the last insert when typing on, else found by index.
func (f *Fast) localPlace(i int) cursor {
	if o := &f.org; o.next && o.ver == f.ver && o.index == i {
		return o.at
	}
	return f.cursorAtVis(i)
}

// locate finds the element c.
func (f *Fast) locate(c cid) (cursor, bool) {
	if h := f.loc; h.l != nil && h.ri < h.l.n && h.l.runs[h.ri].has(c) {
		return cursor{h.l, h.ri, int(c.ctr - h.l.runs[h.ri].ctr)}, true
	}
	if c.ctr == 0 || int(c.act) >= len(f.actors.idx) {
		return cursor{}, false
	}
	l := f.actors.idx[c.act].find(c.ctr)
	if l == nil {
		return cursor{}, false
	}
	for ri := 0; ri < l.n; ri++ {
		if r := &l.runs[ri]; r.has(c) {
			f.loc = cursor{l, ri, 0}
			return cursor{l, ri, int(c.ctr - r.ctr)}, true
		}
	}
	return cursor{}, false // the index and the tree disagree: a bug
}

// locateID finds the element id.
func (f *Fast) locateID(id ID) (cid, cursor, bool) {
	c, ok := f.actors.compact(id)
	if !ok || c.ctr == 0 {
		return c, cursor{}, false
	}
	at, ok := f.locate(c)
	return c, at, ok
}

func (f *Fast) Has(id ID, n int) bool {
	if n <= 0 {
		return true
	}
	if !ownRange(id, n) {
		return false
	}
	a, ok := f.actors.lookup(id.Actor)
	return ok && f.actors.idx[a].covers(id.Counter, id.Counter+uint64(n))
}

func (f *Fast) Insert(id ID, n int, left, right ID, text string) (int, error) {
	nr := utf8.RuneCountInString(text)
	act, known, err := f.checkNew("insert", id, n, nr)
	if err != nil {
		return 0, err
	}
	var dest cursor
	var index int
	var lc, rc cid
	if o := &f.org; o.ver == f.ver && !o.next && o.left == left && o.right == right {
		// Local typing: the place was found by the Origins call just made.
		dest, index, lc, rc = o.at, o.index, o.lc, o.rc
	} else {
		var err error
		if dest, lc, rc, err = f.findPlace(id, left, right); err != nil {
			return 0, err
		}
		index = f.visBefore(dest)
	}
	if nr > 0 && !utf8.ValidString(text) {
		// Store what Simple stores: one U+FFFD per invalid byte.
		text = string([]rune(text))
	}
	if !known {
		act = f.actors.intern(id.Actor)
	}
	last := f.place(dest, act, id.Counter, n, lc, rc, text)
	// Remember where the next visible index is, for the Origins call of
	// the next keystroke; only where that is unambiguous: at a visible
	// element or at the very end.
	if c := after(last.l, last.ri, last.off); (c.ri < c.l.n && c.run().visible()) || c.l == f.tail {
		f.org = originsCache{ver: f.ver, at: c, index: index + n, next: true}
	}
	return index, nil
}

// checkNew checks that n elements from id, with nr characters (0 for a
// list's), may be added (what is, for the errors): a count that matches
// the text, counters in range, none held already. act is id's actor's
// index if known.
func (f *Fast) checkNew(what string, id ID, n, nr int) (act uint32, known bool, err error) {
	if n <= 0 || (nr != 0 && nr != n) {
		return 0, false, fmt.Errorf("seq: %s of %d elements with %d characters", what, n, nr)
	}
	if !ownRange(id, n) {
		return 0, false, fmt.Errorf("%w: %s of %d elements from %v", ErrOutOfRange, what, n, id)
	}
	act, known = f.actors.lookup(id.Actor)
	if known {
		if c, dup := f.actors.idx[act].firstIn(id.Counter, id.Counter+uint64(n)); dup {
			return 0, false, fmt.Errorf("%w: %v", ErrDuplicate, ID{Counter: c, Actor: id.Actor})
		}
	}
	return act, known, nil
}

// InsertAt is Origins and Insert in one step: the place Origins finds is
// where the elements go, so nothing is looked up twice and no cache is
// written for the Insert to check. Its checks and its cache write are
// Insert's, written out again: this is every keystroke's path, and moving
// them into a shared function made the automerge-paper replay 3–7% slower.
func (f *Fast) InsertAt(i int, id ID, n int, text string, left, right *ID) error {
	if i < 0 || i > f.vis {
		return fmt.Errorf("%w: index %d, length %d", ErrOutOfRange, i, f.vis)
	}
	ascii1 := len(text) == 1 && text[0] < utf8.RuneSelf // a keystroke: no UTF-8 scans
	nr := 1
	if !ascii1 {
		nr = utf8.RuneCountInString(text)
	}
	if n <= 0 || (nr != 0 && nr != n) {
		return fmt.Errorf("seq: insert of %d elements with %d characters", n, nr)
	}
	if !ownRange(id, n) {
		return fmt.Errorf("%w: insert of %d elements from %v", ErrOutOfRange, n, id)
	}
	act, known := f.actors.lookup(id.Actor)
	if known {
		if c, dup := f.actors.idx[act].firstIn(id.Counter, id.Counter+uint64(n)); dup {
			return fmt.Errorf("%w: %v", ErrDuplicate, ID{Counter: c, Actor: id.Actor})
		}
	}
	c := f.localPlace(i)
	lc, rc := before(c), atCursor(c)
	f.actors.setID(left, lc)
	f.actors.setID(right, rc)
	if !ascii1 && nr > 0 && !utf8.ValidString(text) {
		text = string([]rune(text)) // as Insert stores it
	}
	if !known {
		act = f.actors.intern(id.Actor)
	}
	var last cursor
	if p := f.typesOn(c, act, id.Counter, n, rc, text); p != nil {
		// What place does when the new run extends the one before it,
		// without building the run.
		off := uint64(len(f.arena))
		f.textPrevLast, f.textPrevEnd = f.textLast, off
		if len(text) == 1 {
			f.arena = append(f.arena, text[0]) // a keystroke: no call to copy one byte
		} else {
			f.arena = append(f.arena, text...)
		}
		f.textLast = cid{id.Counter + uint64(n-1), act}
		f.ver++
		p.n += uint32(n)
		f.bump(c.l, n, n)
		f.actors.idx[act].insert(id.Counter, id.Counter+uint64(n), c.l)
		last = cursor{c.l, c.ri - 1, p.len() - 1}
	} else {
		last = f.place(c, act, id.Counter, n, lc, rc, text)
	}
	if c := after(last.l, last.ri, last.off); (c.ri < c.l.n && c.run().visible()) || c.l == f.tail {
		// Field by field: with next set, the origins fields are not read.
		o := &f.org
		o.ver, o.at, o.index, o.next = f.ver, c, i+n, true
	}
	return nil
}

// typesOn returns the run just before c (in its leaf) if the n elements
// ctr… of act with text, placed at c with right origin rc, would extend it
// (see extends): a visible ASCII run of act ending at ctr-1, with right
// origin rc and its text last in the arena, and text ASCII. Else nil.
func (f *Fast) typesOn(c cursor, act uint32, ctr uint64, n int, rc cid, text string) *run {
	if c.off != 0 || c.ri == 0 || len(text) != n || !isASCII(text) {
		return nil
	}
	p := &c.l.runs[c.ri-1]
	if p.act != act || p.end() != ctr || p.rctr != rc.ctr || p.ract != rc.act ||
		p.txt&^txtMask != flagVisible|flagASCII || p.off()+uint64(p.n) != uint64(len(f.arena)) ||
		uint64(p.n)+uint64(n) > maxRun {
		return nil
	}
	return p
}

// findPlace returns where a new element with origins left and right goes,
// by the FugueMax rule, or the error Simple gives for them.
func (f *Fast) findPlace(id ID, left, right ID) (cursor, cid, cid, error) {
	var from cursor // just after left
	lc, rc := cid{}, cid{}
	if !left.IsZero() {
		c, at, ok := f.locateID(left)
		if !ok {
			return cursor{}, cid{}, cid{}, fmt.Errorf("%w: left origin %v", ErrUnknownElement, left)
		}
		lc, from = c, after(at.l, at.ri, at.off)
	} else {
		from = f.firstCursor()
	}
	if !right.IsZero() {
		c, _, ok := f.locateID(right)
		if !ok {
			return cursor{}, cid{}, cid{}, fmt.Errorf("%w: right origin %v", ErrUnknownElement, right)
		}
		rc = c
	}
	if atCursor(from) == rc {
		// Nothing between the origins (the non-concurrent case): the scan
		// would stop at once.
		return from, lc, rc, nil
	}
	lpos, rpos := f.pos(lc, -1), f.pos(rc, f.tot)
	if rpos <= lpos {
		return cursor{}, cid{}, cid{}, fmt.Errorf("seq: right origin %v is not after left origin %v", right, left)
	}
	return f.integrate(id.Actor, lpos, rpos, from), lc, rc, nil
}

// place puts elements act:ctr… (n of them) at dest, the first with origins
// left and right, each next one after the one before, and returns the
// place of the last.
func (f *Fast) place(dest cursor, act uint32, ctr uint64, n int, left, right cid, text string) cursor {
	first := f.newRun(act, ctr, n, left, right, text, true)
	last := f.placeRun(dest, first)
	for done := first.len(); done < n; {
		r := f.nextRun(first, ctr, n, done)
		last = f.placeRun(after(last.l, last.ri, last.off), r)
		done += r.len()
	}
	return last
}

// newRun stores the text of the n elements act:ctr… in the arena and
// returns their first run (all of them, unless there are more than
// maxRun), the first element with origins left and right.
func (f *Fast) newRun(act uint32, ctr uint64, n int, left, right cid, text string, visible bool) run {
	flags := uint64(0)
	if visible {
		flags = flagVisible
	}
	off := uint64(len(f.arena))
	switch {
	case text == "":
		flags |= flagNoText
		off = 0
	case isASCII(text):
		flags |= flagASCII
	}
	if text != "" {
		f.textPrevLast, f.textPrevEnd = f.textLast, off
		f.arena = append(f.arena, text...)
		f.textLast = cid{ctr + uint64(n-1), act}
	}
	f.ver++
	return run{ctr: ctr, n: uint32(min(n, maxRun)), act: act,
		lctr: left.ctr, lact: left.act, rctr: right.ctr, ract: right.act, txt: off | flags}
}

// nextRun is the run of the n elements from ctr that starts after the
// first done of them, first being newRun's: only lists of over 4G
// elements need one.
func (f *Fast) nextRun(first run, ctr uint64, n, done int) run {
	r := first
	r.ctr, r.n = ctr+uint64(done), uint32(min(n-done, maxRun))
	r.lctr, r.lact = r.ctr-1, first.act
	r.txt = first.txt + first.textBytes(f.arena, done)
	return r
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// placeRun inserts run r before the element at c and returns the place of
// r's last element.
func (f *Fast) placeRun(c cursor, r run) cursor {
	if c.off == 0 && c.ri == 0 {
		// At a leaf's start the run before is the previous leaf's last:
		// look there, so that typing across a leaf boundary still extends.
		for l := c.l.prev; l != nil; l = l.prev {
			if l.n > 0 {
				c = cursor{l, l.n, 0}
				break
			}
		}
	}
	if c.off == 0 && c.ri > 0 {
		if p := &c.l.runs[c.ri-1]; f.extends(p, &r) {
			p.n += r.n
			f.bump(c.l, r.len(), r.len())
			f.actors.idx[r.act].insert(r.ctr, r.end(), c.l)
			return cursor{c.l, c.ri - 1, p.len() - 1}
		}
	}
	need := 1
	if c.off > 0 {
		need = 2
	}
	c = f.room(c, need)
	if c.off > 0 {
		a, b := c.run().split(f.arena, c.off)
		c.l.runs[c.ri] = a
		c.l.insertRun(c.ri+1, b)
		c.ri++
	}
	c.l.insertRun(c.ri, r)
	f.bump(c.l, r.len(), r.len())
	f.actors.idx[r.act].insert(r.ctr, r.end(), c.l)
	return cursor{c.l, c.ri, r.len() - 1}
}

// extends reports whether new run r can be appended to run p, which is
// directly before it: typing that continues p.
func (f *Fast) extends(p, r *run) bool {
	if !sameShape(p, r) {
		return false
	}
	switch {
	case r.noText():
		return true
	case r.ascii():
		return r.off() == p.off()+uint64(p.n)
	}
	// Non-ASCII text: rather than decode p to find where its text ends,
	// know that it ends where r's starts if p's last character was the
	// last one stored before r's.
	return p.last() == f.textPrevLast && r.off() == f.textPrevEnd
}

func (f *Fast) IDAt(i int) (ID, error) {
	if i < 0 || i >= f.vis {
		return ID{}, fmt.Errorf("%w: index %d, length %d", ErrOutOfRange, i, f.vis)
	}
	c := f.cursorAtVis(i)
	return f.actors.id(atCursor(c)), nil
}

func (f *Fast) Index(id ID) (int, bool, bool) {
	_, at, ok := f.locateID(id)
	if !ok {
		return 0, false, false
	}
	return f.visBefore(at), at.run().visible(), true
}

// pos is the position (among all elements) of element c, or none if c is
// zero or absent, as Simple's origin lookup gives.
func (f *Fast) pos(c cid, none int) int {
	if c.ctr == 0 {
		return none
	}
	at, ok := f.locate(c)
	if !ok {
		return -1
	}
	return totBefore(at)
}

func (f *Fast) Spans(i, n int) ([]Run, error) {
	return f.spans(nil, i, n)
}

// spans appends Spans' runs to runs, a slab slice if it is nil.
func (f *Fast) spans(runs []Run, i, n int) ([]Run, error) {
	if i < 0 || n < 0 || i > f.vis || n > f.vis-i {
		return nil, fmt.Errorf("%w: %d+%d, length %d", ErrOutOfRange, i, n, f.vis)
	}
	if n == 0 {
		return nil, nil
	}
	c := f.cursorAtVis(i)
	f.loc = cursor{c.l, c.ri, 0}
	if runs == nil {
		runs = f.runSlab.one()[:0]
	}
	var lastEnd cid // the ID after the last run's end, while adjacent
	for n > 0 {
		r := c.run()
		if r.visible() {
			k := min(r.len()-c.off, n)
			start := r.at(c.off)
			if start == lastEnd && len(runs) > 0 {
				runs[len(runs)-1].Len += k
			} else {
				runs = append(runs, Run{Index: i, Len: k})
				f.actors.setID(&runs[len(runs)-1].Start, start)
			}
			i += k
			n -= k
			lastEnd = r.at(c.off + k)
		} else {
			lastEnd = cid{}
		}
		c = nextRun(c)
	}
	return runs, nil
}

func (f *Fast) Runs(fn func(first ID, n int)) {
	for l := f.head; l != nil; l = l.next {
		for ri := 0; ri < l.n; ri++ {
			if r := &l.runs[ri]; r.visible() {
				fn(f.actors.id(cid{r.ctr, r.act}), r.len())
			}
		}
	}
}

func (f *Fast) Text() string {
	var b strings.Builder
	b.Grow(f.vis)
	start := 0
	for l := f.head; l != nil; l = l.next {
		// The walk passes every leaf in order: it notes their visible
		// starts, so that places asked until the next edit (a save asks
		// some, see crdt.Doc.ElemIndex) skip the climb to the root.
		l.visAt, l.visStamp = start, f.ver
		start += l.vis()
		for ri := 0; ri < l.n; ri++ {
			if r := &l.runs[ri]; r.visible() {
				f.writeText(&b, r, 0, r.len())
			}
		}
	}
	return b.String()
}

func (f *Fast) Slice(i, n int) (string, error) {
	if i < 0 || n < 0 || i > f.vis || n > f.vis-i {
		return "", fmt.Errorf("%w: %d+%d, length %d", ErrOutOfRange, i, n, f.vis)
	}
	var b strings.Builder
	if n == 0 {
		return "", nil
	}
	b.Grow(n)
	for c := f.cursorAtVis(i); n > 0; c = nextRun(c) {
		if r := c.run(); r.visible() {
			k := min(r.len()-c.off, n)
			f.writeText(&b, r, c.off, k)
			n -= k
		}
	}
	return b.String(), nil
}

// writeText writes the characters of elements [from, from+k) of r.
func (f *Fast) writeText(b *strings.Builder, r *run, from, k int) {
	if r.noText() {
		for ; k > 0; k-- {
			b.WriteByte(0)
		}
		return
	}
	s := r.off() + r.textBytes(f.arena, from)
	q := *r
	q.txt = s | r.txt&^txtMask
	b.Write(f.arena[s : s+q.textBytes(f.arena, k)])
}
