// Package historytest is the contract test of crdt.History: any
// implementation must pass Run, which checks it against a naive model (a
// slice of the changes appended) on random histories that use every field
// of a change.
package historytest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// Run checks the History returned by newHistory (empty each time) on
// random histories of a few changes to a few thousand: Len, All, Since, Get
// and MaxOp must agree with the model after every batch of appends.
func Run(t *testing.T, newHistory func() crdt.History) {
	t.Run("empty", func(t *testing.T) {
		h := newHistory()
		check(t, h, nil, rand.New(rand.NewPCG(0, 0)))
	})
	for seed := uint64(1); seed <= 56; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			n := 1 + r.IntN(60)
			if seed%8 == 0 {
				n = 300 + r.IntN(700) // long enough to cross any chunking
			}
			cs := RandomHistory(seed, n)
			if seed > 40 {
				n = 200 + r.IntN(1300)
				cs = TypingHistory(seed, n)
			}
			h := newHistory()
			copier, _ := h.(crdt.ChangeCopier)
			copies := copier != nil && copier.CopiesChanges()
			for i, c := range cs {
				cc := clone(c)
				h.Append(cc)
				if copies {
					// It said it keeps nothing of the change: the caller
					// may reuse its memory at once, as Doc.Edit does.
					scribble(cc)
				}
				if i == len(cs)-1 || r.IntN(max(1, n/6)) == 0 {
					check(t, h, cs[:i+1], r)
					if t.Failed() {
						return
					}
				}
			}
		})
	}
}

// check compares h with the model, the changes appended so far.
func check(t *testing.T, h crdt.History, model []*crdt.Change, r *rand.Rand) {
	t.Helper()
	if h.Len() != len(model) {
		t.Fatalf("Len = %d, want %d", h.Len(), len(model))
	}
	// MaxOp of the latest changes first, before anything reads the whole
	// history: a History may hold the latest ones apart until then.
	for _, c := range model[max(0, len(model)-300):] {
		if m, ok := h.MaxOp(c.ID()); !ok || m != c.MaxOp() {
			t.Fatalf("MaxOp(%v) = %d, %v before All; want %d", c.ID(), m, ok, c.MaxOp())
		}
	}
	same(t, "All", h.All(), model)
	actors := map[causal.ActorID]uint64{}
	for _, c := range model {
		actors[c.Actor] = max(actors[c.Actor], c.Seq)
	}
	// Since: the empty version, the full one, and random ones, not
	// necessarily causally closed, with an actor the history never saw.
	versions := []causal.VersionVector{nil, {}, causal.VersionVector(actors)}
	for k := 0; k < 6; k++ {
		v := causal.VersionVector{Actor(200): 3}
		for a, n := range actors {
			if r.IntN(3) > 0 {
				v[a] = uint64(r.IntN(int(n) + 2))
			}
		}
		versions = append(versions, v)
	}
	for _, v := range versions {
		var want []*crdt.Change
		for _, c := range model {
			if !v.Includes(c.ID()) {
				want = append(want, c)
			}
		}
		same(t, fmt.Sprintf("Since(%v)", v), h.Since(v), want)
	}
	// Get and MaxOp of every change, and of changes that do not exist.
	for _, c := range model {
		got, ok := h.Get(c.ID())
		if !ok || !equal(got, c) {
			t.Fatalf("Get(%v) = %v, %v; want the change", c.ID(), got, ok)
		}
		if m, ok := h.MaxOp(c.ID()); !ok || m != c.MaxOp() {
			t.Fatalf("MaxOp(%v) = %d, %v; want %d", c.ID(), m, ok, c.MaxOp())
		}
	}
	for _, id := range []causal.ChangeID{{Actor: Actor(200), Seq: 1}, {Actor: Actor(1), Seq: 0}, {Actor: Actor(1), Seq: actors[Actor(1)] + 1}} {
		if c, ok := h.Get(id); ok {
			t.Fatalf("Get(%v) = %v for a change never appended", id, c)
		}
		if _, ok := h.MaxOp(id); ok {
			t.Fatalf("MaxOp(%v) found a change never appended", id)
		}
	}
}

func same(t *testing.T, what string, got, want []*crdt.Change) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d changes, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !equal(got[i], want[i]) {
			t.Fatalf("%s: change %d is\n%#v\nwant\n%#v", what, i, got[i], want[i])
		}
	}
}

