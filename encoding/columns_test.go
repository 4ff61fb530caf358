package encoding

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// randomColumns fills a set with columns a history could hold: runs of
// small integers, repetitive stretches, text, some too short to compress.
func randomColumns(r *rand.Rand) (raw [numCols][]byte) {
	for i := range numCols {
		n := r.IntN(3000)
		if r.IntN(4) == 0 {
			n = r.IntN(minCompressColumn)
		}
		col := make([]byte, n)
		switch r.IntN(3) {
		case 0:
			for j := range col {
				col[j] = byte(r.IntN(8))
			}
		case 1:
			pat := []byte{byte(r.IntN(256)), byte(r.IntN(256)), 3, 1, 4}
			for j := range col {
				col[j] = pat[j%len(pat)]
			}
		default:
			for j := range col {
				col[j] = "the quick brown fox "[r.IntN(20)]
			}
		}
		raw[i] = col
	}
	return raw
}

// However the tasks are split between goroutines, the encoded columns are
// the same, and each reads back as it was.
func TestColumnSetEncodesTheSameWhoeverCompresses(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		raw := randomColumns(rand.New(rand.NewPCG(seed, 3)))
		fill := func() *columnSet {
			s := new(columnSet)
			for i := range numCols {
				s.add(i, raw[i], true)
			}
			return s
		}
		one := fill()
		one.run(new(kit), taskHuffman)
		var want [numCols][]byte
		one.encode(&want)

		two := fill()
		var wg sync.WaitGroup
		for _, first := range []int{taskZstd, taskHuffman} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				two.run(new(kit), first)
			}()
		}
		wg.Wait()
		var got [numCols][]byte
		two.encode(&got)

		for i := range numCols {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("seed %d column %d: two goroutines wrote %d bytes, one %d", seed, i, len(got[i]), len(want[i]))
			}
			r := reader{b: want[i]}
			n, err := r.uvarint()
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				if len(raw[i]) != 0 {
					t.Fatalf("seed %d column %d: %d bytes written as empty", seed, i, len(raw[i]))
				}
				continue
			}
			flags, _ := r.byte()
			rawLen := uint64(n)
			if flags != 0 {
				rawLen, _ = r.uvarint()
			}
			stored, err := r.bytes(n)
			if err != nil {
				t.Fatal(err)
			}
			back, err := decompress(stored, flags, int(rawLen), "history", "test")
			if err != nil {
				t.Fatalf("seed %d column %d: %v", seed, i, err)
			}
			if !bytes.Equal(back, raw[i]) {
				t.Fatalf("seed %d column %d: reads back different", seed, i)
			}
			if len(raw[i]) < minCompressColumn && flags != 0 {
				t.Fatalf("seed %d column %d: a %d-byte column was compressed", seed, i, len(raw[i]))
			}
		}
	}
}

// A kit's scratch memory, left as a larger save left it, does not change
// what a later save writes.
func TestReusedKitSavesTheSameBytes(t *testing.T) {
	big := typedDoc(t, 1, 3000)
	for seed := uint64(2); seed < 8; seed++ {
		d := typedDoc(t, seed, 300)
		fresh := derivedWith(t, d, new(kit))
		k := new(kit)
		derivedWith(t, big, k)
		if got := derivedWith(t, d, k); !bytes.Equal(got, fresh) {
			t.Fatalf("seed %d: a reused kit derived other deltas", seed)
		}
	}
}

// derivedWith writes d's history in text mode 1 with its places, as
// SaveDoc does, using k, and returns the delta column.
func derivedWith(t *testing.T, d *crdt.Doc, k *kit) []byte {
	t.Helper()
	st := StateOf(d)
	set := newActorSet()
	set.addChanges(d.Changes())
	tab := set.table()
	w := writeHistory(tab, d.Changes())
	w.text.settle()
	dict := stateDict(st)
	if !w.derivable(dict) {
		t.Fatal("mode 1 cannot express the text")
	}
	text, ok := w.derivedText(dict, placesOf(d, st, tab), k)
	if !ok {
		t.Fatal("derive failed")
	}
	return append([]byte(nil), text.seg...)
}

