package seq

import (
	"fmt"
	"unicode/utf8"
)

// Append adds n elements id, id+1, …, id+n-1 at the very end of the
// sequence, visible or not, the first with origins left and right and each
// next one after the one before (the shape Insert gives them), without
// integrating them: it is for building a sequence whose final order is
// already known, element after element from first to last, as a loader
// does that has worked out from a trusted history where every insert
// ended up. The result is the sequence that inserting (and hiding) the
// same elements by their origins would have built, if and only if the
// order given is the one integration gives; the caller vouches for that,
// Append does not check it (left and right need not even be present yet).
// It refuses IDs already present and text that is not n characters.
//
// Appending costs a leaf append and an ID index insert: no search by
// origins, no visible index.
func (f *Fast) Append(id ID, n int, left, right ID, text string, visible bool) error {
	nr := utf8.RuneCountInString(text)
	if nr > 0 && !utf8.ValidString(text) {
		return fmt.Errorf("seq: append of text that is not UTF-8")
	}
	act, known, err := f.checkNew("append", id, n, nr)
	if err != nil {
		return err
	}
	if !known {
		act = f.actors.intern(id.Actor)
	}
	// The origins' actors get an index too, as Insert gives them when it
	// finds them present; an origin not present yet is given one here.
	lc, rc := f.compactOrigin(left), f.compactOrigin(right)

	first := f.newRun(act, id.Counter, n, lc, rc, text, visible)
	f.appendRun(first)
	for done := first.len(); done < n; {
		r := f.nextRun(first, id.Counter, n, done)
		f.appendRun(r)
		done += r.len()
	}
	return nil
}

// compactOrigin is the compact form of an origin, its actor interned.
func (f *Fast) compactOrigin(id ID) cid {
	if id.IsZero() {
		return cid{}
	}
	return cid{id.Counter, f.actors.intern(id.Actor)}
}

// appendRun puts r after the last element, extending the last run if r
// continues it (as placeRun does).
func (f *Fast) appendRun(r run) {
	c := f.endCursor()
	if c.ri == 0 {
		for l := c.l.prev; l != nil; l = l.prev {
			if l.n > 0 {
				c = cursor{l, l.n, 0}
				break
			}
		}
	}
	v := 0
	if r.visible() {
		v = r.len()
	}
	if c.ri > 0 {
		if p := &c.l.runs[c.ri-1]; f.extends(p, &r) {
			p.n += r.n
			f.bump(c.l, v, r.len())
			f.actors.idx[r.act].insert(r.ctr, r.end(), c.l)
			return
		}
	}
	if c.l.n >= max(1, f.leafMax*buildFill/4) {
		// Leave room in each leaf for the edits that will follow: a full
		// leaf splits at the first insert into it, and the first edits
		// after a load would all pay for a split.
		c = cursor{f.splitLeaf(c.l, c.l.n), 0, 0}
	}
	c.l.insertRun(c.ri, r)
	f.bump(c.l, v, r.len())
	f.actors.idx[r.act].insert(r.ctr, r.end(), c.l)
}

// buildFill is how full, in quarters, Append leaves each leaf: half, as
// a sequence built by edits has them about (the first 1,000 keystrokes
// at random places on automerge-paper opened by converge bench trace:
// 1.4–1.5 µs each with half-full leaves, as when replayed; 1.6–1.8 with
// three quarters; 2.7 with full leaves).
const buildFill = 2
