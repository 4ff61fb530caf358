package crdt

import (
	"errors"
	"strings"
	"testing"

	"github.com/converge-sync/converge/causal"
)

// Each test here proves one rule of docs/semantics.md; the rule's number is
// in the test's name.

// two returns two replicas that share a first change made by a.
func two(t *testing.T, setup func(tx *Txn) error) (*Doc, *Doc) {
	a, b := NewDoc(actorN(1)), NewDoc(actorN(2))
	if setup != nil {
		change(t, a, setup)
		merge(t, b, a)
	}
	return a, b
}

func TestRule1ConcurrentSetsAreAllKept(t *testing.T) {
	a, b := two(t, nil)
	change(t, a, func(tx *Txn) error { _, err := tx.Put(Root, "color", String("red")); return err })
	change(t, b, func(tx *Txn) error { _, err := tx.Put(Root, "color", String("blue")); return err })
	syncAll(t, a, b)
	mustEqualDocs(t, a, b)
	vals := a.Values(Root, "color")
	if len(vals) != 2 {
		t.Fatalf("want 2 values, got %d", len(vals))
	}
	// The shown value is the one with the highest op ID: equal counters, so
	// the higher actor, b.
	if v, _ := a.Get(Root, "color"); v.Str() != "blue" || vals[1].Op.Actor != actorN(2) {
		t.Fatalf("shown %q", v.Str())
	}
	if len(a.Conflicts()) != 1 || a.Conflicts()[0].Path.String() != "/color" {
		t.Fatalf("conflicts %+v", a.Conflicts())
	}
	// A later set that has seen both resolves the conflict everywhere.
	change(t, a, func(tx *Txn) error { _, err := tx.Put(Root, "color", String("green")); return err })
	syncAll(t, a, b)
	mustEqualDocs(t, a, b)
	if len(b.Values(Root, "color")) != 1 || len(b.Conflicts()) != 0 {
		t.Fatalf("not resolved: %+v", b.Conflicts())
	}
}

func TestRule2SetSurvivesConcurrentDelete(t *testing.T) {
	a, b := two(t, func(tx *Txn) error { _, err := tx.Put(Root, "k", Int(1)); return err })
	change(t, a, func(tx *Txn) error { return tx.Delete(Root, "k") })
	change(t, b, func(tx *Txn) error { _, err := tx.Put(Root, "k", Int(2)); return err })
	syncAll(t, a, b)
	mustEqualDocs(t, a, b)
	if jsonOf(a) != `{"k":2}` || len(a.Conflicts()) != 0 {
		t.Fatalf("got %s %+v", jsonOf(a), a.Conflicts())
	}
}

func TestRule3ConcurrentContainersAreAConflict(t *testing.T) {
	a, b := two(t, nil)
	change(t, a, func(tx *Txn) error {
		m, err := tx.Put(Root, "x", NewMap())
		if err != nil {
			return err
		}
		_, err = tx.Put(m, "from", String("a"))
		return err
	})
	change(t, b, func(tx *Txn) error {
		l, err := tx.Put(Root, "x", NewList())
		if err != nil {
			return err
		}
		_, err = tx.Insert(l, 0, String("b"))
		return err
	})
	syncAll(t, a, b)
	mustEqualDocs(t, a, b)
	vals := a.Values(Root, "x")
	if len(vals) != 2 || vals[0].Value.Kind() != KindMap || vals[1].Value.Kind() != KindList {
		t.Fatalf("values %+v", vals)
	}
	// Both containers keep their contents; the list (higher op ID) is shown.
	if got := string(a.ValueJSON(vals[0].Value)); got != `{"from":"a"}` {
		t.Fatalf("losing map holds %s", got)
	}
	if jsonOf(a) != `{"x":["b"]}` {
		t.Fatalf("shown %s", jsonOf(a))
	}
	// Resolving in favour of the map keeps the map and its contents.
	change(t, b, func(tx *Txn) error { return tx.Resolve(Root, "x", vals[0].Op) })
	syncAll(t, a, b)
	mustEqualDocs(t, a, b)
	if jsonOf(a) != `{"x":{"from":"a"}}` || len(a.Conflicts()) != 0 {
		t.Fatalf("after resolve %s", jsonOf(a))
	}
}

