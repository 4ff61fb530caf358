package crdt_test

import (
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/encoding"
	"pgregory.net/rapid"
)

// Edit records the same changes as Change, whichever history the document
// keeps: with encoding's History it builds them in reused memory, and no
// change recorded earlier may be touched by the next one; with a
// SliceHistory, which keeps the changes themselves, it must not reuse
// anything. A second actor's changes arrive now and then, so that changes
// carry dependencies too.
func TestPropertyEditRecordsWhatChangeDoes(t *testing.T) {
	crdt.LimitChecks(t, 300)
	rapid.Check(t, func(t *rapid.T) {
		me, other := crdt.ActorN(1), crdt.ActorN(2)
		byChange := crdt.NewDoc(me)
		byEditEnc := crdt.NewDoc(me, crdt.WithHistory(encoding.NewHistory()))
		byEditSlc := crdt.NewDoc(me)
		remote := crdt.NewDoc(other)
		docs := []*crdt.Doc{byChange, byEditEnc, byEditSlc}

		setup, _, err := remote.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
			_, err := tx.Put(crdt.Root, "t", crdt.NewText())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		text := causal.OpID{Counter: setup.StartOp, Actor: other}
		for _, d := range docs {
			if _, err := d.Apply(setup); err != nil {
				t.Fatal(err)
			}
		}

		steps := rapid.IntRange(1, 60).Draw(t, "steps")
		for s := 0; s < steps; s++ {
			if rapid.IntRange(0, 5).Draw(t, "remote") == 0 {
				before := byChange.Version()
				n := remote.Len(text)
				pos := rapid.IntRange(0, n).Draw(t, "rpos")
				if _, _, err := remote.Change(crdt.ChangeOptions{Time: int64(s)}, func(tx *crdt.Txn) error {
					return tx.Splice(text, pos, 0, "r")
				}); err != nil {
					t.Fatal(err)
				}
				for _, d := range docs {
					if _, err := d.Apply(remote.ChangesSince(before)...); err != nil {
						t.Fatal(err)
					}
				}
				continue
			}
			n := byChange.Len(text)
			pos := rapid.IntRange(0, n).Draw(t, "pos")
			del := rapid.IntRange(0, min(n-pos, 3)).Draw(t, "del")
			ins := rapid.StringOfN(rapid.RuneFrom([]rune("abé")), 0, 3, -1).Draw(t, "ins")
			key := rapid.SampledFrom([]string{"", "a", "b"}).Draw(t, "key")
			msg := rapid.SampledFrom([]string{"", "m"}).Draw(t, "msg")
			fn := func(tx *crdt.Txn) error {
				if key != "" {
					if _, err := tx.Put(crdt.Root, key, crdt.Int(int64(s))); err != nil {
						return err
					}
				}
				return tx.Splice(text, pos, del, ins)
			}
			opts := crdt.ChangeOptions{Time: int64(s), Message: msg}
			c, _, err := byChange.Change(opts, fn)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range docs[1:] {
				seq, _, err := d.Edit(opts, fn)
				if err != nil {
					t.Fatal(err)
				}
				if (c == nil) != (seq == 0) || c != nil && seq != c.Seq {
					t.Fatalf("Edit made change %d, Change %v", seq, c)
				}
			}
			for _, d := range docs[1:] {
				if a, b := crdt.Fingerprint(d), crdt.Fingerprint(byChange); a != b {
					t.Fatalf("documents differ:\n%s\n%s", a, b)
				}
				sameChanges(t, "Edit's history", d.Changes(), byChange.Changes())
			}
		}
		a, err := encoding.SaveDoc(byEditEnc, encoding.Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := encoding.SaveDoc(byChange, encoding.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if string(a) != string(b) {
			t.Fatalf("saved documents differ")
		}
	})
}
