package seq

import (
	"runtime"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/internal/cputime"
)

// Benchmarks over the editing traces. Each reports, besides the usual
// figures for one whole replay, ns/edit and allocs/edit (per patch of the
// trace), cpu-ns/edit (CPU time rather than wall time: steadier on a busy
// machine) and heap-MB: the live heap the finished sequence holds, after GC.
//
//	go test ./crdt/seq -run '^$' -bench . -count 6 | tee new.txt; benchstat new.txt

// measure runs replay b.N times and reports the per-edit figures and the
// heap held by the sequence the last run left.
func measure(b *testing.B, edits int, replay func() any) {
	b.ReportAllocs()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs
	b.ResetTimer()
	cpu := cputime.Used()
	var last any
	for i := 0; i < b.N; i++ {
		last = replay()
	}
	b.StopTimer()
	cpu = cputime.Used() - cpu
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(cpu)/float64(b.N*edits), "cpu-ns/edit")
	b.ReportMetric(float64(ms.Mallocs-mallocs)/float64(b.N*edits), "allocs/edit")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*edits), "ns/edit")
	runtime.GC()
	runtime.ReadMemStats(&ms)
	held := ms.HeapAlloc
	runtime.KeepAlive(last)
	last = nil
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(held-ms.HeapAlloc)/1e6, "heap-MB")
}

func benchSequential(b *testing.B, name string, mk func() Sequence) {
	tr := loadTrace(b, name)
	measure(b, tr.ops, func() any {
		s := mk()
		if err := replaySequential(s, tr); err != nil {
			b.Fatal(err)
		}
		return s
	})
}

func BenchmarkSequential(b *testing.B) {
	for _, name := range []string{"automerge-paper", "seph-blog1", "friendsforever_flat"} {
		b.Run(name+"/Fast", func(b *testing.B) { benchSequential(b, name, func() Sequence { return NewFast() }) })
	}
	// The reference engine is O(n) per edit: only the smallest trace.
	b.Run("friendsforever_flat/Simple", func(b *testing.B) {
		benchSequential(b, "friendsforever_flat", func() Sequence { return NewSimple() })
	})
}

// BenchmarkRemote integrates, as remote ops, everything one replica did
// while replaying automerge-paper locally: the non-concurrent remote path
// (origins looked up by ID).
func BenchmarkRemote(b *testing.B) {
	tr := loadTrace(b, "automerge-paper")
	src := &localEditor{s: NewFast(), actor: causal.ActorID{1}, rec: true}
	for _, x := range tr.txns {
		for _, p := range x.patches {
			if err := src.apply(p); err != nil {
				b.Fatal(err)
			}
		}
	}
	measure(b, tr.ops, func() any {
		dst := &localEditor{s: NewFast()}
		if err := dst.integrate(src.ops); err != nil {
			b.Fatal(err)
		}
		return dst.s
	})
}

// BenchmarkConcurrent replays the two-author concurrent trace: each edit is
// made locally on its author's replica and integrated remotely on the other.
func BenchmarkConcurrent(b *testing.B) {
	tr := loadTrace(b, "concurrent-friendsforever")
	for _, eng := range []struct {
		name string
		mk   func() Sequence
	}{{"Fast", func() Sequence { return NewFast() }}, {"Simple", func() Sequence { return NewSimple() }}} {
		b.Run(eng.name, func(b *testing.B) {
			measure(b, tr.ops, func() any {
				eds, err := replayConcurrent(tr, eng.mk)
				if err != nil {
					b.Fatal(err)
				}
				return eds
			})
		})
	}
}
