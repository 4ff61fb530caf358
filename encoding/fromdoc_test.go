package encoding

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// edit makes a small document on two replicas, merged, with every kind of
// value.
func twoReplicas(t *testing.T) (*crdt.Doc, *crdt.Doc) {
	t.Helper()
	a := crdt.NewDoc(causal.ActorID{0xa})
	b := crdt.NewDoc(causal.ActorID{0xb})
	var text, list crdt.ObjID
	_, _, err := a.Change(crdt.ChangeOptions{Time: 1000, Message: "start"}, func(tx *crdt.Txn) error {
		var err error
		if text, err = tx.Put(crdt.Root, "text", crdt.NewText()); err != nil {
			return err
		}
		if err := tx.Splice(text, 0, 0, "hello world"); err != nil {
			return err
		}
		if list, err = tx.Put(crdt.Root, "list", crdt.NewList()); err != nil {
			return err
		}
		for i, v := range []crdt.Value{crdt.Int(1), crdt.String("two"), crdt.Float(3.5), crdt.Bool(true), crdt.Null()} {
			if _, err := tx.Insert(list, i, v); err != nil {
				return err
			}
		}
		if _, err := tx.Put(crdt.Root, "n", crdt.Counter(5)); err != nil {
			return err
		}
		m, err := tx.Put(crdt.Root, "nested", crdt.NewMap())
		if err != nil {
			return err
		}
		_, err = tx.Put(m, "bytes", crdt.Bytes([]byte{1, 2, 3}))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Apply(a.Changes()...); err != nil {
		t.Fatal(err)
	}
	change := func(d *crdt.Doc, fn func(*crdt.Txn) error) {
		if _, _, err := d.Change(crdt.ChangeOptions{Time: 2000}, fn); err != nil {
			t.Fatal(err)
		}
	}
	change(a, func(tx *crdt.Txn) error { return tx.Splice(text, 5, 6, ", there") })
	change(b, func(tx *crdt.Txn) error { return tx.Splice(text, 0, 0, "Oh, ") })
	change(b, func(tx *crdt.Txn) error { return tx.Increment(crdt.Root, "n", 3) })
	change(a, func(tx *crdt.Txn) error { return tx.Remove(list, 1, 1) })
	change(b, func(tx *crdt.Txn) error { _, err := tx.Put(crdt.Root, "who", crdt.String("b")); return err })
	change(a, func(tx *crdt.Txn) error { _, err := tx.Put(crdt.Root, "who", crdt.String("a")); return err })
	if _, err := a.Apply(b.Changes()...); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Apply(a.Changes()...); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestSaveLoadDoc(t *testing.T) {
	a, b := twoReplicas(t)
	if !bytes.Equal(a.JSON(), b.JSON()) {
		t.Fatal("replicas did not converge; the test setup is wrong")
	}
	for _, opt := range []Options{{}, {Compress: true}} {
		sa := savesAlike(t, opt, a, b)
		loadsAs(t, sa, a)
		d, _ := DecodeDocument(sa)
		if !reflect.DeepEqual(d.State(), StateOf(a)) {
			t.Fatal("saved state differs from the document's")
		}
		if txt, _ := d.State().Root.Get("text"); txt.Text != a.Text(txt.Obj) {
			t.Fatalf("state text %q", txt.Text)
		}
	}
}

// Compact computes the state by replaying when appended changes made the
// saved one stale.
func TestCompactReplaysStaleState(t *testing.T) {
	a, _ := twoReplicas(t)
	all := a.Changes()
	early := crdt.NewDoc(causal.ActorID{})
	if _, err := early.Apply(all[:1]...); err != nil {
		t.Fatal(err)
	}
	saved, err := SaveDoc(early, Options{})
	if err != nil {
		t.Fatal(err)
	}
	saved, err = AppendChanges(saved, all[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	compact, err := Compact(saved, nil, Options{Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := SaveDoc(a, Options{Compress: true})
	if !bytes.Equal(compact, want) {
		t.Fatal("compacted document differs from saving the merged document")
	}
}

// SaveDocLater reads the document at once and encodes later: the bytes are
// those of the document when it was read, however it changes meanwhile
// (run with -race, the encoding and the edits overlap), and SaveDoc's for a
// history in canonical order, EncodeDocument's for one that is not.
func TestSaveDocLaterReadsNowEncodesLater(t *testing.T) {
	opt := Options{Compress: true}
	for seed := uint64(0); seed < 4; seed++ {
		d := editedReplicas(t, seed)
		if h := d.History().(*History); h.canonical() {
			t.Fatalf("seed %d: the merged history is in canonical order; the test needs one that is not", seed)
		}
		want, err := EncodeDocument(StateOf(d), d.Changes(), opt)
		if err != nil {
			t.Fatal(err)
		}
		save := SaveDocLater(d, opt)
		got := make(chan []byte)
		go func() {
			b, err := save()
			if err != nil {
				t.Error(err)
			}
			got <- b
		}()
		v, _ := d.Get(crdt.Root, "a")
		for i := 0; i < 50; i++ {
			if _, _, err := d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error { return tx.Splice(v.Obj(), 0, 0, "later ") }); err != nil {
				t.Fatal(err)
			}
		}
		if b := <-got; !bytes.Equal(b, want) {
			t.Fatalf("seed %d: saved %d bytes, the document as read encodes to %d", seed, len(b), len(want))
		}
	}

	typed := typedDoc(t, 1, 300)
	if h := typed.History().(*History); !h.canonical() {
		t.Fatal("a replica that merged the other's changes in order lost its canonical history")
	}
	want, err := SaveDoc(typed, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := SaveDocLater(typed, opt)()
	if err != nil || !bytes.Equal(b, want) {
		t.Fatalf("canonical history: %d bytes, %v; SaveDoc gives %d", len(b), err, len(want))
	}
}
