package bench

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/converge-sync/converge/internal/trace"
)

// tracesDir is where the editing traces live: $CONVERGE_TRACES, or the
// shared folder beside the repository.
func tracesDir() string {
	if d := os.Getenv("CONVERGE_TRACES"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "shared", "traces")
}

func loadTraces(tb testing.TB) []*trace.Trace {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(tracesDir(), "*.json.gz"))
	if len(files) == 0 {
		tb.Fatalf("no traces in %s (set CONVERGE_TRACES)", tracesDir())
	}
	var out []*trace.Trace
	for _, f := range files {
		tr, err := trace.Load(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, tr)
	}
	return out
}

// Every trace replays to its final text, saves and loads back.
func TestTracesReplayCorrectly(t *testing.T) {
	if testing.Short() {
		t.Skip("replays every trace; -short skips it")
	}
	for _, tr := range loadTraces(t) {
		res := Run(tr, 1)
		if !res.OK || res.Error != "" || res.Bytes == 0 {
			t.Errorf("%s: %+v", tr.Name, res)
		}
	}
}

// BenchmarkTrace replays each trace: one op per edit, so ns/op is the cost
// of one edit including the change around it.
func BenchmarkTrace(b *testing.B) {
	for _, tr := range loadTraces(b) {
		b.Run(tr.Name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, _, _, err := Replay(tr); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tr.NumPatches()), "ns/edit")
		})
	}
}
