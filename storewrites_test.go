package converge

import (
	"context"
	"testing"

	"github.com/converge-sync/converge/encoding"
	"github.com/converge-sync/converge/store"
	"github.com/converge-sync/converge/store/memory"
)

// StoreWrites counts the store's failures and holds the last one until a
// write succeeds; refusals of bad input and writes whose caller went away
// say nothing of the store and are not counted.
func TestStoreWritesFollowFailures(t *testing.T) {
	fs := &failingStore{Store: memory.New()}
	r := openT(t, "", WithStore(fs))
	d := docT(t, r, "d")
	set := func(v int) error { return d.Change(ctx, func(tx *Txn) error { return tx.Set("/a", v) }) }
	if err := set(1); err != nil {
		t.Fatal(err)
	}
	if w := r.StoreWrites(); w.Failed != 0 || w.LastError != nil {
		t.Fatalf("after a good write: %+v", w)
	}
	fs.setFailing(true)
	for i := 0; i < 2; i++ {
		if set(2) == nil {
			t.Fatal("a write to a failing store succeeded")
		}
	}
	w := r.StoreWrites()
	if w.Failed != 2 || w.LastError == nil || w.LastErrorTime.IsZero() {
		t.Fatalf("after two failed writes: %+v", w)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_ = d.Change(cancelled, func(tx *Txn) error { return tx.Set("/a", 3) })
	if got := r.StoreWrites().Failed; got != 2 {
		t.Fatalf("a write whose caller went away counted: %d failures", got)
	}
	fs.setFailing(false)
	if err := set(4); err != nil {
		t.Fatal(err)
	}
	if w := r.StoreWrites(); w.Failed != 2 || w.LastError != nil {
		t.Fatalf("after the store came back: %+v", w)
	}

	// A change whose ID the store holds with other bytes is the sender's
	// fault (store.ErrConflict), not the store's.
	c := d.ChangesSince(nil)[0]
	forged := *c
	forged.Message = "forged"
	if err := r.st.Append(ctx, "d", []store.Change{{ID: forged.ID(), Bytes: encoding.EncodeChange(&forged)}}); err == nil {
		t.Fatal("the store took a forged change")
	}
	err := r.appendToStore(ctx, "d", []store.Change{{ID: forged.ID(), Bytes: encoding.EncodeChange(&forged)}})
	if w := r.StoreWrites(); err == nil || w.Failed != 2 || w.LastError != nil {
		t.Fatalf("a refused change counted as a store failure: %v %+v", err, w)
	}
}
