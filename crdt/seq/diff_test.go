package seq

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/converge-sync/converge/causal"
	"pgregory.net/rapid"
)

// The differential test: several replicas, each holding a Simple and a Fast
// fed the same calls, edit locally and exchange their edits in random causal
// orders. After every step the two engines of each replica must agree on
// every query and every error. Small node capacities make the Fast trees
// deep and make leaves split often.

type diffOp struct {
	insert      bool
	id          ID
	n           int
	left, right ID
	text        string
	visible     bool
}

type diffReplica struct {
	actor   causal.ActorID
	s       *Simple
	f       *Fast
	clock   uint64
	applied map[int]bool
}

type diffWorld struct {
	t    *rapid.T
	reps []*diffReplica
	log  []diffOp
}

// agree fails unless the two engines' answers are identical.
func agree(t *rapid.T, what string, simple, fast []any) {
	t.Helper()
	for i := range simple {
		a, b := simple[i], fast[i]
		if ea, ok := a.(error); ok || a == nil {
			eb, _ := b.(error)
			if (ea == nil) != (eb == nil) || (ea != nil && ea.Error() != eb.Error()) {
				t.Fatalf("%s: error: simple %v, fast %v", what, ea, eb)
			}
			continue
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: simple %#v, fast %#v", what, a, b)
		}
	}
}

func (w *diffWorld) check(r *diffReplica) {
	t := w.t
	if err := r.f.check(); err != nil {
		t.Fatalf("invariants: %v", err)
	}
	agree(t, "Len", []any{r.s.Len()}, []any{r.f.Len()})
	// Indices both before and after Text, which notes every leaf's
	// visible start: those noted before the last edit must not be used.
	w.checkIndices(r)
	agree(t, "Text", []any{r.s.Text()}, []any{r.f.Text()})
	w.checkIndices(r)
	for i := -1; i <= r.s.Len()+1; i++ {
		l1, r1, e1 := r.s.Origins(i)
		l2, r2, e2 := r.f.Origins(i)
		agree(t, fmt.Sprintf("Origins(%d)", i), []any{l1, r1, e1}, []any{l2, r2, e2})
		id1, e1 := r.s.IDAt(i)
		id2, e2 := r.f.IDAt(i)
		agree(t, fmt.Sprintf("IDAt(%d)", i), []any{id1, e1}, []any{id2, e2})
	}
	for _, op := range w.log {
		if !op.insert {
			continue
		}
		agree(t, "Has", []any{r.s.Has(op.id, op.n)}, []any{r.f.Has(op.id, op.n)})
		agree(t, "Has+1", []any{r.s.Has(op.id, op.n+1)}, []any{r.f.Has(op.id, op.n+1)})
	}
	// Runs may be cut differently, but spell out the same visible IDs.
	agree(t, "Runs", []any{runIDs(r.s)}, []any{runIDs(r.f)})
	if ids := runIDs(r.f); len(ids) != r.s.Len() {
		t.Fatalf("Runs gave %d elements, length %d", len(ids), r.s.Len())
	} else {
		for i, id := range ids {
			if at, _ := r.s.IDAt(i); at != id {
				t.Fatalf("Runs: element %d is %v, IDAt says %v", i, id, at)
			}
		}
	}
	n := r.s.Len()
	i := rapid.IntRange(0, n).Draw(t, "qi")
	k := rapid.IntRange(0, n-i).Draw(t, "qn")
	s1, e1 := r.s.Spans(i, k)
	s2, e2 := r.f.Spans(i, k)
	agree(t, "Spans", []any{s1, e1}, []any{s2, e2})
	t1, e1 := r.s.Slice(i, k)
	t2, e2 := r.f.Slice(i, k)
	agree(t, "Slice", []any{t1, e1}, []any{t2, e2})
}

// checkIndices compares Index for every element inserted so far and the
// IDs just outside each insert.
func (w *diffWorld) checkIndices(r *diffReplica) {
	for _, op := range w.log {
		if !op.insert {
			continue
		}
		for k := -1; k <= op.n; k++ {
			id := op.id.Add(uint64(k))
			a1, b1, c1 := r.s.Index(id)
			a2, b2, c2 := r.f.Index(id)
			agree(w.t, fmt.Sprintf("Index(%v)", id), []any{a1, b1, c1}, []any{a2, b2, c2})
		}
	}
}

// runIDs lists the IDs Runs gives, one per element.
func runIDs(s Sequence) []ID {
	var ids []ID
	s.Runs(func(first ID, n int) {
		for k := 0; k < n; k++ {
			ids = append(ids, first.Add(uint64(k)))
		}
	})
	return ids
}

