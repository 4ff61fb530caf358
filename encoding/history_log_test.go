package encoding

import (
	"runtime"
	"strings"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/crdt/historytest"
)

func TestHistoryContract(t *testing.T) {
	historytest.Run(t, func() crdt.History { return NewHistory() })
}

// The contract again with batches of a few jobs, so that the writer
// goroutine writes them while changes are appended and read (with -race:
// that the two never touch the same memory unlocked), and on one
// processor, where the caller writes every batch itself.
func TestHistoryContractBehind(t *testing.T) {
	smallBatches(t, 3, 5)
	t.Run("goroutine", func(t *testing.T) {
		historytest.Run(t, func() crdt.History { return NewHistory() })
	})
	if testing.Short() {
		return // the race detector's pass (-short) needs the goroutine only
	}
	t.Run("one processor", func(t *testing.T) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		historytest.Run(t, func() crdt.History { return NewHistory() })
	})
	// Every keystroke of every run written one by one
	// (appendKeystroke), none the quick way.
	t.Run("usual", func(t *testing.T) {
		quickRuns = false
		defer func() { quickRuns = true }()
		historytest.Run(t, func() crdt.History { return NewHistory() })
	})
}

// smallBatches makes History's batches hold jobs jobs or keystrokes
// keystrokes until t ends.
func smallBatches(t *testing.T, jobs, keystrokes int) {
	oldJobs, oldKeys := batchJobs, batchKeystrokes
	batchJobs, batchKeystrokes = jobs, keystrokes
	t.Cleanup(func() { batchJobs, batchKeystrokes = oldJobs, oldKeys })
}

// A change appended out of its actor's order panics, on the caller's
// goroutine, whichever goroutine writes it: at the latest at the next
// read, and again at the one after (the lock is not left held).
func TestHistoryOutOfOrderPanics(t *testing.T) {
	for _, behind := range []bool{false, true} {
		t.Run(map[bool]string{false: "inline", true: "behind"}[behind], func(t *testing.T) {
			if behind {
				smallBatches(t, 1, 1)
			}
			a := causal.ActorID{0x01}
			h := NewHistory()
			h.Append(&crdt.Change{Actor: a, Seq: 1, StartOp: 1, Ops: []crdt.Op{{Action: crdt.ActPut, Key: "k", Value: crdt.Int(1)}}})
			for try := 0; try < 2; try++ {
				p := func() (p any) {
					defer func() { p = recover() }()
					if try == 0 {
						h.Append(&crdt.Change{Actor: a, Seq: 3, StartOp: 2, Ops: []crdt.Op{{Action: crdt.ActPut, Key: "k", Value: crdt.Int(2)}}})
					}
					h.All()
					return nil
				}()
				if s, _ := p.(string); !strings.Contains(s, "appended after seq 1") {
					t.Fatalf("read %d: panic %v, want one naming the gap", try+1, p)
				}
			}
		})
	}
}

// A run of keystrokes keeps each time as its difference from the one
// before, in 24 bits: a keystroke hours after the one before, or with a
// time before it (a clock set back), reads back with its own time, and so
// do gaps at the limit and just past it, either way.
func TestHistoryKeystrokeTimes(t *testing.T) {
	a := causal.ActorID{0x01}
	changes, text := textTyped(a, "a")
	times := []int64{5, 6, 7}
	for _, gap := range []int64{maxKeyGap, 1, maxKeyGap + 1, 1, -maxKeyGap, 1, -maxKeyGap - 1, 1, 1 << 40, 1, -(1 << 40)} {
		times = append(times, times[len(times)-1]+gap)
	}
	times = append(times, 3, 4, -1<<50, 1<<62, 1<<62+1)
	for i, tm := range times {
		seq, op := uint64(3+i), uint64(3+i)
		changes = append(changes, &crdt.Change{Actor: a, Seq: seq, StartOp: op, Time: tm,
			Ops: []crdt.Op{{Action: crdt.ActInsertText, Obj: text, Left: causal.OpID{Counter: op - 1, Actor: a}, Text: "b"}}})
	}
	readsBack(t, changes)
	smallBatches(t, 2, 3) // written behind
	readsBack(t, changes)
}
