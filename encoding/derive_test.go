package encoding

import (
	"bytes"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// historyMode returns the text mode of a saved document's (first) history
// section.
func historyMode(t *testing.T, saved []byte) byte {
	t.Helper()
	d, err := DecodeDocument(saved)
	if err != nil {
		t.Fatal(err)
	}
	body, err := d.chunks[0].history.open()
	if err != nil {
		t.Fatal(err)
	}
	r := newReader(body, "history")
	r.uvarint()
	r.uvarint()
	m, err := r.byte()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// loadsAs opens saved for editing and fails unless it reads as want.
func loadsAs(t *testing.T, saved []byte, want *crdt.Doc) *crdt.Doc {
	t.Helper()
	loaded, err := LoadDoc(saved, causal.ActorID{0xc})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(loaded.JSON(), want.JSON()) {
		t.Fatalf("loaded %s, want %s", loaded.JSON(), want.JSON())
	}
	return loaded
}

// savesAlike saves each of docs, replicas holding the same changes, and
// fails unless they all save the same bytes, which it returns.
func savesAlike(t *testing.T, opt Options, docs ...*crdt.Doc) []byte {
	t.Helper()
	var first []byte
	for i, d := range docs {
		b, err := SaveDoc(d, opt)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && !bytes.Equal(b, first) {
			t.Fatalf("replicas holding the same changes saved different bytes (compress %v)", opt.Compress)
		}
		first = b
	}
	return first
}

// decodedChanges decodes a saved document and returns its history.
func decodedChanges(t *testing.T, saved []byte) (*Document, []*crdt.Change) {
	t.Helper()
	dec, err := DecodeDocument(saved)
	if err != nil {
		t.Fatal(err)
	}
	got, err := dec.Changes()
	if err != nil {
		t.Fatal(err)
	}
	return dec, got
}

// holdsHistoryOf reports whether a saved document's history is d's, in
// canonical order.
func holdsHistoryOf(t *testing.T, saved []byte, d *crdt.Doc) bool {
	t.Helper()
	_, got := decodedChanges(t, saved)
	want, _ := canonicalOrder(d.Changes())
	return reflect.DeepEqual(got, want)
}

// TestDerivedTextRoundTrip saves documents whose text is written in text
// mode 1 (and with predicted right origins) and checks that every change
// decodes as it was.
func TestDerivedTextRoundTrip(t *testing.T) {
	d := typingDoc(t)
	for _, opt := range []Options{{}, {Compress: true}} {
		b, err := SaveDoc(d, opt)
		if err != nil {
			t.Fatal(err)
		}
		if m := historyMode(t, b); m != textDerived {
			t.Fatalf("text mode %d, want %d", m, textDerived)
		}
		if !holdsHistoryOf(t, b, d) {
			t.Fatalf("compress=%v: decoded changes differ", opt.Compress)
		}
	}
}

// TestPaperTraceRoundTrip decodes the saved automerge-paper history (a
// quarter of a million keystrokes in text mode 1) and compares it with the
// changes it was made from.
func TestPaperTraceRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes a large history")
	}
	cs, st := paperHistory(t)
	b, err := EncodeDocument(st, cs, Options{Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	if m := historyMode(t, b); m != textDerived {
		t.Fatalf("text mode %d, want %d", m, textDerived)
	}
	_, got := decodedChanges(t, b)
	if len(got) != len(cs) {
		t.Fatalf("%d changes decoded, %d saved", len(got), len(cs))
	}
	for i := range cs {
		if !reflect.DeepEqual(got[i], cs[i]) {
			t.Fatalf("change %d differs:\n got %+v\nwant %+v", i, got[i], cs[i])
		}
	}
}

// TestLargeStateFallsBackToSegments saves a document big enough that its
// state section is compressed while the history section is built, and
// whose history typed characters the state does not hold (a text that was
// replaced): text mode 1 cannot place them, so the section falls back to
// mode 0 and the state must then be written without mode 1's tail.
func TestLargeStateFallsBackToSegments(t *testing.T) {
	d := crdt.NewDoc(causal.ActorID{0xb}, crdt.WithHistory(NewHistory()))
	change := func(f func(tx *crdt.Txn) error) {
		t.Helper()
		if _, _, err := d.Change(crdt.ChangeOptions{Time: 1}, f); err != nil {
			t.Fatal(err)
		}
	}
	var old, text crdt.ObjID
	change(func(tx *crdt.Txn) (err error) {
		old, err = tx.Put(crdt.Root, "old", crdt.NewText())
		return err
	})
	// Characters found nowhere in the final state, some of them deleted
	// (mode 1 would carry those in the tail).
	change(func(tx *crdt.Txn) error { return tx.Splice(old, 0, 0, "QXJZ-QXJZ-QXJZ") })
	change(func(tx *crdt.Txn) error { return tx.Splice(old, 0, 5, "") })
	change(func(tx *crdt.Txn) (err error) {
		text, err = tx.Put(crdt.Root, "old", crdt.NewText())
		return err
	})
	big := strings.Repeat("the state section is large enough to be compressed on its own goroutine; ", 1200)
	change(func(tx *crdt.Txn) error { return tx.Splice(text, 0, 0, big) })
	if len(big) < parallelMin {
		t.Fatalf("the state (%d bytes) is too small to take the parallel path", len(big))
	}
	b, err := SaveDoc(d, Options{Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	if m := historyMode(t, b); m != textSegments {
		t.Fatalf("text mode %d, want %d", m, textSegments)
	}
	dec, _ := decodedChanges(t, b)
	if n, _ := dec.State().Root.Get("old"); n == nil || n.Text != big {
		t.Fatal("the state's text did not come back")
	}
	if !holdsHistoryOf(t, b, d) {
		t.Fatal("decoded changes differ")
	}
	loadsAs(t, b, d)
}

// An abandoned state worker's goroutine ends.
func TestAbandonedStateWorkerEnds(t *testing.T) {
	d := crdt.NewDoc(causal.ActorID{0xd}, crdt.WithHistory(NewHistory()))
	if _, _, err := d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
		text, err := tx.Put(crdt.Root, "text", crdt.NewText())
		if err != nil {
			return err
		}
		return tx.Splice(text, 0, 0, "abandoned")
	}); err != nil {
		t.Fatal(err)
	}
	h := d.History().(*History)
	if !h.canonical() {
		t.Fatal("a single writer's history has no continuous writer")
	}
	before := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		startStateWorker(h.whole, nil).abandon()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(time.Millisecond)
	}
	if b, err := SaveDoc(d, Options{Compress: true}); err != nil || !holdsHistoryOf(t, b, d) {
		t.Fatalf("the document no longer saves: %v", err)
	}
}
