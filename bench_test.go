package converge_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/converge-sync/converge"
)

// The replica figures of docs/replica.md: what a local edit costs when it is
// durable on return, batched, and what opening a replica and loading a big
// document from its folder cost. All on the default SQLite store, in a
// temporary folder (so on whatever disk TMPDIR is).

func benchOpen(b *testing.B, dir string, opts ...converge.Option) *converge.Replica {
	b.Helper()
	r, err := converge.Open(context.Background(), dir, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func benchDoc(b *testing.B, r *converge.Replica, id string) *converge.Doc {
	b.Helper()
	d, err := r.Doc(context.Background(), id)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkReplicaChangeDurable: one small change per Change, each durable
// (committed and fsynced) when Change returns.
func BenchmarkReplicaChangeDurable(b *testing.B) {
	ctx := context.Background()
	r := benchOpen(b, b.TempDir())
	defer r.Close()
	d := benchDoc(b, r, "notes")
	b.ResetTimer()
	for i := range b.N {
		if err := benchEdit(ctx, d, i); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
}

// BenchmarkReplicaChangeBatched: the same changes with WithBatchedWrites,
// made durable by a Flush every batch changes; ns/op is per change, Flush
// included.
func BenchmarkReplicaChangeBatched(b *testing.B) {
	for _, batch := range []int{10, 100, 1000} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			ctx := context.Background()
			// Compaction off: with it, a long run would also measure
			// re-encoding the document every 1000 changes, which is not what
			// this figure is about.
			r := benchOpen(b, b.TempDir(), converge.WithBatchedWrites(), converge.WithCompactAfter(0))
			defer r.Close()
			d := benchDoc(b, r, "notes")
			b.ResetTimer()
			for i := range b.N {
				if err := benchEdit(ctx, d, i); err != nil {
					b.Fatal(err)
				}
				if (i+1)%batch == 0 || i == b.N-1 {
					if err := r.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
		})
	}
}

// BenchmarkReplicaOpen1000Docs: opening a replica folder of 1,000 small
// documents, listing them and loading one. The folder is built once.
func BenchmarkReplicaOpen1000Docs(b *testing.B) {
	const docs = 1000
	ctx := context.Background()
	dir := b.TempDir()
	r := benchOpen(b, dir, converge.WithBatchedWrites())
	for i := range docs {
		d := benchDoc(b, r, fmt.Sprintf("notes/%04d", i))
		for j := range 5 {
			err := d.Change(ctx, func(tx *converge.Txn) error {
				if j == 0 {
					return tx.Set("/body", converge.Text("note "+strconv.Itoa(i)))
				}
				return tx.Splice("/body", 0, 0, strconv.Itoa(j)+" ")
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := r.Close(); err != nil { // flushes, and folds every log into a snapshot
		b.Fatal(err)
	}
	b.Run("open+list+doc", func(b *testing.B) {
		for i := range b.N {
			r := benchOpen(b, dir)
			infos, err := r.Docs(ctx)
			if err != nil || len(infos) != docs {
				b.Fatalf("listed %d documents: %v", len(infos), err)
			}
			id := infos[i%docs].ID
			v, err := benchDoc(b, r, id).Get("/body")
			if err != nil || v != fmt.Sprintf("4 3 2 1 note %d", i%docs) {
				b.Fatalf("%s holds %q: %v", id, v, err)
			}
			b.StopTimer()
			if err := r.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

// bigDocOps is the size of the document of BenchmarkReplicaLoadMillionOps.
const bigDocOps = 1_000_000

// buildBigDoc types a text of bigDocOps single-character edits into doc
// "big" of a replica in dir, ten edits per change, as a person typing would:
// mostly at the cursor, with backspaces and jumps elsewhere. It returns the
// text's length in characters.
func buildBigDoc(b *testing.B, dir string) int {
	ctx := context.Background()
	r := benchOpen(b, dir, converge.WithBatchedWrites(), converge.WithCompactAfter(0))
	d := benchDoc(b, r, "big")
	if err := d.Change(ctx, func(tx *converge.Txn) error { return tx.Set("/body", converge.Text("")) }); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	n, cursor := 0, 0
	letters := "etaoin shrdlu"
	for ops := 0; ops < bigDocOps; {
		err := d.Change(ctx, func(tx *converge.Txn) error {
			for range 10 {
				switch p := rng.IntN(100); {
				case p < 10 && cursor > 0: // backspace
					if err := tx.Splice("/body", cursor-1, 1, ""); err != nil {
						return err
					}
					cursor--
					n--
				default:
					if p < 12 { // the cursor moves elsewhere first
						cursor = rng.IntN(n + 1)
					}
					c := letters[rng.IntN(len(letters)):][:1]
					if err := tx.Splice("/body", cursor, 0, c); err != nil {
						return err
					}
					cursor++
					n++
				}
				ops++
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	// One Append of every change, then a saved copy of the whole.
	if err := r.Compact(context.Background(), nil); err != nil {
		b.Fatal(err)
	}
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkReplicaLoadMillionOps: opening a replica and loading a document
// of a million edits (100,000 changes) from its saved copy, until its text
// can be read.
func BenchmarkReplicaLoadMillionOps(b *testing.B) {
	dir := b.TempDir()
	n := buildBigDoc(b, dir)
	r := benchOpen(b, dir)
	infos, err := r.Docs(context.Background())
	if err != nil || len(infos) != 1 || infos[0].LogChanges != 0 {
		b.Fatalf("stored %+v, %v; want one document, all in its saved copy", infos, err)
	}
	stored := infos[0].Bytes
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	b.Run("open+doc+text", func(b *testing.B) {
		b.ReportMetric(float64(stored), "stored-bytes")
		b.ReportMetric(float64(n), "chars")
		for range b.N {
			r := benchOpen(b, dir)
			v, err := benchDoc(b, r, "big").Get("/body")
			s, _ := v.(string)
			if err != nil || utf8.RuneCountInString(s) != n {
				b.Fatalf("text of %d characters, want %d: %v", utf8.RuneCountInString(s), n, err)
			}
			b.StopTimer()
			if err := r.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

// benchEdit makes the benchmarks' i-th change: a counter increment or a
// title set, alternately.
func benchEdit(ctx context.Context, d *converge.Doc, i int) error {
	return d.Change(ctx, func(tx *converge.Txn) error {
		if i%2 == 0 {
			return tx.Increment("/edits", 1)
		}
		return tx.Set("/title", "draft "+strconv.Itoa(i))
	})
}

// BenchmarkReplicaAtMillionOps: reading the document of
// BenchmarkReplicaLoadMillionOps as it was just after its first change, its
// middle one and its last (Doc.AtChange, until the text can be read), with
// the document loaded; load is loading it (as in
// BenchmarkReplicaLoadMillionOps), to compare with in the same run. A
// past version is rebuilt from the history, whose length sets the cost.
func BenchmarkReplicaAtMillionOps(b *testing.B) {
	dir := b.TempDir()
	buildBigDoc(b, dir)
	r := benchOpen(b, dir)
	defer r.Close()
	d := benchDoc(b, r, "big")
	h := d.History()
	for _, at := range []struct {
		name string
		i    int
	}{{"first", 0}, {"middle", len(h) / 2}, {"last", len(h) - 1}} {
		b.Run("at="+at.name, func(b *testing.B) {
			for range b.N {
				s, err := d.AtChange(h[at.i].ID)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Get("/body"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("load", func(b *testing.B) {
		for range b.N {
			if !r.Evict("big") {
				b.Fatal("the document could not be evicted")
			}
			if _, err := benchDoc(b, r, "big").Get("/body"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
