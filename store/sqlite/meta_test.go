package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/store"
	"github.com/converge-sync/converge/store/memory"
)

// The writer's cache of rows must never make the store say something the
// database does not hold (nor may the inserts of many rows at once): random
// Appends (some repeating or conflicting),
// snapshots and deletes on a few documents give the same outcomes and the
// same contents as the in-memory store, and a store opened afresh on the
// same file (no cache) reads the same.
func TestWriterCacheAgreesWithTheDatabase(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			path := filepath.Join(t.TempDir(), "store.db")
			s := open(t, path)
			m := memory.New()
			docs := []string{"a", "b", "c"}
			// next[doc][actor] is the next new sequence number.
			next := map[string]map[byte]uint64{}
			for _, d := range docs {
				next[d] = map[byte]uint64{}
			}
			for step := range 400 {
				doc := docs[rng.IntN(len(docs))]
				var errS, errM error
				switch op := rng.IntN(20); {
				case op < 14: // append new changes, with now and then an old one again
					var cs []store.Change
					n := 1 + rng.IntN(3)
					if rng.IntN(5) == 0 {
						n = 1 + rng.IntN(20) // several statements of several rows
					}
					for range n {
						a := byte(1 + rng.IntN(3))
						next[doc][a]++
						cs = append(cs, change(a, next[doc][a], fmt.Sprint(a, next[doc][a])))
					}
					if rng.IntN(4) == 0 {
						a := byte(1 + rng.IntN(3))
						if n := next[doc][a]; n > 0 {
							cs = append(cs, change(a, 1+rng.Uint64N(n), "")) // differs from what is held: a conflict, unless folded away
						}
					}
					errS, errM = s.Append(ctx, doc, cs), m.Append(ctx, doc, cs)
					if errM != nil {
						// Refused whole: the new sequence numbers are free again.
						for _, c := range cs {
							next[doc][c.ID.Actor[0]] = min(next[doc][c.ID.Actor[0]], c.ID.Seq-1)
						}
					}
				case op < 18: // fold what is held into a snapshot
					v, err := m.Version(ctx, doc)
					if err != nil && !errors.Is(err, store.ErrNotFound) {
						t.Fatal(err)
					}
					snap := store.Snapshot{Version: v, Bytes: []byte(fmt.Sprint("snap", step))}
					errS, errM = s.SaveSnapshot(ctx, doc, snap), m.SaveSnapshot(ctx, doc, snap)
				default:
					errS, errM = s.Delete(ctx, doc), m.Delete(ctx, doc)
					next[doc] = map[byte]uint64{}
				}
				if (errS == nil) != (errM == nil) || (errM != nil && !errors.Is(errS, store.ErrConflict) != !errors.Is(errM, store.ErrConflict)) {
					t.Fatalf("step %d: sqlite %v, memory %v", step, errS, errM)
				}
				for _, d := range docs {
					same(t, fmt.Sprintf("step %d, %s", step, d), s, m, d)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			fresh := open(t, path)
			for _, d := range docs {
				same(t, "reopened, "+d, fresh, m, d)
			}
		})
	}
}

// same checks that two stores hold the same version and log of doc.
func same(t *testing.T, what string, a, b store.Store, doc string) {
	t.Helper()
	ctx := context.Background()
	va, ea := a.Version(ctx, doc)
	vb, eb := b.Version(ctx, doc)
	if !errors.Is(ea, store.ErrNotFound) && ea != nil || !errors.Is(eb, store.ErrNotFound) && eb != nil {
		t.Fatalf("%s: %v, %v", what, ea, eb)
	}
	if len(va)+len(vb) > 0 && !reflect.DeepEqual(va, vb) {
		t.Fatalf("%s: versions %v and %v", what, va, vb)
	}
	ca, _ := a.Changes(ctx, doc, causal.VersionVector{})
	cb, _ := b.Changes(ctx, doc, causal.VersionVector{})
	if len(ca) != len(cb) {
		t.Fatalf("%s: %d and %d changes", what, len(ca), len(cb))
	}
	held := make(map[causal.ChangeID]string, len(cb))
	for _, c := range cb {
		held[c.ID] = string(c.Bytes)
	}
	for _, c := range ca {
		if b, ok := held[c.ID]; !ok || b != string(c.Bytes) {
			t.Fatalf("%s: change %v is %q in one, %q (%v) in the other", what, c.ID, c.Bytes, b, ok)
		}
	}
}
