package bench

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/internal/cputime"
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
		res := Run(tr, Options{Runs: 1})
		if !res.OK || res.Error != "" || res.Bytes == 0 || res.EditUs <= 0 {
			t.Errorf("%s: %+v", tr.Name, res)
		}
	}
}

// A sequential trace replayed twice in a row ends with its text twice over
// (Run checks the text, the saved bytes and edits after loading them); a
// concurrent one cannot be repeated and says so.
func TestRepeatedReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("replays traces; -short skips it")
	}
	var ran bool
	for _, tr := range loadTraces(t) {
		if tr.Concurrent() {
			if res := Run(tr, Options{Runs: 1, Repeat: 2}); res.Error == "" {
				t.Errorf("%s: a concurrent trace was repeated: %+v", tr.Name, res)
			}
			continue
		}
		if len(tr.EndContent) > 50_000 || ran {
			continue // one short trace is enough
		}
		ran = true
		res := Run(tr, Options{Runs: 1, Repeat: 2})
		if !res.OK || res.Error != "" || res.Repeat != 2 || res.Ops != 2*tr.NumPatches() {
			t.Errorf("%s twice: %+v", tr.Name, res)
		}
	}
	if !ran {
		t.Skip("no short sequential trace in the traces folder")
	}
}

// BenchmarkTrace replays each trace: one op per edit, so ns/op is the cost
// of one edit including the change around it.
func BenchmarkTrace(b *testing.B) {
	for _, tr := range loadTraces(b) {
		b.Run(tr.Name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := cputime.Used()
			for i := 0; i < b.N; i++ {
				if _, _, _, err := Replay(tr, 1); err != nil {
					b.Fatal(err)
				}
			}
			// CPU time, on all threads (the garbage collector's too), moves
			// less than wall time when other work shares the machine.
			b.ReportMetric(float64(cputime.Used()-cpu)/1e6/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tr.NumPatches()), "ns/edit")
		})
	}
}

// BenchmarkTraceChange is BenchmarkTrace with every transaction committed
// through Doc.Change, which returns each Change to the caller, instead of
// Doc.Edit.
func BenchmarkTraceChange(b *testing.B) {
	withChange = true
	defer func() { withChange = false }()
	BenchmarkTrace(b)
}

// BenchmarkTraceWithoutHistory is BenchmarkTrace with a History that keeps
// nothing: the difference between the two is what recording the history
// costs a replay (not a way to use converge: such a document cannot be
// saved or synced).
func BenchmarkTraceWithoutHistory(b *testing.B) {
	old := NewHistory
	defer func() { NewHistory = old }()
	NewHistory = func() crdt.History { return &forgetfulHistory{} }
	BenchmarkTrace(b)
}

// forgetfulHistory counts what it is given and keeps nothing.
type forgetfulHistory struct{ n int }

func (h *forgetfulHistory) Append(*crdt.Change)                       { h.n++ }
func (h *forgetfulHistory) Len() int                                  { return h.n }
func (h *forgetfulHistory) All() []*crdt.Change                       { return nil }
func (h *forgetfulHistory) Since(causal.VersionVector) []*crdt.Change { return nil }
func (h *forgetfulHistory) Get(causal.ChangeID) (*crdt.Change, bool)  { return nil, false }
func (h *forgetfulHistory) MaxOp(causal.ChangeID) (uint64, bool)      { return 0, false }
func (h *forgetfulHistory) CopiesChanges() bool                       { return true }

// Warm-up replays run first; every figure still comes out of the timed
// runs after them.
func TestWarmupThenTimedRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("replays a trace; -short skips it")
	}
	for _, tr := range loadTraces(t) {
		if tr.Name != "friendsforever_flat" {
			continue
		}
		res := Run(tr, Options{Runs: 1, Warmup: 2})
		if !res.OK || res.Error != "" || res.ApplyMs <= 0 || res.EncodeMs <= 0 || res.LoadMs <= 0 || res.OpenMs <= 0 {
			t.Fatalf("%+v", res)
		}
		return
	}
	t.Skip("friendsforever_flat is not among the traces")
}
