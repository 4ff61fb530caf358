//go:build linux

package load

import (
	"os"
	"testing"
	"time"
)

func TestUsageOfThisProcess(t *testing.T) {
	before, err := Usage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.RSSBytes <= 0 || before.PeakBytes < before.RSSBytes {
		t.Fatalf("rss %d, peak %d", before.RSSBytes, before.PeakBytes)
	}
	// Burn some CPU: the reading must grow, and agree with getrusage.
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
	}
	after, err := Usage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.CPUS-before.CPUS < 0.1 {
		t.Errorf("CPU %.2f s → %.2f s after 0.3 s of work", before.CPUS, after.CPUS)
	}
	if self := cpuSeconds(); self < after.CPUS-0.05 || self > after.CPUS+0.2 {
		t.Errorf("/proc says %.2f s, getrusage %.2f s", after.CPUS, self)
	}
	if _, err := Usage(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
