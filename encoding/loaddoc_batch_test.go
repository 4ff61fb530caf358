package encoding

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// editedText makes two replicas type, delete and retype in one text, merging
// now and then, until they hold n changes between them: long enough that
// LoadDoc replays it in several batches.
func editedText(t *testing.T, n int, seed uint64) *crdt.Doc {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 3))
	a := crdt.NewDoc(causal.ActorID{1}, crdt.WithHistory(NewHistory()))
	b := crdt.NewDoc(causal.ActorID{2}, crdt.WithHistory(NewHistory()))
	a.SetPatches(false)
	b.SetPatches(false)
	var text crdt.ObjID
	if _, _, err := a.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
		var err error
		text, err = tx.Put(crdt.Root, "text", crdt.NewText())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	docs := []*crdt.Doc{a, b}
	for i := 0; i < n; i++ {
		d := docs[r.IntN(2)]
		if r.IntN(50) == 0 {
			other := docs[0]
			if other == d {
				other = docs[1]
			}
			if _, err := d.Apply(other.ChangesSince(d.Version())...); err != nil {
				t.Fatal(err)
			}
		}
		if _, ok := d.Get(crdt.Root, "text"); !ok {
			continue // b has not seen the text yet
		}
		l := d.Len(text)
		if _, _, err := d.Change(crdt.ChangeOptions{Time: int64(i)}, func(tx *crdt.Txn) error {
			switch {
			case l > 0 && r.IntN(4) == 0:
				pos := r.IntN(l)
				return tx.Splice(text, pos, min(1+r.IntN(3), l-pos), "")
			case r.IntN(20) == 0:
				return tx.Splice(text, r.IntN(l+1), 0, "é€x")
			default:
				return tx.Splice(text, r.IntN(l+1), 0, string(rune('a'+r.IntN(26))))
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Apply(b.ChangesSince(a.Version())...); err != nil {
		t.Fatal(err)
	}
	return a
}

// sameHistory fails unless both documents hold the same changes, byte for
// byte, in the same order.
func sameHistory(t *testing.T, got, want []*crdt.Change) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d changes, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(EncodeChange(got[i]), EncodeChange(want[i])) {
			t.Fatalf("change %d differs: %v, want %v", i, got[i].ID(), want[i].ID())
		}
	}
}

// LoadDoc replays a long history in batches, reading a text mode 1
// section twice (a shorter one once); the document it opens is the saved
// one: same text, same history, same bytes when saved again, and it edits
// on.
func TestLoadDocInBatches(t *testing.T) {
	d := editedText(t, 3*loadBatch+100, 1)
	defer func(n int) { onePassChanges = n }(onePassChanges)
	for _, c := range []struct {
		opt     Options
		onePass int
	}{{Options{}, 0}, {Options{Compress: true}, 0}, {Options{Compress: true}, 1 << 20}} {
		opt := c.opt
		onePassChanges = c.onePass
		saved, err := SaveDoc(d, opt)
		if err != nil {
			t.Fatal(err)
		}
		if m := historyMode(t, saved); m != textDerived {
			t.Fatalf("text mode %d: the test means to load derived text", m)
		}
		loaded := loadsAs(t, saved, d)
		_, want := decodedChanges(t, saved)
		sameHistory(t, loaded.Changes(), want)
		again, err := SaveDoc(loaded, opt)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, saved) {
			t.Fatal("the loaded document saves different bytes")
		}
		if _, _, err := loaded.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
			txt, _ := loaded.Get(crdt.Root, "text")
			return tx.Splice(txt.Obj(), 0, 0, "!")
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// A document of several chunks, some changes saved twice, loads in batches
// too, each change once.
func TestLoadDocChunksInBatches(t *testing.T) {
	defer func(n int) { onePassChanges = n }(onePassChanges)
	onePassChanges = 0
	d := editedText(t, 2*loadBatch, 2)
	all := d.Changes()
	early := crdt.NewDoc(causal.ActorID{})
	if _, err := early.Apply(all[:loadBatch+10]...); err != nil {
		t.Fatal(err)
	}
	saved, err := SaveDoc(early, Options{Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	if saved, err = AppendChanges(saved, all[loadBatch:]...); err != nil {
		t.Fatal(err)
	}
	loaded := loadsAs(t, saved, d)
	if loaded.Version().Compare(d.Version()) != causal.Equal {
		t.Fatalf("version %v, want %v", loaded.Version(), d.Version())
	}
}

// A damaged history section (past its checksum, which LoadDoc trusts)
// makes the batched, two-pass load fail with an error, never panic: a
// typed format error, or the document model refusing a change.
func TestLoadHistoryDamaged(t *testing.T) {
	defer func(n int) { onePassChanges = n }(onePassChanges)
	onePassChanges = 0
	d := editedText(t, loadBatch+500, 3)
	saved, err := SaveDoc(d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := DecodeDocument(saved)
	if err != nil {
		t.Fatal(err)
	}
	ch := dec.chunks[0]
	body, err := ch.history.open()
	if err != nil {
		t.Fatal(err)
	}
	for _, placed := range []bool{false, true} {
		load := func(b []byte) error {
			var order *textOrder
			if placed {
				order = newTextOrder()
			}
			err := loadHistory(crdt.NewDoc(causal.ActorID{0xc}), b, ch.actors, stateDict(ch.state), ch.tail, ch.version, order)
			if placed && err == errNotPlaced {
				// LoadDoc replays the history instead.
				err = loadHistory(crdt.NewDoc(causal.ActorID{0xc}), b, ch.actors, stateDict(ch.state), ch.tail, ch.version, nil)
			}
			return err
		}
		damageHistory(t, body, load)
	}
}

func damageHistory(t *testing.T, body []byte, load func([]byte) error) {
	if err := load(body); err != nil {
		t.Fatalf("undamaged: %v", err)
	}
	r := rand.New(rand.NewPCG(4, 4))
	for i := 0; i < 200; i++ {
		b := bytes.Clone(body)
		for k := 1 + r.IntN(3); k > 0; k-- {
			b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
		}
		err := load(b)
		var fe *FormatError
		if err != nil && !errors.As(err, &fe) && !errors.Is(err, crdt.ErrInvalidChange) {
			t.Fatalf("damage %d: untyped error %v", i, err)
		}
	}
	if err := load(body[:len(body)/2]); err == nil {
		t.Fatal("half a history section loaded")
	}
}

// A change held for a missing dependency keeps its own memory: the batches
// after it are not cut from the memory it was decoded in. It applies as it
// was saved once the dependency arrives.
func TestLoadDocKeepsHeldChangesWhole(t *testing.T) {
	defer func(n int) { onePassChanges = n }(onePassChanges)
	onePassChanges = 0
	x := crdt.NewDoc(causal.ActorID{9})
	put := func(d *crdt.Doc, k string, v int64) *crdt.Change {
		t.Helper()
		c, _, err := d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error { _, err := tx.Put(crdt.Root, k, crdt.Int(v)); return err })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first, held := put(x, "a", 1), put(x, "b", 2) // held depends on first, which is not saved
	d := editedText(t, 3*loadBatch, 4)
	all := d.Changes()
	early := crdt.NewDoc(causal.ActorID{})
	if _, err := early.Apply(all[:10]...); err != nil {
		t.Fatal(err)
	}
	saved, err := SaveDoc(early, Options{Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	// The held change comes first in its chunk, more than two batches
	// before the chunk's end.
	if saved, err = AppendChanges(saved, append([]*crdt.Change{held}, all[10:]...)...); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadDoc(saved, causal.ActorID{7})
	if err != nil {
		t.Fatal(err)
	}
	if p := loaded.Pending(); len(p) != 1 || p[0] != held.ID() {
		t.Fatalf("pending %v, want %v", p, held.ID())
	}
	if _, err := loaded.Apply(first); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]int64{"a": 1, "b": 2} {
		if v, ok := loaded.Get(crdt.Root, k); !ok || v.Int() != want {
			t.Fatalf("%s = %v (%v), want %d", k, v, ok, want)
		}
	}
}
