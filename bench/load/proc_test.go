//go:build linux

package load

import (
	"os"
	"testing"
	"time"

	"github.com/converge-sync/converge/internal/cputime"
)

func TestUsageOfThisProcess(t *testing.T) {
	before, err := Usage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.RSSBytes <= 0 || before.PeakBytes < before.RSSBytes {
		t.Fatalf("rss %d, peak %d", before.RSSBytes, before.PeakBytes)
	}
	// Burn CPU until getrusage counts 0.2 s more (however busy the machine,
	// and so however long that takes): the reading must grow by about as
	// much, and agree with getrusage.
	for start, deadline := cputime.Used().Seconds(), time.Now().Add(time.Minute); cputime.Used().Seconds()-start < 0.2 && time.Now().Before(deadline); {
	}
	after, err := Usage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.CPUS-before.CPUS < 0.1 {
		t.Errorf("CPU %.2f s → %.2f s after 0.2 s of work by getrusage", before.CPUS, after.CPUS)
	}
	if self := cputime.Used().Seconds(); self < after.CPUS-0.05 || self > after.CPUS+0.2 {
		t.Errorf("/proc says %.2f s, getrusage %.2f s", after.CPUS, self)
	}
	if _, err := Usage(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
