package crdt

import (
	"errors"
	"testing"

	"github.com/converge-sync/converge/causal"
)

func TestLocalEditsAndReads(t *testing.T) {
	d := NewDoc(actorN(1))
	var list, text, nested ObjID
	change(t, d, func(tx *Txn) error {
		if _, err := tx.Put(Root, "title", String("groceries")); err != nil {
			return err
		}
		var err error
		if list, err = tx.Put(Root, "items", NewList()); err != nil {
			return err
		}
		if _, err = tx.Insert(list, 0, String("milk")); err != nil {
			return err
		}
		if nested, err = tx.Insert(list, 1, NewMap()); err != nil {
			return err
		}
		if _, err = tx.Put(nested, "n", Counter(2)); err != nil {
			return err
		}
		if text, err = tx.Put(Root, "notes", NewText()); err != nil {
			return err
		}
		return tx.Splice(text, 0, 0, "héllo wörld")
	})
	change(t, d, func(tx *Txn) error {
		if err := tx.Splice(text, 6, 5, "there"); err != nil {
			return err
		}
		return tx.Increment(nested, "n", 3)
	})
	want := `{"items":["milk",{"n":5}],"notes":"héllo there","title":"groceries"}`
	if got := jsonOf(d); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	v, err := d.Lookup("/items/1/n")
	if err != nil || v.Int() != 5 || v.Kind() != KindCounter {
		t.Fatalf("lookup: %#v %v", v, err)
	}
	if _, err := d.Lookup("/items/2"); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("lookup past end: %v", err)
	}
	if _, err := d.Lookup("/nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup missing: %v", err)
	}
	if got := len(d.Changes()); got != 2 {
		t.Fatalf("%d changes", got)
	}
}

// abcDoc is a document of one change: a text "abc" at key t.
func abcDoc(t *testing.T) (*Doc, ObjID) {
	d := NewDoc(actorN(1))
	var text ObjID
	change(t, d, func(tx *Txn) error {
		var err error
		text, err = tx.Put(Root, "t", NewText())
		if err != nil {
			return err
		}
		return tx.Splice(text, 0, 0, "abc")
	})
	return d, text
}

func TestFailedTxnLeavesNoTrace(t *testing.T) {
	d, text := abcDoc(t)
	before := fingerprint(d)
	boom := errors.New("boom")
	_, _, err := d.Change(ChangeOptions{}, func(tx *Txn) error {
		if err := tx.Splice(text, 1, 1, "XYZ"); err != nil {
			return err
		}
		if _, err := tx.Put(Root, "k", NewList()); err != nil {
			return err
		}
		if got := tx.Doc().Text(text); got != "aXYZc" {
			t.Errorf("txn does not see its own writes: %q", got)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if after := fingerprint(d); after != before {
		t.Fatalf("rolled back state differs:\n%s\n%s", after, before)
	}
	// The next change reuses the counters the failed one had taken.
	c := change(t, d, func(tx *Txn) error { return tx.Splice(text, 0, 0, "!") })
	if c.StartOp != 5 || c.Seq != 2 {
		t.Fatalf("next change: seq %d start %d", c.Seq, c.StartOp)
	}
}

// A change its Check refuses is undone as one whose function failed, in
// Change and in Edit; the check sees the change as it would be recorded.
func TestCheckRefusesAChange(t *testing.T) {
	for _, edit := range []bool{false, true} {
		d, text := abcDoc(t)
		before := fingerprint(d)
		tooBig := errors.New("too big")
		var seen *Change
		opts := ChangeOptions{Check: func(c *Change) error {
			seen = c
			if len(c.Ops) != 2 || c.Seq != 2 || c.Ops[0].Action != ActDeleteText || c.Ops[1].Text != "XYZ" {
				t.Errorf("check saw %+v", c)
			}
			return tooBig
		}}
		fn := func(tx *Txn) error { return tx.Splice(text, 1, 1, "XYZ") }
		var err error
		if edit {
			_, _, err = d.Edit(opts, fn)
		} else {
			_, _, err = d.Change(opts, fn)
		}
		if !errors.Is(err, tooBig) || seen == nil {
			t.Fatalf("edit %v: err %v", edit, err)
		}
		if after := fingerprint(d); after != before {
			t.Fatalf("edit %v: refused change left a trace:\n%s\n%s", edit, after, before)
		}
		c := change(t, d, func(tx *Txn) error { return tx.Splice(text, 0, 0, "!") })
		if c.StartOp != 5 || c.Seq != 2 || d.Text(text) != "!abc" {
			t.Fatalf("edit %v: next change: seq %d start %d, text %q", edit, c.Seq, c.StartOp, d.Text(text))
		}
	}
}

func TestOutOfRangeAndWrongKind(t *testing.T) {
	d := NewDoc(actorN(1))
	_, _, err := d.Change(ChangeOptions{}, func(tx *Txn) error {
		l, _ := tx.Put(Root, "l", NewList())
		return tx.Splice(l, 0, 0, "x")
	})
	if !errors.Is(err, ErrWrongKind) {
		t.Fatalf("splice on list: %v", err)
	}
	_, _, err = d.Change(ChangeOptions{}, func(tx *Txn) error {
		l, _ := tx.Put(Root, "l", NewList())
		_, err := tx.Insert(l, 1, Int(1))
		return err
	})
	if !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("insert past end: %v", err)
	}
	if jsonOf(d) != "{}" {
		t.Fatalf("failed changes left %s", jsonOf(d))
	}
}

// ElemIndex tells where an element is, visible or not, by its ID.
func TestElemIndex(t *testing.T) {
	d := NewDoc(actorN(1))
	var txt, other ObjID
	c := change(t, d, func(tx *Txn) (err error) {
		if txt, err = tx.Put(Root, "t", NewText()); err != nil {
			return err
		}
		if other, err = tx.Put(Root, "u", NewText()); err != nil {
			return err
		}
		return tx.Splice(txt, 0, 0, "hello")
	})
	first := causal.OpID{Actor: c.Actor, Counter: c.StartOp + 2}          // the "h"
	change(t, d, func(tx *Txn) error { return tx.Splice(txt, 1, 2, "") }) // "hlo"
	for k, want := range []struct {
		index       int
		visible, ok bool
	}{{0, true, true}, {1, false, true}, {1, false, true}, {1, true, true}, {2, true, true}} {
		i, vis, ok := d.ElemIndex(txt, first.Add(uint64(k)))
		if i != want.index || vis != want.visible || ok != want.ok {
			t.Errorf("character %d of hello: %d %v %v, want %+v", k, i, vis, ok, want)
		}
	}
	if _, _, ok := d.ElemIndex(other, first); ok {
		t.Error("another text holds h")
	}
	if _, _, ok := d.ElemIndex(txt, first.Add(5)); ok {
		t.Error("an ID no character has was found")
	}
	if _, _, ok := d.ElemIndex(Root, first); ok {
		t.Error("the root map holds a character")
	}
	if _, _, ok := d.ElemIndex(txt, causal.OpID{}); ok {
		t.Error("the zero ID was found")
	}
}
