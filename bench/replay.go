package bench

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/encoding"
	"github.com/converge-sync/converge/internal/cputime"
	"github.com/converge-sync/converge/internal/trace"
)

// Result is one replay's figures: the JSON line `converge bench trace`
// prints.
type Result struct {
	Trace    string  `json:"trace"`
	Ops      int     `json:"ops"`
	ApplyMs  float64 `json:"applyMs"`
	MergeMs  float64 `json:"mergeMs,omitempty"` // concurrent traces: time spent merging remote changes
	EncodeMs float64 `json:"encodeMs"`
	// EncodeCPUMs is the CPU time the process spent during the save, on
	// all cores: a large save runs on two goroutines, so it can exceed
	// EncodeMs.
	EncodeCPUMs float64 `json:"encodeCpuMs"`
	LoadMs      float64 `json:"loadMs"`
	// OpenMs is loading the saved bytes into an editable document with its
	// full history (encoding.LoadDoc), beyond reading the text.
	OpenMs    float64 `json:"openMs"`
	Bytes     int     `json:"bytes"`
	HeapBytes int64   `json:"heapBytes"`
	// EditUs is the time of one keystroke change (an insert at a random
	// place) on a document loaded with its full history from the saved
	// bytes: what an app pays per edit after opening the document.
	EditUs float64 `json:"editUs"`
	// Repeat is how many times the trace was replayed in a row (omitted
	// when once): see Options.Repeat.
	Repeat int    `json:"repeat,omitempty"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
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

// txnApplier makes one change of a trace transaction's patches, their
// positions shifted by offset. It goes through Doc.Edit, as an editor that
// keeps its document in memory and saves it whole would: the change is
// recorded in the document's history, but no Change value is made for the
// caller. Its function for the transaction is made once, not once per
// transaction: the harness's own cost stays out of what is timed.
type txnApplier struct {
	text   crdt.ObjID
	txn    *trace.Txn
	offset int
	edit   func(*crdt.Txn) error
}

func newTxnApplier(text crdt.ObjID) *txnApplier {
	a := &txnApplier{text: text}
	a.edit = func(tx *crdt.Txn) error {
		ps := a.txn.Patches
		for i := range ps {
			if err := tx.Splice(a.text, ps[i].Pos+a.offset, ps[i].Del, ps[i].Ins); err != nil {
				return err
			}
		}
		return nil
	}
	return a
}

func (a *txnApplier) apply(d *crdt.Doc, t *trace.Txn, offset int, time int64) error {
	a.txn, a.offset = t, offset
	opts := crdt.ChangeOptions{Time: time}
	if withChange {
		_, _, err := d.Change(opts, a.edit)
		return err
	}
	_, _, err := d.Edit(opts, a.edit)
	return err
}

// withChange makes txnApplier go through Doc.Change, which hands the caller
// each Change (as an app that stores or sends every change needs), for
// BenchmarkTraceChange.
var withChange bool

// Replay applies a trace to fresh documents and returns the final document
// (the one that is saved and measured) with the time it took. A sequential
// trace is replayed repeat times in a row (at least once), each time after
// the text the previous ones left, so the document ends holding the trace's
// final text repeat times: a way to make a long document from a real editing
// history.
func Replay(tr *trace.Trace, repeat int) (doc *crdt.Doc, applied, merging time.Duration, err error) {
	setup, text, err := setupChange()
	if err != nil {
		return nil, 0, 0, err
	}
	repeat = max(repeat, 1)
	if tr.Concurrent() {
		if repeat > 1 {
			return nil, 0, 0, fmt.Errorf("a concurrent trace cannot be repeated (its agents' parents name one replay)")
		}
		return replayConcurrent(tr, setup, text)
	}
	d, err := newReplica(actor(0), setup)
	if err != nil {
		return nil, 0, 0, err
	}
	endLen := utf8.RuneCountInString(tr.EndContent)
	apply := newTxnApplier(text)
	start := time.Now()
	for r := 0; r < repeat; r++ {
		for i := range tr.Txns {
			n := r*len(tr.Txns) + i
			if err := apply.apply(d, &tr.Txns[i], r*endLen, int64(n)*changeGap); err != nil {
				return nil, 0, 0, fmt.Errorf("transaction %d (replay %d): %w", i, r+1, err)
			}
		}
	}
	flush(d)
	return d, time.Since(start), 0, nil
}

// flush has d's history write every change it was given, if it writes
// them on another goroutine (encoding.History): the time of a replay
// includes all of its work.
func flush(d *crdt.Doc) {
	if f, ok := d.History().(interface{ Flush() }); ok {
		f.Flush()
	}
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
	apply := newTxnApplier(text)
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
		if err := apply.apply(d, t, 0, int64(i)*changeGap); err != nil {
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
	for _, d := range docs {
		flush(d)
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

// Options say how Run replays a trace.
type Options struct {
	Runs   int // timed replays, each in fresh documents; figures are medians (at least 1)
	Repeat int // replays of a sequential trace in a row in one document (see Replay)
	// Warmup is how many replays run first, untimed, as bench/anchors'
	// traces.mjs gives the other engines (their JIT compilers and heaps,
	// here the Go heap and the save's compressors, start cold).
	Warmup int
}

// editsAfterLoad is how many keystroke changes EditUs averages over.
const editsAfterLoad = 1000

// Run replays tr as opt says and returns the medians of the timings.
func Run(tr *trace.Trace, opt Options) Result {
	repeat := max(opt.Repeat, 1)
	res := Result{Trace: tr.Name, Ops: tr.NumPatches() * repeat}
	if repeat > 1 {
		res.Repeat = repeat
	}
	fail := func(err error) Result { res.Error = err.Error(); return res }
	want := tr.EndContent
	if repeat > 1 {
		want = strings.Repeat(tr.EndContent, repeat)
	}
	var apply, merge, enc, encCPU, load, open, edit []float64
	warmup := max(opt.Warmup, 0)
	for r := 0; r < warmup+max(opt.Runs, 1); r++ {
		if r == warmup {
			apply, merge, enc, encCPU, load, open, edit = nil, nil, nil, nil, nil, nil, nil
		}
		before := heapInUse()
		d, applied, merging, err := Replay(tr, repeat)
		if err != nil {
			return fail(err)
		}
		apply, merge = append(apply, ms(applied)), append(merge, ms(merging))
		res.HeapBytes = heapInUse() - before
		textObj, _ := d.Get(crdt.Root, textKey)
		res.OK = d.Text(textObj.Obj()) == want

		start, cpu := time.Now(), cputime.Used()
		saved, err := encoding.SaveDoc(d, encoding.Options{Compress: true})
		if err != nil {
			return fail(fmt.Errorf("save: %w", err))
		}
		enc = append(enc, ms(time.Since(start)))
		encCPU = append(encCPU, float64(cputime.Used()-cpu)/1e6)
		res.Bytes = len(saved)
		runtime.KeepAlive(d)
		d = nil

		start = time.Now()
		text, err := loadText(saved)
		if err != nil {
			return fail(fmt.Errorf("load: %w", err))
		}
		load = append(load, ms(time.Since(start)))
		res.OK = res.OK && text == want

		opened, perEdit, err := editAfterLoad(saved, int64(r-warmup)) // timed runs seeded 0, 1, … whatever the warm-up
		if err != nil {
			return fail(err)
		}
		open, edit = append(open, ms(opened)), append(edit, float64(perEdit.Nanoseconds())/1000)
	}
	res.ApplyMs, res.EncodeMs, res.LoadMs = median(apply), median(enc), median(load)
	res.EncodeCPUMs = median(encCPU)
	res.OpenMs, res.EditUs = median(open), median(edit)
	if tr.Concurrent() {
		res.MergeMs = median(merge)
	}
	return res
}

// editAfterLoad loads saved bytes into an editable document with its full
// history, as an app opening it does, then makes keystroke changes at
// random places (seeded, so runs compare), and returns the time the load
// took and the mean time of one change.
func editAfterLoad(saved []byte, seed int64) (opened, perEdit time.Duration, err error) {
	start := time.Now()
	d, err := encoding.LoadDoc(saved, actor(editActor))
	if err != nil {
		return 0, 0, fmt.Errorf("open: %w", err)
	}
	flush(d)
	opened = time.Since(start)
	textObj, _ := d.Get(crdt.Root, textKey)
	text := textObj.Obj()
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	start = time.Now()
	for i := 0; i < editsAfterLoad; i++ {
		n := d.Len(text)
		if _, _, err := d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
			return tx.Splice(text, rng.IntN(n+1), 0, "x")
		}); err != nil {
			return 0, 0, fmt.Errorf("edit after load: %w", err)
		}
	}
	flush(d)
	return opened, time.Since(start) / editsAfterLoad, nil
}

// editActor is the replica that edits a loaded document: not one of the
// trace's authors.
const editActor = 0xfff

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

// heapInUse is the Go heap in use after garbage collection. It collects
// twice: objects kept in a sync.Pool (the compressors' buffers) survive the
// first collection and are freed by the second, so one GC would count them
// in one reading and not in the next.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
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