func TestRule4ConcurrentInsertsDoNotInterleave(t *testing.T) {
	a, b := two(t, func(tx *Txn) error {
		tx2, err := tx.Put(Root, "t", NewText())
		if err != nil {
			return err
		}
		return tx.Splice(tx2, 0, 0, "Hello!")
	})
	text, _ := a.Get(Root, "t")
	// Both type a word at the same place, one character per change, as an
	// editor would commit them.
	typeWord := func(d *Doc, word string) {
		for i, r := range word {
			change(t, d, func(tx *Txn) error { return tx.Splice(text.Obj(), 5+i, 0, string(r)) })
		}
	}
	typeWord(a, " alice")
	typeWord(b, " bob")
	syncAll(t, a, b)
	mustEqualDocs(t, a, b)
	got := a.Text(text.Obj())
	if got != "Hello alice bob!" && got != "Hello bob alice!" {
		t.Fatalf("interleaved: %q", got)
	}
	// And the same in a list, inserting backwards (each item before the last).
	a, b = two(t, func(tx *Txn) error { _, err := tx.Put(Root, "l", NewList()); return err })
	list, _ := a.Get(Root, "l")
	for _, d := range []*Doc{a, b} {
		for i := 0; i < 3; i++ {
			v := String(string(rune('a'+i)) + d.Actor().Short()[:2])
			change(t, d, func(tx *Txn) error { _, err := tx.Insert(list.Obj(), 0, v); return err })
		}
	}
	syncAll(t, a, b)
	mustEqualDocs(t, a, b)
	// Each replica's items must form one unbroken block.
	var owners strings.Builder
	for i := 0; i < a.Len(list.Obj()); i++ {
		v, _ := a.GetIndex(list.Obj(), i)
		owners.WriteString(v.Str()[1:])
	}
	if o := owners.String(); o != "010101020202" && o != "020202010101" {
		t.Fatalf("interleaved list: %s", jsonOf(a))
	}
}

func TestRule5DeletingADeletedElementIsANoOp(t *testing.T) {
	a, b := two(t, func(tx *Txn) error {
		txt, err := tx.Put(Root, "t", NewText())
		if err != nil {
			return err
		}
		if err := tx.Splice(txt, 0, 0, "abcdef"); err != nil {
			return err
		}
		l, err := tx.Put(Root, "l", NewList())
		if err != nil {
			return err
		}
		for i := 0; i < 3; i++ {
			if _, err := tx.Insert(l, i, Int(int64(i))); err != nil {
				return err
			}
		}
		return nil
	})
	txt, _ := a.Get(Root, "t")
	l, _ := a.Get(Root, "l")
	// Overlapping concurrent deletes.
	change(t, a, func(tx *Txn) error {
		if err := tx.Remove(l.Obj(), 1, 1); err != nil {
			return err
		}
		return tx.Splice(txt.Obj(), 1, 3, "")
	})
	change(t, b, func(tx *Txn) error {
		if err := tx.Remove(l.Obj(), 1, 2); err != nil {
			return err
		}
		return tx.Splice(txt.Obj(), 2, 3, "")
	})
	syncAll(t, a, b)
	mustEqualDocs(t, a, b)
	if got := jsonOf(a); got != `{"l":[0],"t":"af"}` {
		t.Fatalf("got %s", got)
	}
	// Applying the changes again changes nothing.
	p, err := a.Apply(b.Changes()...)
	if err != nil || len(p) != 0 {
		t.Fatalf("re-apply: %v patches, %v", len(p), err)
	}
}

