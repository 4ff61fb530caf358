package seq

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/converge-sync/converge/causal"
)

// Editing traces (see ../shared/traces/README.md): real editing histories,
// read from $CONVERGE_TRACES or ../../../shared/traces.

type patch struct {
	pos, del int
	ins      string
}

type txn struct {
	agent   int
	parents []int
	patches []patch
}

type trace struct {
	end  string
	txns []txn
	ops  int // patches
}

func tracesDir() string {
	if d := os.Getenv("CONVERGE_TRACES"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "traces")
}

var traceCache sync.Map // name → *trace

func loadTrace(tb testing.TB, name string) *trace {
	tb.Helper()
	if t, ok := traceCache.Load(name); ok {
		return t.(*trace)
	}
	path := filepath.Join(tracesDir(), name+".json.gz")
	t, err := readTrace(path)
	if err != nil {
		tb.Fatalf("editing trace %s: %v (set CONVERGE_TRACES to the folder holding the editing traces)", name, err)
	}
	traceCache.Store(name, t)
	return t
}

func readTrace(path string) (*trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	var raw struct {
		EndContent string `json:"endContent"`
		Txns       []struct {
			Agent   int                 `json:"agent"`
			Parents []int               `json:"parents"`
			Patches [][]json.RawMessage `json:"patches"`
		} `json:"txns"`
	}
	if err := json.NewDecoder(z).Decode(&raw); err != nil {
		return nil, err
	}
	t := &trace{end: raw.EndContent}
	for i, rt := range raw.Txns {
		x := txn{agent: rt.Agent, parents: rt.Parents}
		for _, p := range rt.Patches {
			var q patch
			if len(p) != 3 || json.Unmarshal(p[0], &q.pos) != nil ||
				json.Unmarshal(p[1], &q.del) != nil || json.Unmarshal(p[2], &q.ins) != nil {
				return nil, fmt.Errorf("txn %d: bad patch %s", i, p)
			}
			x.patches = append(x.patches, q)
			t.ops++
		}
		t.txns = append(t.txns, x)
	}
	return t, nil
}

// localEditor applies patches to one engine as local edits by one actor:
// deletes through Spans and SetVisible, inserts through Origins and Insert
// with fresh consecutive IDs. It records what it did as ID-based ops, for
// other replicas to integrate.
type localEditor struct {
	s     Sequence
	actor causal.ActorID
	clock uint64 // highest counter seen
	rec   bool
	ops   []diffOp
}

func (e *localEditor) apply(p patch) error {
	if p.del > 0 {
		spans, err := e.s.Spans(p.pos, p.del)
		if err != nil {
			return err
		}
		for _, sp := range spans {
			if _, err := e.s.SetVisible(sp.Start, sp.Len, false); err != nil {
				return err
			}
			if e.rec {
				e.ops = append(e.ops, diffOp{id: sp.Start, n: sp.Len})
			}
		}
	}
	if p.ins != "" {
		l, r, err := e.s.Origins(p.pos)
		if err != nil {
			return err
		}
		n := utf8.RuneCountInString(p.ins)
		id := ID{Counter: e.clock + 1, Actor: e.actor}
		if _, err := e.s.Insert(id, n, l, r, p.ins); err != nil {
			return err
		}
		e.clock += uint64(n)
		if e.rec {
			e.ops = append(e.ops, diffOp{insert: true, id: id, n: n, left: l, right: r, text: p.ins})
		}
	}
	return nil
}

// integrate applies ops recorded by another replica's editor.
func (e *localEditor) integrate(ops []diffOp) error {
	for _, op := range ops {
		if op.insert {
			if _, err := e.s.Insert(op.id, op.n, op.left, op.right, op.text); err != nil {
				return err
			}
			e.clock = max(e.clock, op.id.Counter+uint64(op.n)-1)
		} else if _, err := e.s.SetVisible(op.id, op.n, op.visible); err != nil {
			return err
		}
	}
	return nil
}

// replaySequential applies a sequential trace to s as local edits.
func replaySequential(s Sequence, t *trace) error {
	e := &localEditor{s: s, actor: causal.ActorID{1}}
	for _, x := range t.txns {
		for _, p := range x.patches {
			if err := e.apply(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// replayConcurrent replays a concurrent trace with one replica per agent:
// before an agent's transaction, its replica integrates every transaction
// the new one causally follows, in trace order. At the end every replica
// integrates everything. It returns the replicas.
func replayConcurrent(t *trace, mk func() Sequence) ([]*localEditor, error) {
	agents := 0
	for _, x := range t.txns {
		agents = max(agents, x.agent+1)
	}
	eds := make([]*localEditor, agents)
	has := make([][]bool, agents)
	for a := range eds {
		eds[a] = &localEditor{s: mk(), actor: causal.ActorID{byte(a + 1)}}
		has[a] = make([]bool, len(t.txns))
	}
	ops := make([][]diffOp, len(t.txns))
	// catchUp integrates txn k's unseen ancestors (and k itself if with),
	// oldest first.
	catchUp := func(a int, roots []int) error {
		var need []int
		stack := slices.Clone(roots)
		for len(stack) > 0 {
			k := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if has[a][k] {
				continue
			}
			has[a][k] = true
			need = append(need, k)
			stack = append(stack, t.txns[k].parents...)
		}
		slices.Sort(need)
		for _, k := range need {
			if err := eds[a].integrate(ops[k]); err != nil {
				return fmt.Errorf("agent %d integrating txn %d: %w", a, k, err)
			}
		}
		return nil
	}
	for k, x := range t.txns {
		if err := catchUp(x.agent, x.parents); err != nil {
			return nil, err
		}
		e := eds[x.agent]
		e.rec, e.ops = true, nil
		for _, p := range x.patches {
			if err := e.apply(p); err != nil {
				return nil, fmt.Errorf("txn %d: %w", k, err)
			}
		}
		ops[k], e.rec = e.ops, false
		has[x.agent][k] = true
	}
	all := make([]int, len(t.txns))
	for k := range all {
		all[k] = k
	}
	for a := range eds {
		if err := catchUp(a, all); err != nil {
			return nil, err
		}
	}
	return eds, nil
}

func TestSequentialTraces(t *testing.T) {
	for _, name := range []string{"friendsforever_flat", "seph-blog1", "automerge-paper"} {
		t.Run(name, func(t *testing.T) {
			tr := loadTrace(t, name)
			f := NewFast()
			if err := replaySequential(f, tr); err != nil {
				t.Fatal(err)
			}
			if f.Text() != tr.end || f.Len() != utf8.RuneCountInString(tr.end) {
				t.Fatalf("final text differs from endContent (%d vs %d chars)", f.Len(), len(tr.end))
			}
			if err := f.check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConcurrentTrace(t *testing.T) {
	tr := loadTrace(t, "concurrent-friendsforever")
	eds, err := replayConcurrent(tr, func() Sequence { return NewFast() })
	if err != nil {
		t.Fatal(err)
	}
	for a, e := range eds {
		if got := e.s.Text(); got != tr.end {
			t.Fatalf("agent %d: final text differs from endContent (%d vs %d bytes)", a, len(got), len(tr.end))
		}
		if err := e.s.(*Fast).check(); err != nil {
			t.Fatal(err)
		}
	}
}
