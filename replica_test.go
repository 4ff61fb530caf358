package converge

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/store"
	"github.com/converge-sync/converge/store/memory"
)

var ctx = context.Background()

func openT(t *testing.T, dir string, opts ...Option) *Replica {
	t.Helper()
	r, err := Open(ctx, dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func docT(t *testing.T, r *Replica, id string) *Doc {
	t.Helper()
	d, err := r.Doc(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func jsonT(t *testing.T, d *Doc) string {
	t.Helper()
	b, err := d.JSON("")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEditsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	r := openT(t, dir)
	d := docT(t, r, "notes/today")
	err := d.Change(ctx, func(tx *Txn) error {
		if err := tx.Set("/title", "Groceries"); err != nil {
			return err
		}
		if err := tx.Set("/items", []any{"milk", map[string]any{"name": "eggs", "n": 12}}); err != nil {
			return err
		}
		if err := tx.Set("/body", Text("buy food")); err != nil {
			return err
		}
		return tx.Increment("/visits", 2)
	}, WithMessage("first"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Change(ctx, func(tx *Txn) error { return tx.Splice("/body", 4, 0, "good ") }); err != nil {
		t.Fatal(err)
	}
	actor := r.Actor()
	want := `{"body":"buy good food","items":["milk",{"n":12,"name":"eggs"}],"title":"Groceries","visits":2}`
	if got := jsonT(t, d); got != want {
		t.Fatalf("got %s", got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2 := openT(t, dir)
	if r2.Actor() != actor {
		t.Fatal("actor ID not kept")
	}
	d2 := docT(t, r2, "notes/today")
	if got := jsonT(t, d2); got != want {
		t.Fatalf("after reopen: %s", got)
	}
	h := d2.History()
	if len(h) != 2 || h[0].Message != "first" {
		t.Fatalf("history %+v", h)
	}
	// Editing after reopen continues the actor's sequence.
	if err := d2.Change(ctx, func(tx *Txn) error { return tx.Delete("/items/0") }); err != nil {
		t.Fatal(err)
	}
	if h := d2.History(); h[2].Seq != 3 {
		t.Fatalf("seq after reopen: %+v", h[2])
	}
}

func TestSecondOpenOfAFolderIsRefused(t *testing.T) {
	dir := t.TempDir()
	openT(t, dir)
	if _, err := Open(ctx, dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
}

func TestFailedChangeLeavesNothing(t *testing.T) {
	r := openT(t, "", WithStore(memory.New()))
	d := docT(t, r, "d")
	boom := errors.New("boom")
	err := d.Change(ctx, func(tx *Txn) error {
		if err := tx.Set("/a", 1); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || jsonT(t, d) != "{}" {
		t.Fatalf("err %v, doc %s", err, jsonT(t, d))
	}
	if docs, _ := r.Docs(ctx); len(docs) != 0 {
		t.Fatalf("stored %+v", docs)
	}
	if err := d.Change(ctx, func(tx *Txn) error { return tx.Set("/a/b", 1) }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("set below a missing key: %v", err)
	}
	if err := d.Change(ctx, func(tx *Txn) error { return tx.Set("/c", make(chan int)) }); !errors.Is(err, ErrBadValue) {
		t.Fatalf("set of a channel: %v", err)
	}
	// A JSON whole number past int64 is refused, not rounded to a float;
	// written as a float it is one.
	if err := d.Change(ctx, func(tx *Txn) error {
		return tx.Set("/big", json.Number("123456789012345678901234567890"))
	}); !errors.Is(err, ErrBadValue) {
		t.Fatalf("set of a whole number past int64: %v", err)
	}
	setT(t, d, "/f", json.Number("1.5e29"))
	setT(t, d, "/i", json.Number("-9223372036854775808"))
	if got := jsonT(t, d); got != `{"f":1.5e+29,"i":-9223372036854775808}` {
		t.Fatalf("doc %s", got)
	}
}

// failingStore fails every Append while fail is set.
type failingStore struct {
	store.Store
	mu   sync.Mutex
	fail bool
}

func (f *failingStore) setFailing(fail bool) {
	f.mu.Lock()
	f.fail = fail
	f.mu.Unlock()
}

func (f *failingStore) Append(ctx context.Context, doc string, cs []store.Change) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return errors.New("disk full")
	}
	return f.Store.Append(ctx, doc, cs)
}

func TestStoreFailureUndoesTheChange(t *testing.T) {
	fs := &failingStore{Store: memory.New()}
	r := openT(t, "", WithStore(fs))
	d := docT(t, r, "d")
	if err := d.Change(ctx, func(tx *Txn) error { return tx.Set("/a", 1) }); err != nil {
		t.Fatal(err)
	}
	fs.fail = true
	if err := d.Change(ctx, func(tx *Txn) error { return tx.Set("/a", 2) }); err == nil {
		t.Fatal("change reported durable on a failing store")
	}
	if got := jsonT(t, d); got != `{"a":1}` {
		t.Fatalf("a change that is not durable is still shown: %s", got)
	}
	fs.fail = false
	if err := d.Change(ctx, func(tx *Txn) error { return tx.Set("/a", 3) }); err != nil {
		t.Fatal(err)
	}
	// The failed change's sequence number is used once, by the durable one.
	if h := d.History(); len(h) != 2 || h[1].Seq != 2 {
		t.Fatalf("history %+v", h)
	}
}

func TestMergeConflictsAndResolve(t *testing.T) {
	ra := openT(t, "", WithStore(memory.New()))
	rb := openT(t, "", WithStore(memory.New()))
	a, b := docT(t, ra, "trip"), docT(t, rb, "trip")
	var events []Event
	var mu sync.Mutex
	cancel := b.Subscribe(func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
	defer cancel()
	if err := a.Change(ctx, func(tx *Txn) error { return tx.Set("/dest", "Porto") }); err != nil {
		t.Fatal(err)
	}
	if err := b.Change(ctx, func(tx *Txn) error { return tx.Set("/dest", "Lisbon") }); err != nil {
		t.Fatal(err)
	}
	if err := b.Merge(ctx, a.ChangesSince(b.Version())...); err != nil {
		t.Fatal(err)
	}
	if err := a.Merge(ctx, b.ChangesSince(a.Version())...); err != nil {
		t.Fatal(err)
	}
	if jsonT(t, a) != jsonT(t, b) {
		t.Fatalf("diverged: %s %s", jsonT(t, a), jsonT(t, b))
	}
	cs := b.Conflicts()
	if len(cs) != 1 || cs[0].Path != "/dest" || len(cs[0].Candidates) != 2 {
		t.Fatalf("conflicts %+v", cs)
	}
	cands, err := a.ConflictsAt("/dest")
	if err != nil || len(cands) != 2 {
		t.Fatalf("ConflictsAt: %v %v", cands, err)
	}
	var porto Candidate
	for _, c := range cands {
		if c.Value == "Porto" {
			porto = c
		}
	}
	if err := a.Change(ctx, func(tx *Txn) error { return tx.Resolve("/dest", porto.Op) }); err != nil {
		t.Fatal(err)
	}
	if err := b.Merge(ctx, a.ChangesSince(b.Version())...); err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Get("/dest"); v != "Porto" || len(b.Conflicts()) != 0 {
		t.Fatalf("after resolve: %v %+v", v, b.Conflicts())
	}
	mu.Lock()
	defer mu.Unlock()
	// b saw: its own set (local), the merge with a conflict, the resolution.
	if len(events) != 3 || !events[0].Local || events[1].Local || events[2].Local {
		t.Fatalf("events %+v", events)
	}
	last := events[2].Patches[len(events[2].Patches)-1]
	if last.Action != crdt.PatchConflict || last.Conflict {
		t.Fatalf("last patch %+v", last)
	}
}

func TestExportImportMerges(t *testing.T) {
	ra := openT(t, t.TempDir())
	rb := openT(t, t.TempDir())
	a, b := docT(t, ra, "d"), docT(t, rb, "d")
	if err := a.Change(ctx, func(tx *Txn) error { return tx.Set("/x", 1) }); err != nil {
		t.Fatal(err)
	}
	if err := b.Change(ctx, func(tx *Txn) error { return tx.Set("/y", 2) }); err != nil {
		t.Fatal(err)
	}
	saved, err := a.Save()
	if err != nil {
		t.Fatal(err)
	}
	if err := rb.Import(ctx, "d", saved); err != nil {
		t.Fatal(err)
	}
	if got := jsonT(t, b); got != `{"x":1,"y":2}` {
		t.Fatalf("got %s", got)
	}
	saved[len(saved)/2] ^= 0xff
	if err := rb.Import(ctx, "d", saved); err == nil {
		t.Fatal("import of damaged bytes succeeded")
	}
	if got := jsonT(t, b); got != `{"x":1,"y":2}` {
		t.Fatalf("damaged import changed the doc: %s", got)
	}
}

func TestBatchedWritesAreDurableAtFlush(t *testing.T) {
	dir := t.TempDir()
	r := openT(t, dir, WithBatchedWrites())
	d := docT(t, r, "d")
	for i := 0; i < 50; i++ {
		if err := d.Change(ctx, func(tx *Txn) error { return tx.Increment("/n", 1) }); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := r.Store().Version(ctx, "d"); v.Total() != 0 {
		t.Fatalf("batched changes stored before Flush: %v", v)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := r.Store().Version(ctx, "d"); v.Total() != 50 {
		t.Fatalf("after Flush the store holds %v", v)
	}
	// Compact folds batched changes too, flushing them first.
	for i := 0; i < 5; i++ {
		if err := d.Change(ctx, func(tx *Txn) error { return tx.Increment("/n", 1) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Compact(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if docs, _ := r.Docs(ctx); len(docs) != 1 || docs[0].LogChanges != 0 || docs[0].Version.Total() != 55 {
		t.Fatalf("after Compact: %+v", docs)
	}
}

func TestCompactionFoldsTheLog(t *testing.T) {
	dir := t.TempDir()
	r := openT(t, dir, WithCompactAfter(10))
	d := docT(t, r, "d")
	for i := 0; i < 35; i++ {
		if err := d.Change(ctx, func(tx *Txn) error { return tx.Increment("/n", 1) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2 := openT(t, dir)
	docs, err := r2.Docs(ctx)
	// The first background compaction starts at 10 changes and Close waits
	// for it: whatever the timing, at most 25 changes remain in the log.
	if err != nil || len(docs) != 1 || docs[0].LogChanges > 25 || docs[0].Version.Total() != 35 {
		t.Fatalf("docs %+v %v", docs, err)
	}
	if got := jsonT(t, docT(t, r2, "d")); got != `{"n":35}` {
		t.Fatalf("got %s", got)
	}
	if h := docT(t, r2, "d").History(); len(h) != 35 {
		t.Fatalf("history lost in compaction: %d changes", len(h))
	}
	if err := r2.Compact(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if docs, _ := r2.Docs(ctx); docs[0].LogChanges != 0 {
		t.Fatalf("after Compact: %+v", docs[0])
	}
}

// A document's log is folded into its saved copy once it holds
// WithCompactAfter's changes or an eighth of the history, whichever is
// more: a long history is not encoded again every few changes.
func TestCompactionWaitsLongerForALongHistory(t *testing.T) {
	st := memory.New()
	r := openT(t, "", WithStore(st), WithCompactAfter(10))
	d := docT(t, r, "d")
	folds, longest, before := 0, 0, 0
	for i := 1; i <= 2000; i++ {
		if err := d.Change(ctx, func(tx *Txn) error { return tx.Increment("/n", 1) }); err != nil {
			t.Fatal(err)
		}
		r.bg.Wait() // the compaction that change started, if any, has ended
		d.mu.Lock()
		logged := d.logged
		d.mu.Unlock()
		want := max(10, i/8)
		if logged == 0 {
			folds++
			if before+1 < want {
				t.Fatalf("change %d folded a log of %d changes; a history of %d waits for %d", i, before+1, i, want)
			}
		}
		if logged >= want {
			t.Fatalf("after change %d the log holds %d changes, at least the %d that start a compaction", i, logged, want)
		}
		longest, before = max(longest, logged), logged
	}
	// Folded at 10, 20, … until the history is 80 long, then each time
	// the log is an eighth of it: some 40 folds in all, not 200.
	if folds < 20 || folds > 60 {
		t.Fatalf("%d compactions in 2,000 changes", folds)
	}
	if longest < 200 {
		t.Fatalf("the log never held more than %d changes; an eighth of a history of 2,000 is 250", longest)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	d2 := docT(t, openT(t, "", WithStore(st)), "d")
	if got, err := d2.Get("/n"); err != nil || got != int64(2000) {
		t.Fatalf("/n = %v, %v after reopening", got, err)
	}
}

func TestBadDocIDs(t *testing.T) {
	r := openT(t, "", WithStore(memory.New()))
	for _, id := range []string{"", "\xff", string(make([]byte, 2000))} {
		if _, err := r.Doc(ctx, id); !errors.Is(err, ErrBadDocID) {
			t.Errorf("Doc(%q): %v", id, err)
		}
	}
}

func TestEvict(t *testing.T) {
	r := openT(t, t.TempDir())
	d := docT(t, r, "a")
	if err := d.Change(ctx, func(tx *Txn) error { return tx.Set("/x", 1) }); err != nil {
		t.Fatal(err)
	}
	stop := d.Subscribe(func(Event) {})
	if r.Evict("a") {
		t.Fatal("evicted a document with a subscriber")
	}
	stop()
	if !r.Evict("a") || r.Loaded() != 0 {
		t.Fatal("not evicted")
	}
	if err := d.Change(ctx, func(tx *Txn) error { return tx.Set("/x", 2) }); !errors.Is(err, ErrEvicted) {
		t.Fatalf("change through a stale handle: %v", err)
	}
	d2 := docT(t, r, "a")
	if got := jsonT(t, d2); got != `{"x":1}` {
		t.Fatalf("reloaded %s", got)
	}
}

// After Close, every call that would touch the replica says so
// (ErrClosed), rather than succeeding on what is left in memory or failing
// for another reason.
func TestCallsAfterCloseSayClosed(t *testing.T) {
	r, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := docT(t, r, "d")
	setT(t, d, "/x", 1)
	saved, err := d.Save()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"Replica.Flush":   r.Flush(ctx),
		"Doc.Flush":       d.Flush(ctx),
		"Doc.SetPresence": d.SetPresence("here"),
		"Import":          r.Import(ctx, "e", saved),
		"Import of junk":  r.Import(ctx, "e", []byte("junk")),
		"Doc.Change":      d.Change(ctx, func(tx *Txn) error { return tx.Set("/x", 2) }),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", what, err)
		}
	}
	if _, err := d.Save(); !errors.Is(err, ErrClosed) {
		t.Errorf("Doc.Save after Close: %v, want ErrClosed", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}
