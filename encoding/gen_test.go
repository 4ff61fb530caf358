package encoding

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// gen makes random changes that use every field the format carries. They
// are well formed (each op sets only the fields its action uses, empty
// slices are nil) but need not make sense as a history: the codecs do not
// interpret them.
type gen struct {
	r      *rand.Rand
	actors []causal.ActorID
}

func newGen(seed uint64) *gen {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for i := 0; i < 1+g.r.IntN(4); i++ {
		var a causal.ActorID
		for j := range a {
			a[j] = byte(g.r.UintN(256))
		}
		g.actors = append(g.actors, a)
	}
	return g
}

func (g *gen) actor() causal.ActorID { return g.actors[g.r.IntN(len(g.actors))] }

func (g *gen) big() uint64 {
	switch g.r.IntN(4) {
	case 0:
		return g.r.Uint64()
	case 1:
		return uint64(1 + g.r.IntN(1<<20))
	}
	return uint64(1 + g.r.IntN(100))
}

func (g *gen) opID() causal.OpID {
	if g.r.IntN(6) == 0 {
		return causal.OpID{}
	}
	return causal.OpID{Counter: g.big(), Actor: g.actor()}
}

func (g *gen) nonZeroOpID() causal.OpID {
	return causal.OpID{Counter: g.big(), Actor: g.actor()}
}

var alphabet = []rune("abc xyz\n\t€ñ日本😀\x00")

func (g *gen) str(max int) string {
	n := g.r.IntN(max + 1)
	rs := make([]rune, n)
	for i := range rs {
		rs[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	return string(rs)
}

func (g *gen) value() crdt.Value {
	switch g.r.IntN(10) {
	case 0:
		return crdt.Null()
	case 1:
		return crdt.Bool(g.r.IntN(2) == 0)
	case 2:
		return crdt.Int(int64(g.r.Uint64()))
	case 3:
		fs := []float64{0, math.Copysign(0, -1), 1.5, math.Inf(1), math.NaN(), g.r.NormFloat64()}
		return crdt.Float(fs[g.r.IntN(len(fs))])
	case 4:
		return crdt.String(g.str(12))
	case 5:
		return crdt.Bytes([]byte(g.str(5)))
	case 6:
		return crdt.Counter(int64(g.r.IntN(200)) - 100)
	case 7:
		return crdt.NewMap()
	case 8:
		return crdt.NewList()
	}
	return crdt.NewText()
}

func (g *gen) preds() []causal.OpID {
	n := g.r.IntN(4)
	if n == 0 {
		return nil
	}
	p := make([]causal.OpID, n)
	for i := range p {
		p[i] = g.nonZeroOpID()
	}
	return p
}

func (g *gen) op() crdt.Op {
	op := crdt.Op{Action: crdt.Action(1 + g.r.IntN(6)), Obj: g.opID()}
	switch op.Action {
	case crdt.ActPut, crdt.ActDelete, crdt.ActIncrement:
		if g.r.IntN(2) == 0 {
			op.Key = g.str(6)
		} else {
			op.Elem = g.nonZeroOpID()
		}
		switch op.Action {
		case crdt.ActPut:
			op.Value = g.value()
		case crdt.ActIncrement:
			op.Value = crdt.Int(int64(g.r.IntN(2000)) - 1000)
		}
		op.Pred = g.preds()
	case crdt.ActInsert, crdt.ActInsertText:
		op.Left, op.Right = g.opID(), g.opID()
		if op.Action == crdt.ActInsert {
			op.Value = g.value()
		} else {
			op.Text = g.str(8)
			if op.Text == "" {
				op.Text = "a"
			}
		}
	case crdt.ActDeleteText:
		op.Elem = g.nonZeroOpID()
		op.Len = g.big()
	}
	return op
}

func (g *gen) change() *crdt.Change {
	c := &crdt.Change{
		Actor:   g.actor(),
		Seq:     g.big(),
		StartOp: g.big(),
		Time:    int64(g.r.Uint64()) >> g.r.IntN(64),
		Message: g.str(10),
	}
	for i := g.r.IntN(3); i > 0; i-- {
		c.Deps = append(c.Deps, causal.ChangeID{Actor: g.actor(), Seq: g.big()})
	}
	slices.SortFunc(c.Deps, causal.ChangeID.Compare)
	c.Deps = slices.Compact(c.Deps)
	for i := g.r.IntN(8); i > 0; i-- {
		c.Ops = append(c.Ops, g.op())
	}
	return c
}

// history makes a complete, causally consistent history of n changes by
// the generator's actors: each change depends on what its actor has seen,
// actors now and then learn each other's changes, and some changes are
// empty (which exercises ties in the canonical order).
func (g *gen) history(n int) []*crdt.Change {
	type replica struct {
		seen  map[causal.ActorID]uint64 // latest seq known per actor
		maxOp uint64
	}
	reps := make([]*replica, len(g.actors))
	for i := range reps {
		reps[i] = &replica{seen: map[causal.ActorID]uint64{}}
	}
	var all []*crdt.Change
	byID := map[causal.ChangeID]*crdt.Change{}
	for len(all) < n {
		i := g.r.IntN(len(g.actors))
		me, rep := g.actors[i], reps[i]
		if g.r.IntN(4) == 0 && len(all) > 0 { // learn everything another replica knows
			o := reps[g.r.IntN(len(reps))]
			for a, s := range o.seen {
				if s > rep.seen[a] {
					rep.seen[a] = s
				}
			}
			rep.maxOp = max(rep.maxOp, o.maxOp)
			continue
		}
		c := &crdt.Change{Actor: me, Seq: rep.seen[me] + 1, StartOp: rep.maxOp + 1, Time: int64(len(all)) * 1000}
		for _, a := range g.actors {
			if a != me && rep.seen[a] > 0 {
				c.Deps = append(c.Deps, causal.ChangeID{Actor: a, Seq: rep.seen[a]})
			}
		}
		slices.SortFunc(c.Deps, causal.ChangeID.Compare)
		if g.r.IntN(5) > 0 {
			for k := 1 + g.r.IntN(4); k > 0; k-- {
				c.Ops = append(c.Ops, g.op())
			}
		}
		_ = byID
		rep.seen[me] = c.Seq
		rep.maxOp = max(rep.maxOp, c.MaxOp())
		all = append(all, c)
	}
	return all
}

// state makes a random state tree.
func (g *gen) state(depth int) *State {
	return &State{Root: g.node(crdt.KindMap, depth)}
}

func (g *gen) node(k crdt.Kind, depth int) *Node {
	n := &Node{Kind: k}
	if k.IsContainer() {
		n.Obj = g.nonZeroOpID()
	}
	child := func() *Node {
		if depth <= 0 || g.r.IntN(3) > 0 {
			v := g.value()
			if v.Kind().IsContainer() {
				return g.node(v.Kind(), depth-1)
			}
			return &Node{Kind: v.Kind(), Value: v}
		}
		return g.node(crdt.Kind(7+g.r.IntN(3)), depth-1)
	}
	switch k {
	case crdt.KindMap:
		keys := map[string]bool{}
		for i := g.r.IntN(6); i > 0; i-- {
			keys[g.str(4)] = true
		}
		for key := range keys {
			n.Keys = append(n.Keys, key)
		}
		slices.Sort(n.Keys)
		for range n.Keys {
			n.Items = append(n.Items, child())
		}
	case crdt.KindList:
		for i := g.r.IntN(5); i > 0; i-- {
			n.Items = append(n.Items, child())
		}
	case crdt.KindText:
		n.Text = g.str(20)
	}
	return n
}
