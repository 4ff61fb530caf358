package seq

import "github.com/converge-sync/converge/causal"

// integrate finds the place for a new element by actor whose left origin is
// at position lpos (-1: the start) and right origin at rpos (the number of
// elements: the end), scanning from cursor c at lpos+1. It is
// Simple.integrate, the FugueMax (YjsMod) rule, step for step, except that
// it takes the later elements of a run in one step: each has the element
// before it as its left origin, which lies after lpos, so it can neither
// stop the scan nor change its state.
func (f *Fast) integrate(actor causal.ActorID, lpos, rpos int, c cursor) cursor {
	dest := c
	scanning := false
	for i := lpos + 1; ; {
		if !scanning {
			dest = c
		}
		if i == f.tot || i == rpos {
			break
		}
		r := c.run()
		var ol int
		if rl := r.left(); c.off > 0 || (rl.ctr != 0 && before(c) == rl) {
			ol = i - 1
		} else {
			ol = f.pos(rl, -1)
		}
		or := f.pos(r.right(), f.tot)
		if ol < lpos || (ol == lpos && or == rpos && actor.Compare(f.actors.ids[r.act]) < 0) {
			break
		}
		if ol == lpos {
			scanning = or < rpos
		}
		k := min(r.len()-c.off, rpos-i)
		i += k
		if c.off+k < r.len() {
			c.off += k
		} else {
			c = nextRun(c)
		}
	}
	return dest
}
