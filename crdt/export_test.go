package crdt

import (
	"flag"
	"strconv"
	"testing"
)

// What the external tests (package crdt_test, which may import encoding)
// reuse of the property workload.
var (
	RandomEdit  = randomEdit
	Fingerprint = fingerprint
	ActorN      = actorN
)

// LimitChecks runs the rest of the test with n rapid cases instead of the
// raised default of TestMain, unless -rapid.checks was given: for property
// tests too slow to run ten thousand times on every `go test`.
func LimitChecks(t *testing.T, n int) {
	if checksGiven {
		return
	}
	f := flag.Lookup("rapid.checks")
	old := f.Value.String()
	_ = f.Value.Set(strconv.Itoa(n))
	t.Cleanup(func() { _ = f.Value.Set(old) })
}
