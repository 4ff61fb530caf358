package seq

import (
	"cmp"
	"fmt"
	"slices"
)

// HideAt finds the runs as Spans does, into a buffer it reuses, and hides
// each the way SetVisible does, without reporting them again. The usual
// delete (a keystroke, a selection within what was typed in one go) lies
// in one run: it is hidden where the descent by index found it, without
// looking the run up again by ID.
func (f *Fast) HideAt(i, n int) ([]Run, error) {
	if n > 0 && i >= 0 && i+n <= f.vis {
		c := f.cursorAtVis(i)
		if r := c.run(); c.off+n <= r.len() {
			runs := append(f.hideBuf[:0], Run{Index: i, Len: n})
			f.actors.setID(&runs[0].Start, r.at(c.off))
			f.hideBuf = runs[:0]
			f.loc = cursor{c.l, c.ri, 0}
			f.ver++
			f.setVis(c, n, false)
			return runs, nil
		}
	}
	runs, err := f.spans(f.hideBuf[:0], i, n)
	if err != nil {
		return nil, err
	}
	if runs != nil {
		f.hideBuf = runs[:0]
	}
	for k := range runs {
		r := &runs[k]
		r.Index = i
		if !f.hideOne(&r.Start, r.Len) {
			if _, err := f.SetVisible(r.Start, r.Len, false); err != nil {
				return nil, err
			}
		}
	}
	return runs, nil
}

// hideOne hides the n visible elements from id if they lie in one run,
// SetVisible's usual case; it reports false, having done nothing, if not.
func (f *Fast) hideOne(id *ID, n int) bool {
	at, ok := f.inOneRun(id, n)
	if !ok || !at.run().visible() {
		return false
	}
	f.ver++
	f.setVis(at, n, false)
	return true
}

// inOneRun returns where the n elements from id are, if there are any and
// they lie in one run.
func (f *Fast) inOneRun(id *ID, n int) (cursor, bool) {
	act, known := f.actors.lookup(id.Actor)
	if n <= 0 || !known || !ownRange(*id, n) {
		return cursor{}, false
	}
	at, ok := f.locate(cid{id.Counter, act})
	if !ok || id.Counter+uint64(n) > at.run().end() {
		return cursor{}, false
	}
	return at, true
}

func (f *Fast) SetVisible(id ID, n int, visible bool) ([]Run, error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: count %d", ErrOutOfRange, n)
	}
	if at, ok := f.inOneRun(&id, n); ok {
		// The usual case, a delete of what Spans just returned: one run.
		if at.run().visible() == visible {
			return nil, nil
		}
		f.ver++
		index := f.visBefore(at)
		f.setVis(at, n, visible)
		runs := f.runSlab.one()
		runs[0] = Run{Index: index, Start: id, Len: n}
		return runs, nil
	}
	if !f.Has(id, n) {
		return nil, fmt.Errorf("%w: %v (+%d)", ErrUnknownElement, id, n)
	}
	if n == 0 {
		return nil, nil
	}
	f.ver++
	act, _ := f.actors.lookup(id.Actor) // known: Has found the elements
	lo, hi := id.Counter, id.Counter+uint64(n)

	// The IDs may be spread over the sequence in any order: find the pieces
	// that change, then change them in sequence order, as Simple reports.
	type piece struct {
		pos    int
		lo, hi uint64
	}
	var ps []piece
	f.actors.idx[act].each(lo, hi, func(a, b uint64, l *leaf) {
		for ri := 0; ri < l.n; ri++ {
			r := &l.runs[ri]
			if r.act != act || r.visible() == visible {
				continue
			}
			if x, y := max(a, r.ctr), min(b, r.end()); x < y {
				ps = append(ps, piece{totBefore(cursor{l, ri, int(x - r.ctr)}), x, y})
			}
		}
	})
	slices.SortFunc(ps, func(a, b piece) int { return cmp.Compare(a.pos, b.pos) })
	var runs []Run
	var lastEnd cid // the ID after the last reported run
	for _, p := range ps {
		for x := p.lo; x < p.hi; {
			at, _ := f.locate(cid{x, act})
			k := int(min(p.hi, at.run().end()) - x)
			index := f.visBefore(at)
			if lastEnd == (cid{x, act}) && before(at) == (cid{x - 1, act}) {
				runs[len(runs)-1].Len += k
			} else {
				runs = append(runs, Run{Index: index, Start: ID{Counter: x, Actor: id.Actor}, Len: k})
			}
			f.setVis(at, k, visible)
			x += uint64(k)
			lastEnd = cid{x, act}
		}
	}
	return runs, nil
}