func (w *diffWorld) rep(t *rapid.T) *diffReplica {
	return w.reps[rapid.IntRange(0, len(w.reps)-1).Draw(t, "replica")]
}

func (w *diffWorld) insert(r *diffReplica, op diffOp) {
	i1, e1 := r.s.Insert(op.id, op.n, op.left, op.right, op.text)
	i2, e2 := r.f.Insert(op.id, op.n, op.left, op.right, op.text)
	agree(w.t, fmt.Sprintf("Insert(%+v)", op), []any{i1, e1}, []any{i2, e2})
	if e1 == nil {
		r.clock = max(r.clock, op.id.Counter+uint64(op.n)-1)
	}
}

func (w *diffWorld) setVisible(r *diffReplica, id ID, n int, v bool) []Run {
	s1, e1 := r.s.SetVisible(id, n, v)
	s2, e2 := r.f.SetVisible(id, n, v)
	agree(w.t, fmt.Sprintf("SetVisible(%v, %d, %v)", id, n, v), []any{s1, e1}, []any{s2, e2})
	return s1
}

var diffText = rapid.SampledFrom([]string{"a", "b", "xy", "hello", "é", "€a", "", "\xffz", "ab€"})

func (w *diffWorld) typeLocal(t *rapid.T) {
	r := w.rep(t)
	i := rapid.IntRange(0, r.s.Len()).Draw(t, "i")
	text := diffText.Draw(t, "text")
	n := len([]rune(text))
	if n == 0 {
		n = rapid.IntRange(1, 3).Draw(t, "n")
	}
	id := ID{Counter: r.clock + 1, Actor: r.actor}
	var op diffOp
	if rapid.Bool().Draw(t, "insertAt") {
		// The one-step local insert, checked against Simple's and then,
		// like the two-step one, against every query.
		var l1, r1, l2, r2 ID
		e1 := r.s.InsertAt(i, id, n, text, &l1, &r1)
		e2 := r.f.InsertAt(i, id, n, text, &l2, &r2)
		agree(t, fmt.Sprintf("InsertAt(%d, %v, %d, %q)", i, id, n, text), []any{l1, r1, e1}, []any{l2, r2, e2})
		op = diffOp{insert: true, id: id, n: n, left: l1, right: r1, text: text}
		if e1 == nil {
			r.clock = max(r.clock, id.Counter+uint64(n)-1)
		}
		w.check(r)
	} else {
		l1, r1, e1 := r.s.Origins(i)
		l2, r2, e2 := r.f.Origins(i)
		agree(t, "Origins", []any{l1, r1, e1}, []any{l2, r2, e2})
		op = diffOp{insert: true, id: id, n: n, left: l1, right: r1, text: text}
		w.insert(r, op)
	}
	r.applied[len(w.log)] = true
	w.log = append(w.log, op)
}

func (w *diffWorld) deleteLocal(t *rapid.T) {
	r := w.rep(t)
	if r.s.Len() == 0 {
		t.Skip("nothing to delete")
	}
	i := rapid.IntRange(0, r.s.Len()-1).Draw(t, "i")
	n := rapid.IntRange(1, min(6, r.s.Len()-i)).Draw(t, "n")
	if rapid.Bool().Draw(t, "hideAt") {
		// The one-step local delete.
		s1, e1 := r.s.HideAt(i, n)
		s2, e2 := r.f.HideAt(i, n)
		agree(t, fmt.Sprintf("HideAt(%d, %d)", i, n), []any{s1, e1}, []any{slices.Clone(s2), e2})
		for _, sp := range s1 {
			r.applied[len(w.log)] = true
			w.log = append(w.log, diffOp{id: sp.Start, n: sp.Len})
		}
		w.check(r)
		return
	}
	s1, e1 := r.s.Spans(i, n)
	s2, e2 := r.f.Spans(i, n)
	agree(t, "Spans", []any{s1, e1}, []any{s2, e2})
	for _, sp := range s1 {
		w.setVisible(r, sp.Start, sp.Len, false)
		r.applied[len(w.log)] = true
		w.log = append(w.log, diffOp{id: sp.Start, n: sp.Len})
	}
}

// ready reports whether op's dependencies are present at r.
func ready(r *diffReplica, op diffOp) bool {
	if !op.insert {
		return r.s.Has(op.id, op.n)
	}
	return (op.left.IsZero() || r.s.Has(op.left, 1)) && (op.right.IsZero() || r.s.Has(op.right, 1))
}

