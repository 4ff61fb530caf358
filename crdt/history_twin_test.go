package crdt_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/encoding"
	"pgregory.net/rapid"
)

// twin is one replica kept twice: with encoding's compact History and with
// the plain SliceHistory. Both receive the same changes in the same order;
// nothing a caller can observe may differ.
type twin struct{ enc, slc *crdt.Doc }

func newTwin(actor causal.ActorID) twin {
	return twin{
		enc: crdt.NewDoc(actor, crdt.WithHistory(encoding.NewHistory())),
		slc: crdt.NewDoc(actor),
	}
}

func (w twin) check(t *rapid.T) {
	if a, b := crdt.Fingerprint(w.enc), crdt.Fingerprint(w.slc); a != b {
		t.Fatalf("compact history replica:\n%s\nslice history replica:\n%s", a, b)
	}
	if w.enc.MaxOp() != w.slc.MaxOp() || w.enc.Version().Compare(w.slc.Version()) != causal.Equal {
		t.Fatalf("versions differ: %v %d / %v %d", w.enc.Version(), w.enc.MaxOp(), w.slc.Version(), w.slc.MaxOp())
	}
	sameChanges(t, "Changes", w.enc.Changes(), w.slc.Changes())
}

func sameChanges(t *rapid.T, what string, a, b []*crdt.Change) {
	if len(a) != len(b) {
		t.Fatalf("%s: %d changes vs %d", what, len(a), len(b))
	}
	for i := range a {
		x, y := encoding.EncodeChange(a[i]), encoding.EncodeChange(b[i])
		if !bytes.Equal(x, y) {
			t.Fatalf("%s: change %d differs: %v vs %v", what, i, a[i].ID(), b[i].ID())
		}
	}
}

// The property workload of crdt, on twins: random edits on 2–4 replicas,
// random partial deliveries (duplicated, regrouped), then healing. After
// every step each twin's halves agree; at the end every replica saves the
// same bytes, whether its history is compact (the fast save path when it
// applies) or a slice, and compacts them to the same bytes.
func TestPropertyCompactHistoryTwin(t *testing.T) {
	crdt.LimitChecks(t, 300)
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 4).Draw(t, "replicas")
		docs := make([]twin, n)
		for i := range docs {
			docs[i] = newTwin(crdt.ActorN(byte(i + 1)))
		}
		steps := rapid.IntRange(1, 40).Draw(t, "steps")
		for s := 0; s < steps; s++ {
			i := rapid.IntRange(0, n-1).Draw(t, "replica")
			if rapid.IntRange(0, 2).Draw(t, "action") < 2 {
				before := docs[i].enc.Version()
				crdt.RandomEdit(t, docs[i].enc, int64(s))
				// The new local change, read back from the compact history,
				// goes to the slice twin.
				if _, err := docs[i].slc.Apply(docs[i].enc.ChangesSince(before)...); err != nil {
					t.Fatalf("twin apply: %v", err)
				}
			} else if j := rapid.IntRange(0, n-1).Draw(t, "from"); i != j {
				deliverTwin(t, docs[i], docs[j])
			}
			docs[i].check(t)
		}
		for _, i := range rapid.Permutation([]int{0, 1, 2, 3}[:n]).Draw(t, "order") {
			for j := range docs {
				if i != j {
					deliverAll(t, docs[i], docs[j])
				}
			}
		}
		for i := range docs {
			deliverAll(t, docs[i], docs[(i+1)%n])
		}
		// SaveDoc asks the document where each character is and Compact
		// (EncodeDocument) searches the text, so the two may pick different
		// bytes; each is the same on every replica.
		var wantSaved [2][]byte // by compression
		var wantCompact []byte
		for i, d := range docs {
			d.check(t)
			for _, doc := range []*crdt.Doc{d.enc, d.slc} {
				b, err := encoding.SaveDoc(doc, encoding.Options{Compress: i%2 == 0})
				if err != nil {
					t.Fatal(err)
				}
				if w := &wantSaved[i%2]; *w == nil {
					*w = b
				} else if !bytes.Equal(b, *w) {
					t.Fatalf("replica %d saves different bytes (%d vs %d)", i, len(b), len(*w))
				}
				if b, err = encoding.Compact(b, nil, encoding.Options{}); err != nil {
					t.Fatal(err)
				}
				if wantCompact == nil {
					wantCompact = b
				} else if !bytes.Equal(b, wantCompact) {
					t.Fatalf("replica %d compacts to different bytes (%d vs %d)", i, len(b), len(wantCompact))
				}
			}
		}
	})
}

// deliverTwin sends dst a random part of what src has and dst lacks, the
// same batches to both halves; both halves of src must offer the same.
func deliverTwin(t *rapid.T, dst, src twin) {
	me, ms := src.enc.ChangesSince(dst.enc.Version()), src.slc.ChangesSince(dst.slc.Version())
	sameChanges(t, "ChangesSince", me, ms)
	if len(me) == 0 {
		return
	}
	picked := rapid.SliceOfNDistinct(rapid.IntRange(0, len(me)-1), 0, len(me), rapid.ID[int]).Draw(t, "picked")
	var idx []int
	for _, k := range picked {
		idx = append(idx, k)
		if rapid.IntRange(0, 4).Draw(t, "dup") == 0 {
			idx = append(idx, k)
		}
	}
	for len(idx) > 0 {
		k := rapid.IntRange(1, len(idx)).Draw(t, "group")
		be, bs := pick(me, idx[:k]), pick(ms, idx[:k])
		if _, err := dst.enc.Apply(be...); err != nil {
			t.Fatalf("apply: %v", err)
		}
		if _, err := dst.slc.Apply(bs...); err != nil {
			t.Fatalf("apply: %v", err)
		}
		idx = idx[k:]
	}
}

func deliverAll(t *rapid.T, dst, src twin) {
	me, ms := src.enc.ChangesSince(dst.enc.Version()), src.slc.ChangesSince(dst.slc.Version())
	sameChanges(t, "ChangesSince", me, ms)
	if _, err := dst.enc.Apply(me...); err != nil {
		t.Fatalf("heal: %v", err)
	}
	if _, err := dst.slc.Apply(ms...); err != nil {
		t.Fatalf("heal: %v", err)
	}
}

func pick(cs []*crdt.Change, idx []int) []*crdt.Change {
	out := make([]*crdt.Change, 0, len(idx))
	for _, k := range idx {
		out = append(out, cs[k])
	}
	return slices.Clip(out)
}
