package converge_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/store/memory"
)

// openMem opens a replica on a memory store, closed when the test ends.
func openMem(t *testing.T) *converge.Replica {
	t.Helper()
	r, err := converge.Open(context.Background(), "", converge.WithStore(memory.New()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// A function that panics inside Change must leave the document usable
// for a caller that recovers (as net/http does for a handler): the change
// is not kept, and the document is not left locked.
func TestChangePanicLeavesDocUsable(t *testing.T) {
	ctx := context.Background()
	d, err := openMem(t).Doc(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not reach the caller")
			}
		}()
		_ = d.Change(ctx, func(tx *converge.Txn) error {
			if err := tx.Set("/a", 1); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	done := make(chan error, 1)
	go func() {
		done <- d.Change(ctx, func(tx *converge.Txn) error { return tx.Set("/b", 2) })
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the document stayed locked after the panic")
	}
	b, _ := d.JSON("")
	if string(b) != `{"b":2}` {
		t.Fatalf("document is %s, want {\"b\":2}", b)
	}
}

func TestChangeNilFunc(t *testing.T) {
	ctx := context.Background()
	d, _ := openMem(t).Doc(ctx, "d")
	if err := d.Change(ctx, nil); err == nil {
		t.Fatal("Change(nil) returned nil")
	}
	if err := d.Change(ctx, func(tx *converge.Txn) error { return tx.Set("/a", 1) }); err != nil {
		t.Fatal(err)
	}
}

// A nil subscriber or presence watcher is ignored, not called (and
// crashing) at the next change.
func TestNilSubscriberIgnored(t *testing.T) {
	ctx := context.Background()
	d, _ := openMem(t).Doc(ctx, "d")
	cancel := d.Subscribe(nil)
	stop := d.WatchPresence(nil)
	if err := d.Change(ctx, func(tx *converge.Txn) error { return tx.Set("/a", 1) }); err != nil {
		t.Fatal(err)
	}
	if err := d.SetPresence("here"); err != nil {
		t.Fatal(err)
	}
	cancel()
	stop()
}

func TestSetPresenceBadValue(t *testing.T) {
	d, _ := openMem(t).Doc(context.Background(), "d")
	if err := d.SetPresence(make(chan int)); !errors.Is(err, converge.ErrBadValue) {
		t.Errorf("a channel: %v, want ErrBadValue", err)
	}
	if err := d.SetPresence(strings.Repeat("x", 1<<20)); !errors.Is(err, converge.ErrBadValue) {
		t.Errorf("1 MiB: %v, want ErrBadValue", err)
	}
}

// A handle to a deleted document refuses changes: stored after the
// deletion, a change would depend on changes the store no longer has,
// and the document reopened would not show it.
func TestDeletedDocHandleRefusesChanges(t *testing.T) {
	ctx := context.Background()
	r := openMem(t)
	d, _ := r.Doc(ctx, "x")
	if err := d.Change(ctx, func(tx *converge.Txn) error { return tx.Set("/a", 1) }); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	err := d.Change(ctx, func(tx *converge.Txn) error { return tx.Set("/b", 2) })
	if !errors.Is(err, converge.ErrEvicted) {
		t.Fatalf("change through the deleted handle: %v, want ErrEvicted", err)
	}
	if infos, _ := r.Docs(ctx); len(infos) != 0 {
		t.Fatalf("the store holds %v after the deletion", infos)
	}
}

func TestServeNilConn(t *testing.T) {
	if err := openMem(t).Serve(context.Background(), nil, converge.ServeConfig{}); err == nil {
		t.Fatal("Serve(nil conn) returned nil")
	}
}

// A Txn kept past its Change refuses to be used: the document is no
// longer locked for it.
func TestTxnAfterChange(t *testing.T) {
	ctx := context.Background()
	d, _ := openMem(t).Doc(ctx, "d")
	var kept *converge.Txn
	if err := d.Change(ctx, func(tx *converge.Txn) error { kept = tx; return tx.Set("/a", 1) }); err != nil {
		t.Fatal(err)
	}
	if _, err := kept.Get("/a"); !errors.Is(err, crdt.ErrTxnDone) {
		t.Errorf("Get: %v, want ErrTxnDone", err)
	}
	if err := kept.Set("/b", 2); !errors.Is(err, crdt.ErrTxnDone) {
		t.Errorf("Set: %v, want ErrTxnDone", err)
	}
}
