package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/store"
)

// The benchmarks run every workload on each driver in one run, so that the
// figures compare on one machine at one time:
//
//	for i in 1 2 3 4 5; do go test ./store/sqlite -run '^$' -bench . -count 1; done | tee bench.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /driver bench.txt
//
// (five rounds of -count 1 rather than one -count 5, so that each round
// runs the drivers back to back and a noisy minute on a shared machine
// hits both). "modernc" is the production configuration.
var benchDrivers = []struct {
	name string
	drv  driver
}{
	{"modernc", modernc},
	{"ncruces", ncrucesDriver},
}

func forEachDriver(b *testing.B, fn func(b *testing.B, drv driver, key string)) {
	for _, d := range benchDrivers {
		b.Run("driver="+d.name, func(b *testing.B) { fn(b, d.drv, d.name) })
	}
}

// fixtures are built once per driver and workload and shared by every
// round of a benchmark: building 100,000 changes for each b.N would
// measure the setup.
var fixtures struct {
	sync.Mutex
	dir   string
	paths map[string]string
}

func fixture(b *testing.B, key string, drv driver, build func(s *Store)) string {
	fixtures.Lock()
	defer fixtures.Unlock()
	if p, ok := fixtures.paths[key]; ok {
		return p
	}
	if fixtures.dir == "" {
		dir, err := os.MkdirTemp("", "converge-sqlite-bench-")
		if err != nil {
			b.Fatal(err)
		}
		fixtures.dir, fixtures.paths = dir, map[string]string{}
	}
	path := filepath.Join(fixtures.dir, strings.NewReplacer("/", "_", "=", "_").Replace(key)+".db")
	s, err := Open(context.Background(), path, withDriver(drv))
	if err != nil {
		b.Fatal(err)
	}
	build(s)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	fixtures.paths[key] = path
	return path
}

func cleanupFixtures() {
	if fixtures.dir != "" {
		os.RemoveAll(fixtures.dir)
	}
}

func benchOpen(b *testing.B, path string, drv driver) *Store {
	s, err := Open(context.Background(), path, withDriver(drv))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// payload is a change of about 50 bytes, the size of a typical keystroke
// change once encoded.
func payload(a causal.ActorID, seq uint64) []byte {
	return fmt.Appendf(nil, "%s:%08d:%s", a.Short(), seq, "insert 'x' at 1234 in text 7@ab")
}

func mustB(b *testing.B, err error) {
	if err != nil {
		b.Fatal(err)
	}
}

// One change per call, each durable on return: a person typing, with
// nothing batched.
func BenchmarkAppendOne(b *testing.B) {
	forEachDriver(b, func(b *testing.B, drv driver, _ string) {
		s := benchOpen(b, filepath.Join(b.TempDir(), "s.db"), drv)
		defer s.Close()
		ctx := context.Background()
		a := actor(1)
		b.ResetTimer()
		for i := range b.N {
			id := causal.ChangeID{Actor: a, Seq: uint64(i + 1)}
			mustB(b, s.Append(ctx, "doc", []store.Change{{ID: id, Bytes: payload(a, id.Seq)}}))
		}
	})
}

// 100 changes per call: a sync session storing what it received.
func BenchmarkAppendBatch100(b *testing.B) {
	forEachDriver(b, func(b *testing.B, drv driver, _ string) {
		s := benchOpen(b, filepath.Join(b.TempDir(), "s.db"), drv)
		defer s.Close()
		ctx := context.Background()
		a := actor(1)
		batch := make([]store.Change, 100)
		seq := uint64(0)
		b.ResetTimer()
		for range b.N {
			for j := range batch {
				seq++
				batch[j] = store.Change{ID: causal.ChangeID{Actor: a, Seq: seq}, Bytes: payload(a, seq)}
			}
			mustB(b, s.Append(ctx, "doc", batch))
		}
		b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "changes/s")
	})
}

// A replica back after a while: 1,000 changes missing from a log of
// 100,000 (10 actors, the last 100 of each).
func BenchmarkChangesCatchUp(b *testing.B) {
	const actors, perActor, missing = 10, 10_000, 100
	forEachDriver(b, func(b *testing.B, drv driver, key string) {
		path := fixture(b, key+"/catchup", drv, func(s *Store) {
			ctx := context.Background()
			batch := make([]store.Change, 0, 1000)
			for seq := uint64(1); seq <= perActor; seq++ {
				for i := range actors {
					a := actor(byte(i + 1))
					batch = append(batch, store.Change{ID: causal.ChangeID{Actor: a, Seq: seq}, Bytes: payload(a, seq)})
				}
				if len(batch) == cap(batch) {
					mustB(b, s.Append(ctx, "doc", batch))
					batch = batch[:0]
				}
			}
		})
		s := benchOpen(b, path, drv)
		defer s.Close()
		since := causal.VersionVector{}
		for i := range actors {
			since[actor(byte(i+1))] = perActor - missing
		}
		ctx := context.Background()
		b.ResetTimer()
		for range b.N {
			cs, err := s.Changes(ctx, "doc", since)
			mustB(b, err)
			if len(cs) != actors*missing {
				b.Fatalf("got %d changes", len(cs))
			}
		}
	})
}

// Starting a replica: open the store and list its 1,000 documents.
func BenchmarkOpen1000Docs(b *testing.B) {
	forEachDriver(b, func(b *testing.B, drv driver, key string) {
		path := fixture(b, key+"/docs", drv, func(s *Store) {
			ctx := context.Background()
			for d := range 1000 {
				doc := fmt.Sprintf("workspace/%04d", d)
				a := actor(byte(d%7 + 1))
				mustB(b, s.SaveSnapshot(ctx, doc, store.Snapshot{Version: causal.VersionVector{a: 10}, Bytes: make([]byte, 2000)}))
				mustB(b, s.Append(ctx, doc, []store.Change{{ID: causal.ChangeID{Actor: a, Seq: 11}, Bytes: payload(a, 11)}}))
			}
		})
		ctx := context.Background()
		b.ResetTimer()
		for range b.N {
			s := benchOpen(b, path, drv)
			ds, err := s.Docs(ctx)
			mustB(b, err)
			if len(ds) != 1000 {
				b.Fatalf("%d docs", len(ds))
			}
			mustB(b, s.Close())
		}
	})
}

// Opening one document: a 2 MB snapshot plus a short log.
func BenchmarkLoad2MB(b *testing.B) {
	forEachDriver(b, func(b *testing.B, drv driver, key string) {
		snap := make([]byte, 2<<20)
		for i := range snap {
			snap[i] = byte(i * 7)
		}
		a := actor(1)
		path := fixture(b, key+"/load", drv, func(s *Store) {
			ctx := context.Background()
			mustB(b, s.SaveSnapshot(ctx, "doc", store.Snapshot{Version: causal.VersionVector{a: 1000}, Bytes: snap}))
			for seq := uint64(1001); seq <= 1020; seq++ {
				mustB(b, s.Append(ctx, "doc", []store.Change{{ID: causal.ChangeID{Actor: a, Seq: seq}, Bytes: payload(a, seq)}}))
			}
		})
		s := benchOpen(b, path, drv)
		defer s.Close()
		ctx := context.Background()
		b.SetBytes(int64(len(snap)))
		b.ResetTimer()
		for range b.N {
			got, log, err := s.Load(ctx, "doc")
			mustB(b, err)
			if len(got.Bytes) != len(snap) || len(log) != 20 {
				b.Fatalf("loaded %d bytes, %d changes", len(got.Bytes), len(log))
			}
		}
	})
}