// typedDoc is a text typed, deleted from and typed into again at random
// places by two replicas, in steps changes.
func typedDoc(t *testing.T, seed uint64, steps int) *crdt.Doc {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 5))
	a := crdt.NewDoc(causal.ActorID{0xa}, crdt.WithHistory(NewHistory()))
	var text crdt.ObjID
	if _, _, err := a.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) (err error) {
		text, err = tx.Put(crdt.Root, "t", crdt.NewText())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	b := crdt.NewDoc(causal.ActorID{0xb}, crdt.WithHistory(NewHistory()))
	pieces := []string{"x", "yz", "hello ", "ü", "€ and ", "日本語"}
	for i := 0; i < steps; i++ {
		d := a
		if r.IntN(3) == 0 {
			d = b
			if _, err := b.Apply(a.ChangesSince(b.Version())...); err != nil {
				t.Fatal(err)
			}
		}
		n := d.Len(text)
		pos := r.IntN(n + 1)
		del := 0
		if pos < n && r.IntN(3) == 0 {
			del = 1 + r.IntN(min(3, n-pos))
		}
		ins := pieces[r.IntN(len(pieces))]
		if _, _, err := d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error { return tx.Splice(text, pos, del, ins) }); err != nil {
			t.Fatal(err)
		}
		if d == b {
			if _, err := a.Apply(b.ChangesSince(a.Version())...); err != nil {
				t.Fatal(err)
			}
		}
	}
	return a
}

// Saves running at once, each on two goroutines, each take their own kits:
// every one writes what it writes alone.
func TestConcurrentSavesTakeTheirOwnKits(t *testing.T) {
	var docs []*crdt.Doc
	var want [][]byte
	for seed := uint64(0); seed < 3; seed++ {
		d := typedDoc(t, seed, 200)
		v, _ := d.Get(crdt.Root, "t")
		big := strings.Repeat(fmt.Sprintf("seed %d types a long stretch into its text; ", seed), 1700)
		if _, _, err := d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error { return tx.Splice(v.Obj(), 0, 0, big) }); err != nil {
			t.Fatal(err)
		}
		h := d.History().(*History)
		h.Flush()
		if !goesParallel(h.whole, Options{Compress: true}) {
			t.Fatal("the document is too small to be saved on two goroutines")
		}
		b, err := SaveDoc(d, Options{Compress: true})
		if err != nil {
			t.Fatal(err)
		}
		docs, want = append(docs, d), append(want, b)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(docs))
	for i, d := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				b, err := SaveDoc(d, Options{Compress: true})
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(b, want[i]) {
					errs <- fmt.Errorf("document %d saved other bytes alongside other saves", i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// A save whose state worker has not started by the time the text is
// placed (the other core busy) does the state itself and writes the same
// bytes; the worker, starting late, finds its job taken and ends.
func TestSaveWithoutItsWorker(t *testing.T) {
	d := typedDoc(t, 9, 100)
	v, _ := d.Get(crdt.Root, "t")
	big := strings.Repeat("a worker that never starts leaves its job to the save; ", 1500)
	if _, _, err := d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error { return tx.Splice(v.Obj(), 3, 0, big) }); err != nil {
		t.Fatal(err)
	}
	opt := Options{Compress: true}
	h := d.History().(*History)
	h.Flush()
	if !goesParallel(h.whole, opt) {
		t.Fatal("the document is too small to be saved on two goroutines")
	}
	want, err := SaveDoc(d, opt)
	if err != nil {
		t.Fatal(err)
	}
	tab, renumber := h.savedActors()
	sw := newStateWorker(h.whole) // not started
	sw.give(h.whole.columns(renumber, true))
	st := StateOf(d)
	got, ok, err := h.save(st, placesOf(d, st, h.actors), saving{tab, renumber, sw}, opt)
	if err != nil || !ok {
		t.Fatalf("save: %v %v", ok, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("saved %d bytes without the worker, %d with it", len(got), len(want))
	}
	ended := make(chan struct{})
	go func() { sw.run(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("a worker starting after the save did not end")
	}
}
