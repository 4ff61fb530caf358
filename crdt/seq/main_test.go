package seq

import (
	"flag"
	"os"
	"testing"
)

// TestMain raises rapid's default number of cases so that a plain `go test`
// runs the differential test for a few seconds; -rapid.checks overrides it.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set {
		_ = flag.Set("rapid.checks", "1000")
	}
	os.Exit(m.Run())
}
