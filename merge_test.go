package converge

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/encoding"
	"github.com/converge-sync/converge/internal/prototest"
	"github.com/converge-sync/converge/store"
	"github.com/converge-sync/converge/store/memory"
)

// Merge stores and feeds exactly the changes that were new, whatever the
// order, grouping and repetition they arrive in.
func TestMergeStoresAndFeedsWhatIsNew(t *testing.T) {
	// Two authors: b's changes depend on a's.
	a := crdt.NewDoc(causal.NewActorID())
	var all []*crdt.Change
	for i := range 4 {
		c, _, err := a.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
			_, err := tx.Put(crdt.Root, "a", crdt.Int(int64(i)))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, c)
	}
	b := a.Fork(causal.NewActorID())
	for i := range 3 {
		c, _, err := b.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
			_, err := tx.Put(crdt.Root, "b", crdt.Int(int64(i)))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, c)
	}
	rev := slices.Clone(all)
	slices.Reverse(rev)
	for _, tc := range []struct {
		name    string
		batches [][]*crdt.Change
	}{
		{"in order", [][]*crdt.Change{all}},
		{"one by one", [][]*crdt.Change{all[:1], all[1:2], all[2:3], all[3:4], all[4:5], all[5:6], all[6:]}},
		{"reversed", [][]*crdt.Change{rev}},
		{"duplicates", [][]*crdt.Change{all[:3], all[1:5], append(slices.Clone(all), all...)}},
		{"dependents first", [][]*crdt.Change{all[4:], all[:2], all[2:4]}},
		{"dependents first in one call", [][]*crdt.Change{append(slices.Clone(all[5:]), all[:5]...)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := memory.New()
			r := openT(t, "", WithStore(st))
			d := docT(t, r, "doc")
			var got []*crdt.Change
			var relayed []*crdt.Change
			stop, _ := d.follow(func(b *fed) {
				// The batch and its Relay must agree, change for change.
				for _, enc := range b.Relay().Changes {
					c, err := encoding.DecodeChange(enc)
					if err != nil {
						t.Fatal(err)
					}
					relayed = append(relayed, c)
				}
				got = append(got, b.changes...)
			})
			defer stop()
			for _, batch := range tc.batches {
				if err := d.Merge(ctx, batch...); err != nil {
					t.Fatal(err)
				}
			}
			// Fed once each, in an order that applies.
			check := crdt.NewDoc(causal.ActorID{})
			for _, c := range got {
				if _, err := check.Apply(c); err != nil {
					t.Fatal(err)
				}
				if len(check.Pending()) > 0 {
					t.Fatalf("change %v fed before its dependencies", c.ID())
				}
			}
			if len(got) != len(all) {
				t.Fatalf("fed %d changes, want %d", len(got), len(all))
			}
			for i := range got {
				if !bytes.Equal(encoding.EncodeChange(relayed[i]), encoding.EncodeChange(got[i])) {
					t.Fatalf("relayed change %d is %v, fed %v", i, relayed[i].ID(), got[i].ID())
				}
			}
			// Stored: a replica on the same store loads them all.
			r2 := openT(t, "", WithStore(st))
			if got, want := jsonT(t, docT(t, r2, "doc")), jsonT(t, d); got != want {
				t.Fatalf("loaded %s, merged %s", got, want)
			}
			if v := docT(t, r2, "doc").Version(); v.Total() != uint64(len(all)) {
				t.Fatalf("the store holds %v", v)
			}
		})
	}
}

// countingStore counts Append calls.
type countingStore struct {
	store.Store
	appends atomic.Int64
}

func (s *countingStore) Append(ctx context.Context, doc string, changes []store.Change) error {
	s.appends.Add(1)
	return s.Store.Append(ctx, doc, changes)
}

// Merges that wait for a document's lock are stored together, in one
// write, by the one that gets it; each gets its own outcome.
func TestMergesWaitingAreStoredTogether(t *testing.T) {
	st := &countingStore{Store: memory.New()}
	r := openT(t, "", WithStore(st))
	d := docT(t, r, "doc")
	const n = 5
	var cs []*crdt.Change
	for range n {
		cs = append(cs, prototest.Chain(t, 1)...) // n authors, one change each
	}
	bogus := &crdt.Change{Actor: causal.NewActorID(), Seq: 1, StartOp: 1, Ops: []crdt.Op{{
		Action: crdt.ActPut, Obj: crdt.ObjID{Counter: 99, Actor: causal.NewActorID()}, Key: "x", Value: crdt.Int(1)}}}
	before := st.appends.Load()
	d.mu.Lock() // as a write in progress would
	errs := make([]error, n+1)
	results := make([]mergeResult, n+1)
	var wg sync.WaitGroup
	for i := range n + 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := bogus
			if i < n {
				c = cs[i]
			}
			results[i], errs[i] = d.mergeFrom(ctx, "", []*crdt.Change{c})
		}()
	}
	for {
		d.inMu.Lock()
		waiting := len(d.incoming)
		d.inMu.Unlock()
		if waiting == n+1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	d.mu.Unlock()
	wg.Wait()
	if got := st.appends.Load() - before; got != 1 {
		t.Fatalf("%d store writes for %d merges waiting together, want 1", got, n+1)
	}
	for i := range n {
		if errs[i] != nil || results[i].fresh != 1 || results[i].version.Get(cs[i].Actor) != 1 {
			t.Fatalf("merge %d: %v, %+v", i, errs[i], results[i])
		}
	}
	if !errors.Is(errs[n], crdt.ErrInvalidChange) {
		t.Fatalf("the invalid change's merge: %v, want ErrInvalidChange", errs[n])
	}
	if v := d.Version(); v.Total() != n {
		t.Fatalf("version %v after %d valid merges", v, n)
	}
}