func (w *diffWorld) deliver(t *rapid.T) {
	r := w.rep(t)
	var cands []int
	for k, op := range w.log {
		if !r.applied[k] && ready(r, op) {
			cands = append(cands, k)
		}
	}
	if len(cands) == 0 {
		t.Skip("nothing to deliver")
	}
	k := rapid.SampledFrom(cands).Draw(t, "op")
	op := w.log[k]
	if op.insert {
		w.insert(r, op)
	} else {
		w.setVisible(r, op.id, op.n, op.visible)
	}
	r.applied[k] = true
}

// someID draws an ID near the logged inserts: present, absent, or zero.
func (w *diffWorld) someID(t *rapid.T) ID {
	if len(w.log) == 0 || rapid.IntRange(0, 9).Draw(t, "zero") == 0 {
		return ID{}
	}
	op := w.log[rapid.IntRange(0, len(w.log)-1).Draw(t, "logop")]
	return op.id.Add(uint64(rapid.IntRange(-1, op.n).Draw(t, "k")))
}

func (w *diffWorld) toggle(t *rapid.T) {
	r := w.rep(t)
	id := w.someID(t)
	w.setVisible(r, id, rapid.IntRange(-1, 5).Draw(t, "n"), rapid.Bool().Draw(t, "visible"))
}

func (w *diffWorld) remove(t *rapid.T) {
	r := w.rep(t)
	var cands []int
	for k, op := range w.log {
		if op.insert && r.applied[k] {
			cands = append(cands, k)
		}
	}
	if len(cands) == 0 {
		t.Skip("nothing to remove")
	}
	k := rapid.SampledFrom(cands).Draw(t, "op")
	op := w.log[k]
	from := rapid.IntRange(0, op.n-1).Draw(t, "from")
	n := rapid.IntRange(0, op.n-from+1).Draw(t, "n")
	e1 := r.s.Remove(op.id.Add(uint64(from)), n)
	e2 := r.f.Remove(op.id.Add(uint64(from)), n)
	agree(t, "Remove", []any{e1}, []any{e2})
	if e1 == nil && from == 0 && n == op.n {
		r.applied[k] = false // may come back, as a rolled-back change redone
	}
}

func (w *diffWorld) bad(t *rapid.T) {
	r := w.rep(t)
	id := w.someID(t)
	if rapid.IntRange(0, 9).Draw(t, "wrap") == 0 {
		id.Counter = ^uint64(0) - uint64(rapid.IntRange(0, 2).Draw(t, "below"))
	}
	op := diffOp{insert: true, id: id, n: rapid.IntRange(-1, 3).Draw(t, "n"),
		left: w.someID(t), right: w.someID(t), text: diffText.Draw(t, "text")}
	w.insert(r, op)
	n := rapid.IntRange(-2, r.s.Len()+2).Draw(t, "n")
	i := rapid.IntRange(-2, r.s.Len()+2).Draw(t, "i")
	s1, e1 := r.s.Spans(i, n)
	s2, e2 := r.f.Spans(i, n)
	agree(t, "Spans", []any{s1, e1}, []any{s2, e2})
	t1, e1 := r.s.Slice(i, n)
	t2, e2 := r.f.Slice(i, n)
	agree(t, "Slice", []any{t1, e1}, []any{t2, e2})
	rid, rn := w.someID(t), rapid.IntRange(-1, 2).Draw(t, "rn")
	agree(t, "Remove", []any{r.s.Remove(rid, rn)}, []any{r.f.Remove(rid, rn)})
}

func TestFastMatchesSimple(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		caps := rapid.SampledFrom([][2]int{{4, 3}, {5, 4}, {leafCap, innerCap}}).Draw(t, "caps")
		w := &diffWorld{t: t}
		for k := range rapid.IntRange(1, 3).Draw(t, "replicas") {
			a := causal.ActorID{byte(rapid.IntRange(1, 3).Draw(t, "actor")), byte(k)}
			w.reps = append(w.reps, &diffReplica{actor: a, s: NewSimple(), f: newFast(caps[0], caps[1]), applied: map[int]bool{}})
		}
		t.Repeat(map[string]func(*rapid.T){
			"type":    w.typeLocal,
			"delete":  w.deleteLocal,
			"deliver": w.deliver,
			"toggle":  w.toggle,
			"remove":  w.remove,
			"bad":     w.bad,
			"": func(t *rapid.T) {
				for _, r := range w.reps {
					w.check(r)
				}
			},
		})
	})
}
