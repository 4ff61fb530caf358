package encoding

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// A document whose History can save its columns as they are (one writer
// after a setup change by an actor that sorts after it, so the actors are
// renumbered) saves exactly the bytes the full encoder writes from its
// decoded changes and the same document (see encodeDocument).
func TestHistorySaveMatchesEncodeDocument(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 3))
		h := NewHistory()
		setup := crdt.NewDoc(causal.ActorID{0xff}, crdt.WithHistory(NewHistory()))
		c, _, err := setup.Change(crdt.ChangeOptions{Time: 5}, func(tx *crdt.Txn) error {
			_, err := tx.Put(crdt.Root, "text", crdt.NewText())
			return err
		})
		must(t, err)
		text := causal.OpID{Counter: c.StartOp, Actor: c.Actor}
		d := crdt.NewDoc(causal.ActorID{0x01}, crdt.WithHistory(h))
		_, err = d.Apply(c)
		must(t, err)
		for i := 0; i < 50+r.IntN(400); i++ {
			_, _, err := d.Change(crdt.ChangeOptions{Time: int64(i) * 997, Message: []string{"", "", "", "save"}[r.IntN(4)]}, func(tx *crdt.Txn) error {
				n := d.Len(text)
				switch r.IntN(4) {
				case 0:
					_, err := tx.Put(crdt.Root, "k", crdt.Int(int64(r.IntN(9))))
					return err
				case 1:
					if n > 0 {
						pos := r.IntN(n)
						return tx.Splice(text, pos, 1+r.IntN(min(3, n-pos)), "")
					}
				}
				return tx.Splice(text, r.IntN(n+1), 0, []string{"a", "bc", "ü", "€x "}[r.IntN(4)])
			})
			must(t, err)
		}
		if !h.canonical() {
			t.Fatal("a single writer's history lost its continuous writer")
		}
		for _, opt := range []Options{{}, {Compress: true}} {
			fast, err := SaveDoc(d, opt)
			must(t, err)
			slow, err := encodeDocument(StateOf(d), d.Changes(), opt, d)
			must(t, err)
			if !bytes.Equal(fast, slow) {
				t.Fatalf("seed %d: saved History (%d bytes) differs from EncodeDocument (%d bytes)", seed, len(fast), len(slow))
			}
		}
	}
}