// equal compares changes field by field; nil and empty slices are the
// same (a change read back from bytes has no way to tell them apart).
func equal(a, b *crdt.Change) bool {
	if a.Actor != b.Actor || a.Seq != b.Seq || a.StartOp != b.StartOp || a.Time != b.Time ||
		a.Message != b.Message || !slices.Equal(a.Deps, b.Deps) || len(a.Ops) != len(b.Ops) {
		return false
	}
	for i := range a.Ops {
		x, y := a.Ops[i], b.Ops[i]
		if !slices.Equal(x.Pred, y.Pred) {
			return false
		}
		x.Pred, y.Pred = nil, nil
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

func clone(c *crdt.Change) *crdt.Change {
	d := *c
	d.Deps = slices.Clone(c.Deps)
	d.Ops = slices.Clone(c.Ops)
	for i := range d.Ops {
		d.Ops[i].Pred = slices.Clone(d.Ops[i].Pred)
	}
	return &d
}

// scribble overwrites c and what it points to, as a Doc reusing a
// change's memory for the next one would.
func scribble(c *crdt.Change) {
	for i := range c.Deps {
		c.Deps[i] = causal.ChangeID{Actor: Actor(9), Seq: 99}
	}
	for i := range c.Ops {
		for j := range c.Ops[i].Pred {
			c.Ops[i].Pred[j] = causal.OpID{Counter: 99, Actor: Actor(9)}
		}
		c.Ops[i] = crdt.Op{Action: crdt.ActDelete, Key: "scribbled", Pred: c.Ops[i].Pred}
	}
	*c = crdt.Change{Actor: Actor(9), Seq: 99, Deps: c.Deps, Ops: c.Ops}
}

// Actor returns a fixed actor ID; the test histories use actors 1 to 5.
func Actor(i byte) causal.ActorID {
	var a causal.ActorID
	a[0], a[15] = 0xa0, i
	return a
}

// RandomHistory returns n changes as a Doc would append them: by up to five
// actors, each change after its dependencies, each actor's in seq order,
// with concurrent changes, multi-op and empty changes, messages, and every
// action and value kind (NaN excepted, which is not equal to itself).
func RandomHistory(seed uint64, n int) []*crdt.Change {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	nActors := 1 + r.IntN(5)
	type replica struct {
		seen  map[causal.ActorID]uint64
		maxOp uint64
	}
	reps := make([]replica, nActors)
	for i := range reps {
		reps[i].seen = map[causal.ActorID]uint64{}
	}
	g := &gen{r: r}
	var out []*crdt.Change
	for len(out) < n {
		i := r.IntN(nActors)
		me, rep := Actor(byte(i+1)), &reps[i]
		if r.IntN(4) == 0 { // learn what another replica knows
			o := &reps[r.IntN(nActors)]
			for a, s := range o.seen {
				rep.seen[a] = max(rep.seen[a], s)
			}
			rep.maxOp = max(rep.maxOp, o.maxOp)
			continue
		}
		c := &crdt.Change{Actor: me, Seq: rep.seen[me] + 1, StartOp: rep.maxOp + 1, Time: int64(len(out))*1000 + int64(r.IntN(900))}
		for a := 1; a <= nActors; a++ {
			if id := Actor(byte(a)); id != me && rep.seen[id] > 0 && r.IntN(3) > 0 {
				c.Deps = append(c.Deps, causal.ChangeID{Actor: id, Seq: rep.seen[id]})
			}
		}
		if r.IntN(10) == 0 {
			c.Message = g.str(12)
		}
		switch k := r.IntN(10); {
		case k == 0: // empty
		case k < 7:
			c.Ops = []crdt.Op{g.op()}
		default:
			for j := 2 + r.IntN(5); j > 0; j-- {
				c.Ops = append(c.Ops, g.op())
			}
		}
		rep.seen[me] = c.Seq
		rep.maxOp = max(rep.maxOp, c.MaxOp())
		out = append(out, c)
	}
	return out
}

// TypingHistory returns n changes of people typing into one text: runs
// of keystrokes (a character typed after the one typed before, or one
// deleted next to the one deleted before, going either way), some longer
// than any chunking, broken by jumps elsewhere, pastes, messages and
// another actor's changes: the changes a History may take a quicker way
// for.
func TypingHistory(seed uint64, n int) []*crdt.Change {
	r := rand.New(rand.NewPCG(seed, seed^0x7e9e))
	me, other := Actor(1), Actor(2)
	text := causal.OpID{Counter: 1, Actor: me}
	seqs := map[causal.ActorID]uint64{}
	var maxOp uint64
	var out []*crdt.Change
	var time int64
	add := func(a causal.ActorID, deps []causal.ChangeID, ops ...crdt.Op) {
		time += []int64{1000, 1000, 1, 37}[r.IntN(4)]
		c := &crdt.Change{Actor: a, Seq: seqs[a] + 1, StartOp: maxOp + 1, Time: time, Deps: deps, Ops: ops}
		seqs[a], maxOp = c.Seq, c.MaxOp()
		out = append(out, c)
	}
	add(me, nil, crdt.Op{Action: crdt.ActPut, Key: "t", Value: crdt.NewText()})
	add(me, nil, crdt.Op{Action: crdt.ActInsertText, Obj: text, Left: causal.OpID{}, Text: "the quick brown fox"})
	for len(out) < n {
		switch k := r.IntN(12); {
		case k < 6: // type on, after a character of the text
			left := causal.OpID{Counter: 2 + uint64(r.IntN(int(maxOp)-1)), Actor: me}
			right := causal.OpID{}
			if r.IntN(2) == 0 {
				right = causal.OpID{Counter: left.Counter + 1, Actor: me}
			}
			for i := 1 + r.IntN(300); i > 0 && len(out) < n; i-- {
				add(me, nil, crdt.Op{Action: crdt.ActInsertText, Obj: text, Left: left, Right: right, Text: string(rune('a' + r.IntN(26)))})
				left = causal.OpID{Counter: maxOp, Actor: me}
				if r.IntN(50) == 0 {
					add(other, nil) // an empty change between two keystrokes
				}
			}
		case k < 10: // delete forward or back
			elem, dir := 2+uint64(r.IntN(int(maxOp)-1)), uint64(1)
			if k < 8 {
				dir = ^uint64(0)
			}
			for i := 1 + r.IntN(200); i > 0 && len(out) < n && elem > 1 && elem <= maxOp; i-- {
				add(me, nil, crdt.Op{Action: crdt.ActDeleteText, Obj: text, Elem: causal.OpID{Counter: elem, Actor: me}, Len: 1})
				elem += dir
				if r.IntN(50) == 0 {
					add(other, nil) // an empty change between two keystrokes
				}
			}
		case k == 10: // a paste, with a message
			add(me, nil, crdt.Op{Action: crdt.ActInsertText, Obj: text, Left: causal.OpID{Counter: maxOp, Actor: me}, Text: "pasted"})
			out[len(out)-1].Message = "paste"
		default: // another actor, then this one having seen it
			add(other, []causal.ChangeID{{Actor: me, Seq: seqs[me]}},
				crdt.Op{Action: crdt.ActInsertText, Obj: text, Left: causal.OpID{Counter: maxOp, Actor: me}, Text: "x"})
			add(me, []causal.ChangeID{{Actor: other, Seq: seqs[other]}},
				crdt.Op{Action: crdt.ActDeleteText, Obj: text, Elem: causal.OpID{Counter: maxOp, Actor: other}, Len: 1})
		}
	}
	return out[:n]
}

type gen struct{ r *rand.Rand }

var alphabet = []rune("ab \n€ñ日😀\x00")

func (g *gen) str(maxLen int) string {
	rs := make([]rune, g.r.IntN(maxLen+1))
	for i := range rs {
		rs[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	return string(rs)
}

func (g *gen) id(nullable bool) causal.OpID {
	if nullable && g.r.IntN(5) == 0 {
		return causal.OpID{}
	}
	ctr := uint64(1 + g.r.IntN(50))
	if g.r.IntN(10) == 0 {
		ctr = g.r.Uint64() >> g.r.IntN(64)
	}
	return causal.OpID{Counter: ctr, Actor: Actor(byte(1 + g.r.IntN(6)))}
}

func (g *gen) value() crdt.Value {
	switch g.r.IntN(10) {
	case 0:
		return crdt.Null()
	case 1:
		return crdt.Bool(g.r.IntN(2) == 0)
	case 2:
		return crdt.Int(int64(g.r.Uint64()) >> g.r.IntN(64))
	case 3:
		return crdt.Float([]float64{0, math.Copysign(0, -1), 1.5, math.Inf(-1), g.r.NormFloat64()}[g.r.IntN(5)])
	case 4:
		return crdt.String(g.str(6))
	case 5:
		return crdt.Bytes([]byte(g.str(4)))
	case 6:
		return crdt.Counter(int64(g.r.IntN(100)) - 50)
	case 7:
		return crdt.NewMap()
	case 8:
		return crdt.NewList()
	}
	return crdt.NewText()
}

// op makes an op with exactly the fields its action uses.
func (g *gen) op() crdt.Op {
	op := crdt.Op{Action: crdt.Action(1 + g.r.IntN(6)), Obj: g.id(true)}
	switch op.Action {
	case crdt.ActPut, crdt.ActDelete, crdt.ActIncrement:
		if g.r.IntN(2) == 0 {
			op.Key = g.str(4)
		} else {
			op.Elem = g.id(false)
		}
		switch op.Action {
		case crdt.ActPut:
			op.Value = g.value()
		case crdt.ActIncrement:
			op.Value = crdt.Int(int64(g.r.IntN(20)) - 10)
		}
		for k := g.r.IntN(3); k > 0; k-- {
			op.Pred = append(op.Pred, g.id(false))
		}
	case crdt.ActInsert, crdt.ActInsertText:
		op.Left, op.Right = g.id(true), g.id(true)
		if op.Action == crdt.ActInsert {
			op.Value = g.value()
		} else {
			op.Text = g.str(5) + "x"
		}
	case crdt.ActDeleteText:
		op.Elem, op.Len = g.id(true), uint64(1+g.r.IntN(4))
	}
	return op
}