// setVis gives elements [c.off, c.off+k) of c's run the visibility v,
// which they do not have yet. The changed part is split off and joined to
// a neighbour run where it continues it, so that deleting backwards or
// forwards through typed text keeps the run count flat.
func (f *Fast) setVis(c cursor, k int, v bool) {
	d := k
	if !v {
		d = -k
	}
	r := *c.run()
	n := r.len()
	switch {
	case k == n:
		c.run().setVisible(v)
		f.mergeAround(c.l, c.ri)
	case c.off == 0:
		a, b := r.split(f.arena, k)
		a.setVisible(v)
		if c.ri > 0 && joinable(f.arena, &c.l.runs[c.ri-1], &a) {
			c.l.runs[c.ri-1].n += a.n
			c.l.runs[c.ri] = b
		} else {
			c = f.room(c, 1)
			c.l.runs[c.ri] = b
			c.l.insertRun(c.ri, a)
		}
	case c.off+k == n:
		a, b := r.split(f.arena, c.off)
		b.setVisible(v)
		if c.ri+1 < c.l.n && joinable(f.arena, &b, &c.l.runs[c.ri+1]) {
			nx := &c.l.runs[c.ri+1]
			b.n += nx.n
			*nx = b
			c.l.runs[c.ri] = a
		} else {
			c = f.room(c, 1)
			c.l.runs[c.ri] = a
			c.l.insertRun(c.ri+1, b)
		}
	default:
		a, rest := r.split(f.arena, c.off)
		b, e := rest.split(f.arena, k)
		b.setVisible(v)
		c = f.room(c, 2)
		c.l.runs[c.ri] = a
		c.l.insertRun(c.ri+1, b)
		c.l.insertRun(c.ri+2, e)
	}
	f.bump(c.l, d, 0)
}

// mergeAround joins run ri of l with its neighbours where they continue
// each other.
func (f *Fast) mergeAround(l *leaf, ri int) {
	if ri+1 < l.n && joinable(f.arena, &l.runs[ri], &l.runs[ri+1]) {
		l.runs[ri].n += l.runs[ri+1].n
		l.deleteRun(ri + 1)
	}
	if ri > 0 && joinable(f.arena, &l.runs[ri-1], &l.runs[ri]) {
		l.runs[ri-1].n += l.runs[ri].n
		l.deleteRun(ri)
	}
}

func (f *Fast) Remove(id ID, n int) error {
	if n < 0 {
		return fmt.Errorf("%w: count %d", ErrOutOfRange, n)
	}
	if !f.Has(id, n) {
		return fmt.Errorf("%w: %v (+%d)", ErrUnknownElement, id, n)
	}
	if n == 0 {
		return nil
	}
	f.ver++
	act, _ := f.actors.lookup(id.Actor)
	lo, hi := id.Counter, id.Counter+uint64(n)
	for x := lo; x < hi; {
		at, _ := f.locate(cid{x, act})
		k := int(min(hi, at.run().end()) - x)
		f.cut(at, k)
		x += uint64(k)
	}
	f.actors.idx[act].remove(lo, hi)
	return nil
}

// cut takes elements [c.off, c.off+k) out of c's run. An element after the
// cut keeps the removed one as its left origin, as in Simple.
func (f *Fast) cut(c cursor, k int) {
	r := *c.run()
	dv := 0
	if r.visible() {
		dv = -k
	}
	switch n := r.len(); {
	case k == n:
		c.l.deleteRun(c.ri)
	case c.off == 0:
		_, b := r.split(f.arena, k)
		*c.run() = b
	case c.off+k == n:
		c.run().n = uint32(c.off)
	default:
		a, rest := r.split(f.arena, c.off)
		_, e := rest.split(f.arena, k)
		c = f.room(c, 1)
		c.l.runs[c.ri] = a
		c.l.insertRun(c.ri+1, e)
	}
	f.bump(c.l, dv, -k)
}
