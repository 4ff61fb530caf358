package converge

import (
	"bytes"
	"slices"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/encoding"
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
