package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/store"
)

// Write calls made while the writer is busy are committed together; each
// keeps its own outcome: a conflict in one undoes only that one.
func TestGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := open(t, path)
	ctx := context.Background()
	if err := s.Append(ctx, "bad", []store.Change{change(1, 1, "first")}); err != nil {
		t.Fatal(err)
	}
	for round := 0; s.grouped.Load() == 0; round++ {
		if round == 20 {
			t.Fatal("no write calls were ever grouped")
		}
		// Hold the writer inside a transaction while the calls line up.
		release, holding := make(chan struct{}), make(chan struct{})
		held := make(chan error, 1)
		go func() {
			held <- s.write(ctx, "hold", func(*txn) error { close(holding); <-release; return nil })
		}()
		<-holding
		var wg sync.WaitGroup
		errs := make([]error, 5)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i == 2 { // the same ID as the stored change, other bytes
					errs[i] = s.Append(ctx, "bad", []store.Change{change(1, 1, "other"), change(2, 1, "x")})
					return
				}
				errs[i] = s.Append(ctx, fmt.Sprintf("good-%d", i), []store.Change{change(byte(round+1), 1, "c")})
			}()
		}
		time.Sleep(50 * time.Millisecond) // let them line up: a scheduling aid, not a measurement
		close(release)
		wg.Wait()
		if err := <-held; err != nil {
			t.Fatal(err)
		}
		for i, err := range errs {
			if i == 2 {
				if !errors.Is(err, store.ErrConflict) {
					t.Fatalf("conflicting call: %v, want ErrConflict", err)
				}
			} else if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
	}
	// Reopened, the store holds the good calls, and nothing of the bad one.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	defer s.Close()
	for _, doc := range []string{"good-0", "good-1", "good-3", "good-4"} {
		v, err := s.Version(ctx, doc)
		if err != nil || v.Total() == 0 {
			t.Errorf("%s: version %v, %v", doc, v, err)
		}
	}
	v, err := s.Version(ctx, "bad")
	if err != nil {
		t.Fatal(err)
	}
	if want := (causal.VersionVector{actor(1): 1}); v.Compare(want) != causal.Equal {
		t.Errorf("bad: version %v, want %v: the refused call left a trace", v, want)
	}
}

// A call whose context ends while it waits for the writer fails with the
// context's error and writes nothing; the others go on.
func TestWriteContextEndsWhileWaiting(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "store.db"))
	defer s.Close()
	release, holding := make(chan struct{}), make(chan struct{})
	go s.write(context.Background(), "hold", func(*txn) error { close(holding); <-release; return nil })
	<-holding
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Append(ctx, "late", []store.Change{change(1, 1, "c")}) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	close(release)
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Append: %v, want context.Canceled", err)
	}
	if _, err := s.Version(context.Background(), "late"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the cancelled call wrote something: %v", err)
	}
	if err := s.Append(context.Background(), "next", []store.Change{change(1, 1, "c")}); err != nil {
		t.Fatal(err)
	}
}

// The writer waits for more calls only while they come faster than two per
// maxLinger, and stops waiting soon after they slow down.
func TestArrivalsBusy(t *testing.T) {
	now := time.Unix(0, 0)
	a := newArrivals(now)
	if a.busy() {
		t.Fatal("busy before any call")
	}
	step := func(gap time.Duration, n int) {
		for range n {
			now = now.Add(gap)
			a.add(now)
		}
	}
	step(maxLinger/10, 30) // 10 calls per maxLinger
	if !a.busy() {
		t.Fatalf("not busy at 10 calls per %v (mean gap %v)", maxLinger, a.gap)
	}
	step(2*maxLinger, 30) // one call per 2 maxLinger
	if a.busy() {
		t.Fatalf("busy at one call per %v (mean gap %v)", 2*maxLinger, a.gap)
	}
	step(time.Hour, 1) // a quiet spell counts as a bounded gap
	step(maxLinger/10, 40)
	if !a.busy() {
		t.Fatalf("still not busy 40 fast calls after a quiet hour (mean gap %v)", a.gap)
	}
}
