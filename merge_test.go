package converge

import (
	"slices"
	"testing"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
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
			var fed []*crdt.Change
			stop, _ := d.follow(func(cs []*crdt.Change, _ time.Time) { fed = append(fed, cs...) })
			defer stop()
			for _, batch := range tc.batches {
				if err := d.Merge(ctx, batch...); err != nil {
					t.Fatal(err)
				}
			}
			// Fed once each, in an order that applies.
			check := crdt.NewDoc(causal.ActorID{})
			for _, c := range fed {
				if _, err := check.Apply(c); err != nil {
					t.Fatal(err)
				}
				if len(check.Pending()) > 0 {
					t.Fatalf("change %v fed before its dependencies", c.ID())
				}
			}
			if len(fed) != len(all) {
				t.Fatalf("fed %d changes, want %d", len(fed), len(all))
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
