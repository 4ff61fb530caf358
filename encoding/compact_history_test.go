package encoding_test

import (
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/encoding"
)

// A history made in a tight loop (same millisecond, same counter) is a few
// runs per column: hundreds of thousands of rows in a few hundred bytes. It
// must load again, however compact.
func TestRunLengthDenseHistoryLoads(t *testing.T) {
	const n = 150_000
	d := crdt.NewDoc(causal.NewActorID(), crdt.WithHistory(encoding.NewHistory()))
	d.SetPatches(false)
	if _, _, err := d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
		_, err := tx.Put(crdt.Root, "votes", crdt.Counter(0))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, _, err := d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
			return tx.Increment(crdt.Root, "votes", 1)
		}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := encoding.SaveDoc(d, encoding.Options{Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d changes saved in %d bytes", n+1, len(b))
	back, err := encoding.LoadDoc(b, causal.NewActorID())
	if err != nil {
		t.Fatalf("LoadDoc: %v", err)
	}
	if string(back.JSON()) != string(d.JSON()) || len(back.Changes()) != n+1 {
		t.Fatalf("loaded %s with %d changes", back.JSON(), len(back.Changes()))
	}
	// The untrusted path (Import of a file) reads it too: it is within the
	// allowance.
	dec, err := encoding.DecodeDocument(b)
	if err != nil {
		t.Fatal(err)
	}
	if cs, err := dec.Changes(); err != nil || len(cs) != n+1 {
		t.Fatalf("DecodeDocument: %d changes, %v", len(cs), err)
	}
}

// Typing, one keystroke per change, made faster than the clock ticks: the
// characters sit in the text dictionary, the columns are runs.
func TestKeystrokeHistoryLoads(t *testing.T) {
	const n = 100_000
	d := crdt.NewDoc(causal.NewActorID(), crdt.WithHistory(encoding.NewHistory()))
	d.SetPatches(false)
	var text crdt.ObjID
	d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
		var err error
		text, err = tx.Put(crdt.Root, "text", crdt.NewText())
		return err
	})
	for i := range n {
		if _, _, err := d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
			return tx.Splice(text, i, 0, "x")
		}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := encoding.SaveDoc(d, encoding.Options{Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	back, err := encoding.LoadDoc(b, causal.NewActorID())
	if err != nil {
		t.Fatalf("LoadDoc of %d bytes: %v", len(b), err)
	}
	if len(back.Changes()) != n+1 {
		t.Fatalf("loaded %d changes", len(back.Changes()))
	}
}
