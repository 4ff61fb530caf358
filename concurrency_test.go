package converge_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/store/memory"
)

// Doc and Replica say they are safe for concurrent use: writers, readers,
// subscribers, merges, saves and the replica's own calls at once (run
// with -race, as .ci/run does, for this test to mean much).
func TestDocConcurrentUse(t *testing.T) {
	ctx := context.Background()
	r, err := converge.Open(ctx, "", converge.WithStore(memory.New()), converge.WithBatchedWrites(), converge.WithCompactAfter(5))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	other, _ := converge.Open(ctx, "", converge.WithStore(memory.New()))
	defer other.Close()
	d, _ := r.Doc(ctx, "d")
	od, _ := other.Doc(ctx, "d")
	var events sync.Mutex
	seen := 0
	cancel := d.Subscribe(func(converge.Event) { events.Lock(); seen++; events.Unlock() })
	defer cancel()

	const n = 40
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := range n {
				err := d.Change(ctx, func(tx *converge.Txn) error {
					if err := tx.Increment("/count", 1); err != nil {
						return err
					}
					return tx.Set(fmt.Sprintf("/w%d", w), i)
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() { // another replica's changes, merged
		for i := range n {
			if err := od.Change(ctx, func(tx *converge.Txn) error { return tx.Set("/other", i) }); err != nil {
				t.Error(err)
				return
			}
			if err := d.Merge(ctx, od.ChangesSince(d.Version())...); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() { // readers
		for range n {
			_, _ = d.Get("/count")
			_, _ = d.JSON("")
			_ = d.Conflicts()
			_ = d.History()
			if _, err := d.Save(); err != nil {
				t.Error(err)
				return
			}
			_, _ = r.Docs(ctx)
			_ = r.Flush(ctx)
			_ = d.SetPresence(map[string]int{"n": 1})
			_ = d.Presence()
		}
	})
	wg.Wait()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := d.Get("/count")
	if err != nil || v != int64(3*n) {
		t.Fatalf("count = %v, %v; want %d", v, err, 3*n)
	}
	events.Lock()
	defer events.Unlock()
	if seen < 3*n {
		t.Fatalf("%d events for at least %d changes", seen, 3*n)
	}
}
