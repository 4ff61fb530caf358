package seq

import "fmt"

// check verifies Fast's internal invariants: the counts in every inner node,
// parent and slot links, the leaf chain, and that the ID index names exactly
// the present elements and the leaves that hold them.
func (f *Fast) check() error {
	var leaves []*leaf
	var walk func(p *inner) (int, int, error)
	walk = func(p *inner) (int, int, error) {
		if p.n < 1 || p.n > f.innerMax {
			return 0, 0, fmt.Errorf("inner node with %d children", p.n)
		}
		sv, st := 0, 0
		for k := 0; k < p.n; k++ {
			var v, t int
			if p.bottom {
				l := p.leaves[k]
				if l.parent != p || l.slot != k {
					return 0, 0, fmt.Errorf("leaf %d: bad parent/slot", k)
				}
				if l.n > f.leafMax {
					return 0, 0, fmt.Errorf("leaf with %d runs", l.n)
				}
				for ri := 0; ri < l.n; ri++ {
					r := &l.runs[ri]
					if r.n == 0 {
						return 0, 0, fmt.Errorf("empty run")
					}
					t += r.len()
					if r.visible() {
						v += r.len()
					}
				}
				leaves = append(leaves, l)
			} else {
				c := p.kids[k]
				if c.parent != p || c.slot != k || c.bottom != (p.kids[k].bottom) {
					return 0, 0, fmt.Errorf("inner %d: bad parent/slot", k)
				}
				var err error
				if v, t, err = walk(c); err != nil {
					return 0, 0, err
				}
			}
			if p.vis[k] != v || p.tot[k] != t {
				return 0, 0, fmt.Errorf("counts %d/%d, children hold %d/%d", p.vis[k], p.tot[k], v, t)
			}
			sv += v
			st += t
		}
		return sv, st, nil
	}
	if f.root.parent != nil {
		return fmt.Errorf("root has a parent")
	}
	v, t, err := walk(f.root)
	if err != nil {
		return err
	}
	if v != f.vis || t != f.tot {
		return fmt.Errorf("totals %d/%d, tree holds %d/%d", f.vis, f.tot, v, t)
	}
	if f.head != leaves[0] || f.tail != leaves[len(leaves)-1] || f.head.prev != nil || f.tail.next != nil {
		return fmt.Errorf("bad head or tail")
	}
	for i := 1; i < len(leaves); i++ {
		if leaves[i-1].next != leaves[i] || leaves[i].prev != leaves[i-1] {
			return fmt.Errorf("leaf chain broken at %d", i)
		}
	}
	covered := 0
	for a, x := range f.actors.idx {
		var prev uint64
		for _, b := range x.blocks {
			if b.n == 0 {
				return fmt.Errorf("empty index block")
			}
			for _, e := range b.e[:b.n] {
				if e.lo >= e.hi || e.lo < prev {
					return fmt.Errorf("actor %d: bad index entry [%d,%d) after %d", a, e.lo, e.hi, prev)
				}
				prev = e.hi
				covered += int(e.hi - e.lo)
			}
		}
	}
	if covered != f.tot {
		return fmt.Errorf("index covers %d elements, tree holds %d", covered, f.tot)
	}
	for _, l := range leaves {
		for ri := 0; ri < l.n; ri++ {
			r := &l.runs[ri]
			for c := r.ctr; c < r.end(); c++ {
				if got := f.actors.idx[r.act].find(c); got != l {
					return fmt.Errorf("index sends %d@%d to the wrong leaf", c, r.act)
				}
			}
		}
	}
	return nil
}