func TestRule6CounterIncrementsAddUp(t *testing.T) {
	a, b := two(t, func(tx *Txn) error { _, err := tx.Put(Root, "likes", Counter(10)); return err })
	c := NewDoc(actorN(3))
	merge(t, c, a)
	for i, d := range []*Doc{a, b, c} {
		delta := int64(i + 1)
		change(t, d, func(tx *Txn) error { return tx.Increment(Root, "likes", delta) })
		change(t, d, func(tx *Txn) error { return tx.Increment(Root, "likes", -1) })
	}
	syncAll(t, a, b, c)
	mustEqualDocs(t, a, b, c)
	if jsonOf(a) != `{"likes":13}` {
		t.Fatalf("got %s", jsonOf(a))
	}
}

// Counters created concurrently at one key are rival values: the one shown
// counts only its own increments.
func TestRule6CountersCreatedConcurrentlyAreRivals(t *testing.T) {
	a, b := two(t, nil)
	for _, d := range []*Doc{a, b} {
		change(t, d, func(tx *Txn) error { _, err := tx.Put(Root, "n", Counter(1)); return err })
		change(t, d, func(tx *Txn) error { return tx.Increment(Root, "n", 5) })
	}
	syncAll(t, a, b)
	mustEqualDocs(t, a, b)
	if jsonOf(a) != `{"n":6}` {
		t.Fatalf("got %s, want one counter's 6, not the two added up", jsonOf(a))
	}
	if vals := a.Values(Root, "n"); len(vals) != 2 {
		t.Fatalf("%d values at n, want both counters", len(vals))
	}
}

func TestRule7ListSetSurvivesConcurrentRemove(t *testing.T) {
	a, b := two(t, func(tx *Txn) error {
		l, err := tx.Put(Root, "l", NewList())
		if err != nil {
			return err
		}
		_, err = tx.Insert(l, 0, String("draft"))
		return err
	})
	l, _ := a.Get(Root, "l")
	change(t, a, func(tx *Txn) error { return tx.Remove(l.Obj(), 0, 1) })
	change(t, b, func(tx *Txn) error { _, err := tx.Set(l.Obj(), 0, String("final")); return err })
	syncAll(t, a, b)
	mustEqualDocs(t, a, b)
	if jsonOf(a) != `{"l":["final"]}` {
		t.Fatalf("got %s", jsonOf(a))
	}
}

func TestRule8IncrementOfAReplacedCounterIsLost(t *testing.T) {
	a, b := two(t, func(tx *Txn) error { _, err := tx.Put(Root, "n", Counter(1)); return err })
	change(t, a, func(tx *Txn) error { _, err := tx.Put(Root, "n", String("reset")); return err })
	change(t, b, func(tx *Txn) error { return tx.Increment(Root, "n", 5) })
	syncAll(t, a, b)
	mustEqualDocs(t, a, b)
	if jsonOf(a) != `{"n":"reset"}` {
		t.Fatalf("got %s", jsonOf(a))
	}
}

func TestRule9EditsInsideAHiddenContainerAreKept(t *testing.T) {
	a, b := two(t, nil)
	var am ObjID
	change(t, a, func(tx *Txn) error { var err error; am, err = tx.Put(Root, "cfg", NewMap()); return err })
	change(t, b, func(tx *Txn) error { _, err := tx.Put(Root, "cfg", NewMap()); return err })
	syncAll(t, a, b)
	// a's map lost (lower actor); a keeps editing it, unaware.
	change(t, a, func(tx *Txn) error { _, err := tx.Put(am, "theme", String("dark")); return err })
	syncAll(t, a, b)
	mustEqualDocs(t, a, b)
	if jsonOf(b) != `{"cfg":{}}` {
		t.Fatalf("shown %s", jsonOf(b))
	}
	vals := b.Values(Root, "cfg")
	if string(b.ValueJSON(vals[0].Value)) != `{"theme":"dark"}` {
		t.Fatalf("hidden map lost its edit: %s", b.ValueJSON(vals[0].Value))
	}
}

