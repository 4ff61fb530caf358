package converge

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/internal/cputime"
)

// collaborativeHistory is n single-character changes by one or two people
// typing into one text: in each round each types ten characters, mostly
// at their own cursor, sometimes elsewhere, without the other's; then they
// exchange. With two, the result is in the order a server gets it (one's
// round, then the other's), which is not the canonical order: their
// changes' counters overlap.
func collaborativeHistory(b *testing.B, n, writers int) []*crdt.Change {
	b.Helper()
	a := crdt.NewDoc(causal.ActorID{0xa})
	var body crdt.ObjID
	first, _, err := a.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
		var err error
		body, err = tx.Put(crdt.Root, "body", crdt.NewText())
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	out := []*crdt.Change{first}
	people := []*crdt.Doc{a, a.Fork(causal.ActorID{0xb})}[:writers]
	cursors := []int{0, 0}
	rng := rand.New(rand.NewPCG(1, 2))
	const letters = "etaoin shrdlu"
	for len(out) < n {
		round := make([][]*crdt.Change, writers)
		for i, d := range people {
			if rng.IntN(10) == 0 { // the cursor moves elsewhere
				cursors[i] = rng.IntN(d.Len(body) + 1)
			}
			for range 10 {
				cursors[i] = min(cursors[i], d.Len(body))
				ch, _, err := d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
					k := rng.IntN(len(letters))
					return tx.Splice(body, cursors[i], 0, letters[k:k+1])
				})
				if err != nil {
					b.Fatal(err)
				}
				cursors[i]++
				round[i] = append(round[i], ch)
			}
		}
		for i, d := range people {
			for j, theirs := range round {
				if j != i {
					if _, err := d.Apply(theirs...); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		for _, mine := range round {
			out = append(out, mine...)
		}
	}
	return out
}

// openBenchDoc opens the replica in dir and its document "collab".
func openBenchDoc(b *testing.B, dir string, opts ...Option) (*Replica, *Doc) {
	b.Helper()
	r, err := Open(ctx, dir, opts...)
	if err != nil {
		b.Fatal(err)
	}
	d, err := r.Doc(ctx, "collab")
	if err != nil {
		b.Fatal(err)
	}
	return r, d
}

// BenchmarkReplicaCollaborativeHistory: a replica with the default
// compaction (a server, say) merging a history two people typed at once,
// 100 changes per Merge, each compaction it starts finished before the
// next Merge (as on a server with a core to spare). Such a history is not
// in canonical order, so each compaction encodes it whole; cpu-µs/change
// counts the compactions, and compactions/1k-changes says how often they
// came.
func BenchmarkReplicaCollaborativeHistory(b *testing.B) {
	for _, n := range []int{20_000, 100_000, 300_000} {
		b.Run(fmt.Sprintf("changes=%d", n), func(b *testing.B) {
			history := collaborativeHistory(b, n, 2)
			b.ResetTimer()
			cpu, compactions := cputime.Used(), 0
			for range b.N {
				r, d := openBenchDoc(b, b.TempDir())
				for i := 0; i < len(history); i += 100 {
					if err := d.Merge(ctx, history[i:min(i+100, len(history))]...); err != nil {
						b.Fatal(err)
					}
					d.mu.Lock()
					started := d.compactng
					d.mu.Unlock()
					if started {
						r.bg.Wait()
						compactions++
					}
				}
				if err := r.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cputime.Used()-cpu)/1e3/float64(b.N*len(history)), "cpu-µs/change")
			b.ReportMetric(float64(compactions)*1e3/float64(b.N*len(history)), "compactions/1k-changes")
		})
	}
}

// BenchmarkReplicaCollaborativeLoad: loading the document of
// BenchmarkReplicaCollaborativeHistory (100,000 changes) all from its
// saved copy, and with the last eighth of it in the log, the most a log
// holds before the default compaction folds it (see compactAfter).
func BenchmarkReplicaCollaborativeLoad(b *testing.B) {
	for _, writers := range []int{1, 2} {
		history := collaborativeHistory(b, 100_000, writers)
		for _, logged := range []int{0, len(history) / 8} {
			b.Run(fmt.Sprintf("writers=%d/logged=%d", writers, logged), func(b *testing.B) {
				dir := b.TempDir()
				r, d := openBenchDoc(b, dir, WithCompactAfter(0))
				saved := len(history) - logged
				if err := d.Merge(ctx, history[:saved]...); err != nil {
					b.Fatal(err)
				}
				if err := r.Compact(ctx, nil); err != nil {
					b.Fatal(err)
				}
				if err := d.Merge(ctx, history[saved:]...); err != nil {
					b.Fatal(err)
				}
				if err := r.Close(); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					r, d := openBenchDoc(b, dir, WithCompactAfter(0))
					if n := d.doc.History().Len(); n != len(history) {
						b.Fatalf("loaded %d changes of %d", n, len(history))
					}
					b.StopTimer()
					if err := r.Close(); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			})
		}
	}
}
