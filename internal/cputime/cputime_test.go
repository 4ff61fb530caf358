//go:build unix

package cputime

import (
	"testing"
	"time"
)

// Work done shows in Used, and Used never goes back.
func TestUsedGrowsWithWork(t *testing.T) {
	start := Used()
	x := 0
	for deadline := time.Now().Add(time.Minute); Used()-start < 50*time.Millisecond && time.Now().Before(deadline); {
		for i := range 1_000_000 {
			x += i
		}
	}
	if used := Used() - start; used < 50*time.Millisecond {
		t.Fatalf("a busy loop used %v of CPU in a minute (x=%d)", used, x)
	}
}