func TestRule10OrderGroupingAndDuplicatesDoNotMatter(t *testing.T) {
	a, b := two(t, func(tx *Txn) error {
		txt, err := tx.Put(Root, "t", NewText())
		if err != nil {
			return err
		}
		return tx.Splice(txt, 0, 0, "base")
	})
	txt, _ := a.Get(Root, "t")
	for i := 0; i < 5; i++ {
		change(t, a, func(tx *Txn) error { return tx.Splice(txt.Obj(), 0, 0, "a") })
		change(t, b, func(tx *Txn) error { return tx.Splice(txt.Obj(), 3, 1, "b") })
	}
	syncAll(t, a, b)
	all := a.Changes()
	// Reverse order, one at a time, each twice.
	c := NewDoc(actorN(9))
	for i := len(all) - 1; i >= 0; i-- {
		if _, err := c.Apply(all[i], all[i]); err != nil {
			t.Fatal(err)
		}
	}
	mustEqualDocs(t, a, b, c)
}

func TestRule11ChangesWaitForTheirDependencies(t *testing.T) {
	a, b := two(t, nil)
	c1 := change(t, a, func(tx *Txn) error { _, err := tx.Put(Root, "x", Int(1)); return err })
	c2 := change(t, a, func(tx *Txn) error { _, err := tx.Put(Root, "x", Int(2)); return err })
	if _, err := b.Apply(c2); err != nil {
		t.Fatal(err)
	}
	if jsonOf(b) != "{}" || len(b.Pending()) != 1 || b.Missing()[0] != c1.ID() {
		t.Fatalf("held change applied early: %s pending %v missing %v", jsonOf(b), b.Pending(), b.Missing())
	}
	if _, err := b.Apply(c1); err != nil {
		t.Fatal(err)
	}
	if jsonOf(b) != `{"x":2}` || len(b.Pending()) != 0 {
		t.Fatalf("got %s", jsonOf(b))
	}
}

func TestRule12InvalidChangesAreRefusedWhole(t *testing.T) {
	a, _ := two(t, nil)
	good := change(t, a, func(tx *Txn) error {
		txt, err := tx.Put(Root, "t", NewText())
		if err != nil {
			return err
		}
		return tx.Splice(txt, 0, 0, "hi")
	})
	txt, _ := a.Get(Root, "t")
	other := actorN(7)
	base := func() *Change {
		return &Change{Actor: other, Seq: 1, StartOp: 10, Deps: []causal.ChangeID{good.ID()}}
	}
	cases := []struct {
		name string
		mut  func(c *Change)
		want error
	}{
		{"unknown container", func(c *Change) {
			c.Ops = []Op{{Action: ActPut, Obj: causal.OpID{Counter: 99, Actor: other}, Key: "k", Value: Int(1)}}
		}, ErrNotFound},
		{"op ID not after its dependencies", func(c *Change) {
			c.StartOp = 2
			c.Ops = []Op{{Action: ActPut, Obj: Root, Key: "k", Value: Int(1)}}
		}, ErrInvalidChange},
		{"names an element from its future", func(c *Change) {
			c.Ops = []Op{{Action: ActInsertText, Obj: txt.Obj(), Left: causal.OpID{Counter: 50, Actor: other}, Text: "x"}}
		}, ErrInvalidChange},
		{"unknown element", func(c *Change) {
			c.Ops = []Op{{Action: ActDeleteText, Obj: txt.Obj(), Elem: causal.OpID{Counter: 3, Actor: other}, Len: 1}}
		}, ErrNotFound},
		{"wrong kind", func(c *Change) {
			c.Ops = []Op{{Action: ActInsertText, Obj: Root, Text: "x"}}
		}, ErrWrongKind},
		{"bad value kind", func(c *Change) {
			c.Ops = []Op{{Action: ActPut, Obj: Root, Key: "k", Value: Value{kind: 42}}}
		}, ErrBadValue},
		{"invalid UTF-8", func(c *Change) {
			c.Ops = []Op{{Action: ActInsertText, Obj: txt.Obj(), Text: "\xff"}}
		}, ErrBadValue},
		{"zero actor", func(c *Change) { c.Actor = causal.ActorID{} }, ErrInvalidChange},
		{"unsorted deps", func(c *Change) {
			c.Deps = []causal.ChangeID{{Actor: actorN(3), Seq: 1}, {Actor: actorN(2), Seq: 1}}
		}, ErrInvalidChange},
		// A valid op followed by an invalid one: the valid one is undone too.
		{"half valid", func(c *Change) {
			c.Ops = []Op{
				{Action: ActPut, Obj: Root, Key: "k", Value: Int(1)},
				{Action: ActInsertText, Obj: txt.Obj(), Left: causal.OpID{Counter: 1, Actor: actorN(1)}, Text: "zz"},
				{Action: ActDeleteText, Obj: txt.Obj(), Elem: causal.OpID{Counter: 99, Actor: other}, Len: 1},
			}
		}, ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := a.Fork(actorN(5))
			before := fingerprint(d)
			c := base()
			tc.mut(c)
			p, err := d.Apply(c)
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalidChange) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var ce *ChangeError
			if !errors.As(err, &ce) || ce.Change != c.ID() {
				t.Fatalf("error does not name the change: %v", err)
			}
			if len(p) != 0 || fingerprint(d) != before || len(d.Pending()) != 0 {
				t.Fatalf("document changed by a refused change")
			}
		})
	}
}

