package bench

import (
	"fmt"
	"runtime"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/encoding"
	"github.com/converge-sync/converge/internal/trace"
)

// Result is one replay's figures: the JSON line `converge bench trace`
// prints.
type Result struct {
	Trace     string  `json:"trace"`
	Ops       int     `json:"ops"`
	ApplyMs   float64 `json:"applyMs"`
	MergeMs   float64 `json:"mergeMs,omitempty"` // concurrent traces: time spent merging remote changes
	EncodeMs  float64 `json:"encodeMs"`
	LoadMs    float64 `json:"loadMs"`
	Bytes     int     `json:"bytes"`
	HeapBytes int64   `json:"heapBytes"`
	OK        bool    `json:"ok"`
	Error     string  `json:"error,omitempty"`
}

// textKey is where the replayed text lives in the document's root map.
const textKey = "text"

// changeGap is the wall time between two trace transactions. Traces carry no
// times; an editor commits a change every second or so.
const changeGap = 1000

// NewHistory makes the change log of each replayed document: the compact
// encoding.History by default, as the converge API uses; `converge bench
// trace --history slice` compares with the plain crdt.SliceHistory.
var NewHistory = func() crdt.History { return encoding.NewHistory() }

// newReplica returns a document for one author that already holds the
// shared text, created by a setup change every replica starts from, so that
// concurrent authors edit one text rather than creating rival ones.
func newReplica(actor causal.ActorID, setup *crdt.Change) (*crdt.Doc, error) {
	d := crdt.NewDoc(actor, crdt.WithHistory(NewHistory()))
	d.SetPatches(false)
	if _, err := d.Apply(setup); err != nil {
		return nil, err
	}
	return d, nil
}

func setupChange() (*crdt.Change, crdt.ObjID, error) {
	d := crdt.NewDoc(causal.ActorID{0xff})
	var text crdt.ObjID
	c, _, err := d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
		var err error
		text, err = tx.Put(crdt.Root, textKey, crdt.NewText())
		return err
	})
	return c, text, err
}

func applyTxn(d *crdt.Doc, text crdt.ObjID, t *trace.Txn, time int64) error {
	_, _, err := d.Change(crdt.ChangeOptions{Time: time}, func(tx *crdt.Txn) error {
		for _, p := range t.Patches {
			if err := tx.Splice(text, p.Pos, p.Del, p.Ins); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// Replay applies a trace to fresh documents and returns the final document
// (the one that is saved and measured) with the time it took.
func Replay(tr *trace.Trace) (doc *crdt.Doc, applied, merging time.Duration, err error) {
	setup, text, err := setupChange()
	if err != nil {
		return nil, 0, 0, err
	}
	if !tr.Concurrent() {
		d, err := newReplica(actor(0), setup)
		if err != nil {
			return nil, 0, 0, err
		}
		start := time.Now()
		for i := range tr.Txns {
			if err := applyTxn(d, text, &tr.Txns[i], int64(i)*changeGap); err != nil {
				return nil, 0, 0, fmt.Errorf("transaction %d: %w", i, err)
			}
		}
		return d, time.Since(start), 0, nil
	}
	return replayConcurrent(tr, setup, text)
}

// replayConcurrent runs one replica per agent. Before an agent's
// transaction, its replica merges the versions named by the transaction's
// parents, as the agent did when the trace was recorded.
func replayConcurrent(tr *trace.Trace, setup *crdt.Change, text crdt.ObjID) (*crdt.Doc, time.Duration, time.Duration, error) {
	docs := make([]*crdt.Doc, tr.NumAgents)
	for i := range docs {
		d, err := newReplica(actor(i), setup)
		if err != nil {
			return nil, 0, 0, err
		}
		docs[i] = d
	}
	after := make([]causal.VersionVector, len(tr.Txns)) // each txn's replica version after it
	var merging time.Duration
	start := time.Now()
	for i := range tr.Txns {
		t := &tr.Txns[i]
		d := docs[t.Agent]
		m := time.Now()
		for _, p := range t.Parents {
			src := docs[tr.Txns[p].Agent]
			if src == d {
				continue
			}
			var want []*crdt.Change
			for _, c := range src.ChangesSince(d.Version()) {
				if after[p].Includes(c.ID()) {
					want = append(want, c)
				}
			}
			if _, err := d.Apply(want...); err != nil {
				return nil, 0, 0, fmt.Errorf("transaction %d: merging %d: %w", i, p, err)
			}
		}
		merging += time.Since(m)
		if err := applyTxn(d, text, t, int64(i)*changeGap); err != nil {
			return nil, 0, 0, fmt.Errorf("transaction %d (agent %d): %w", i, t.Agent, err)
		}
		after[i] = d.Version()
	}
	// Finally every replica gets everything.
	m := time.Now()
	for _, d := range docs {
		for _, src := range docs {
			if src != d {
				if _, err := d.Apply(src.ChangesSince(d.Version())...); err != nil {
					return nil, 0, 0, err
				}
			}
		}
	}
	merging += time.Since(m)
	applied := time.Since(start)
	for i, d := range docs[1:] {
		if d.Text(text) != docs[0].Text(text) {
			return nil, 0, 0, fmt.Errorf("replicas 0 and %d diverged", i+1)
		}
	}
	return docs[0], applied, merging, nil
}

func actor(i int) causal.ActorID { return causal.ActorID{0: 1, 1: byte(i >> 8), 2: byte(i), 15: 1} }

// Run replays tr runs times (each in fresh documents) and returns the
// medians of the timings.
func Run(tr *trace.Trace, runs int) Result {
	res := Result{Trace: tr.Name, Ops: tr.NumPatches()}
	fail := func(err error) Result { res.Error = err.Error(); return res }
	var apply, merge, enc, load []float64
	for r := 0; r < max(runs, 1); r++ {
		runtime.GC()
		before := heapInUse()
		d, applied, merging, err := Replay(tr)
		if err != nil {
			return fail(err)
		}
		apply, merge = append(apply, ms(applied)), append(merge, ms(merging))
		runtime.GC()
		res.HeapBytes = heapInUse() - before
		textObj, _ := d.Get(crdt.Root, textKey)
		res.OK = d.Text(textObj.Obj()) == tr.EndContent

		start := time.Now()
		saved, err := encoding.SaveDoc(d, encoding.Options{Compress: true})
		if err != nil {
			return fail(fmt.Errorf("save: %w", err))
		}
		enc = append(enc, ms(time.Since(start)))
		res.Bytes = len(saved)

		start = time.Now()
		text, err := loadText(saved)
		if err != nil {
			return fail(fmt.Errorf("load: %w", err))
		}
		load = append(load, ms(time.Since(start)))
		res.OK = res.OK && text == tr.EndContent
		runtime.KeepAlive(d)
	}
	res.ApplyMs, res.EncodeMs, res.LoadMs = median(apply), median(enc), median(load)
	if tr.Concurrent() {
		res.MergeMs = median(merge)
	}
	return res
}

// loadText decodes a saved document until its text can be read.
func loadText(b []byte) (string, error) {
	doc, err := encoding.DecodeDocument(b)
	if err != nil {
		return "", err
	}
	st := doc.State()
	if st == nil || st.Root == nil {
		return "", fmt.Errorf("saved document has no state")
	}
	for i, k := range st.Root.Keys {
		if k == textKey {
			return st.Root.Items[i].Text, nil
		}
	}
	return "", fmt.Errorf("saved document has no %q", textKey)
}

func heapInUse() int64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