func TestRule13CursorsFollowTheirElement(t *testing.T) {
	a, b := two(t, func(tx *Txn) error {
		txt, err := tx.Put(Root, "t", NewText())
		if err != nil {
			return err
		}
		return tx.Splice(txt, 0, 0, "hello world")
	})
	txt, _ := a.Get(Root, "t")
	cur, err := a.Cursor(txt.Obj(), 6) // before "world"
	if err != nil {
		t.Fatal(err)
	}
	end, _ := a.Cursor(txt.Obj(), 11)
	change(t, b, func(tx *Txn) error { return tx.Splice(txt.Obj(), 0, 5, "hi, you") })
	merge(t, a, b)
	if i, _ := a.CursorIndex(cur); i != 8 || a.Text(txt.Obj())[i:] != "world" {
		t.Fatalf("cursor at %d in %q", i, a.Text(txt.Obj()))
	}
	if i, _ := a.CursorIndex(end); i != a.Len(txt.Obj()) {
		t.Fatalf("end cursor at %d", i)
	}
	// Deleting the element leaves the cursor where it was.
	change(t, a, func(tx *Txn) error { return tx.Splice(txt.Obj(), 8, 1, "") })
	if i, _ := a.CursorIndex(cur); i != 8 {
		t.Fatalf("cursor after delete at %d", i)
	}
}

func TestRule14PatchesDescribeEveryVisibleEffect(t *testing.T) {
	a, b := two(t, func(tx *Txn) error {
		txt, err := tx.Put(Root, "t", NewText())
		if err != nil {
			return err
		}
		return tx.Splice(txt, 0, 0, "abc")
	})
	txt, _ := a.Get(Root, "t")
	change(t, a, func(tx *Txn) error { _, err := tx.Put(Root, "k", Int(1)); return err })
	change(t, b, func(tx *Txn) error {
		if _, err := tx.Put(Root, "k", Int(2)); err != nil {
			return err
		}
		return tx.Splice(txt.Obj(), 1, 1, "XY")
	})
	p := merge(t, a, b)
	got := ""
	for _, x := range p {
		got += x.Action.String() + " " + x.Path.String() + ";"
	}
	want := "put /k;conflict /k;remove /t;splice /t;"
	if got != want {
		t.Fatalf("patches %q, want %q", got, want)
	}
	if !p[0].Conflict || p[0].Value.Int() != 2 || p[3].Index != 1 || p[3].Text != "XY" {
		t.Fatalf("patch details %+v", p)
	}
	// Resolving says so.
	_, p, err := a.Change(ChangeOptions{}, func(tx *Txn) error { _, err := tx.Put(Root, "k", Int(3)); return err })
	if err != nil || len(p) != 2 || p[1].Action != PatchConflict || p[1].Conflict {
		t.Fatalf("resolve patches %+v %v", p, err)
	}
}

func TestRule15HistoryAndPastVersions(t *testing.T) {
	a, _ := two(t, nil)
	change(t, a, func(tx *Txn) error { _, err := tx.Put(Root, "v", Int(1)); return err })
	v1 := a.Version()
	change(t, a, func(tx *Txn) error { _, err := tx.Put(Root, "v", Int(2)); return err })
	past, err := a.At(v1)
	if err != nil {
		t.Fatal(err)
	}
	if jsonOf(past) != `{"v":1}` || jsonOf(a) != `{"v":2}` {
		t.Fatalf("past %s now %s", jsonOf(past), jsonOf(a))
	}
	if _, _, err := past.Change(ChangeOptions{}, func(*Txn) error { return nil }); !errors.Is(err, ErrTxnDone) {
		t.Fatalf("past version is writable: %v", err)
	}
}

// Forget drops held changes as if they had never arrived: what waited on
// them is not applied when their dependencies come, and they can be
// received again.
func TestForgetHeldChanges(t *testing.T) {
	a, b := two(t, nil)
	c1 := change(t, a, func(tx *Txn) error { _, err := tx.Put(Root, "x", Int(1)); return err })
	c2 := change(t, a, func(tx *Txn) error { _, err := tx.Put(Root, "x", Int(2)); return err })
	c3 := change(t, a, func(tx *Txn) error { _, err := tx.Put(Root, "x", Int(3)); return err })
	if _, err := b.Apply(c3, c2); err != nil {
		t.Fatal(err)
	}
	if !b.Held(c2.ID()) || !b.Held(c3.ID()) || b.Held(c1.ID()) {
		t.Fatalf("held: %v", b.Pending())
	}
	if n := b.Forget(c2.ID(), c1.ID()); n != 1 || b.Held(c2.ID()) || !b.Held(c3.ID()) {
		t.Fatalf("Forget dropped %d; held %v", n, b.Pending())
	}
	if _, err := b.Apply(c1); err != nil {
		t.Fatal(err)
	}
	// c3 waits for c2, which was forgotten: nothing past c1 applies.
	if jsonOf(b) != `{"x":1}` || len(b.Pending()) != 1 {
		t.Fatalf("after c1: %s, held %v", jsonOf(b), b.Pending())
	}
	if b.Forget(c3.ID()) != 1 || len(b.Pending()) != 0 || len(b.Missing()) != 0 {
		t.Fatalf("held %v, missing %v", b.Pending(), b.Missing())
	}
	if _, err := b.Apply(c2, c3); err != nil {
		t.Fatal(err)
	}
	if jsonOf(b) != `{"x":3}` {
		t.Fatalf("sent again: %s", jsonOf(b))
	}
	if b.Forget(c3.ID()) != 0 {
		t.Fatal("Forget dropped an applied change")
	}
}

// A change whose ops do not come after those of its actor's previous
// change is refused, as one that does not come after a dependency is.
func TestRule12OpsComeAfterTheActorsPreviousChange(t *testing.T) {
	x := NewDoc(actorN(9))
	c1 := change(t, x, func(tx *Txn) error { _, err := tx.Put(Root, "a", Int(1)); return err })
	c2 := change(t, x, func(tx *Txn) error { _, err := tx.Put(Root, "b", Int(2)); return err })
	forged := *c2
	forged.StartOp = c1.StartOp // its op would reuse c1's op ID
	y := NewDoc(actorN(3))
	if _, err := y.Apply(c1); err != nil {
		t.Fatal(err)
	}
	if _, err := y.Apply(&forged); !errors.Is(err, ErrInvalidChange) {
		t.Fatalf("a change starting at its predecessor's op: %v", err)
	}
	if _, err := y.Apply(c2); err != nil {
		t.Fatalf("the real change after the forged one: %v", err)
	}
	if v, _ := y.Get(Root, "b"); v.Int() != 2 {
		t.Fatalf("b = %v", v)
	}
}
