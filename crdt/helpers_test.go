package crdt

import (
	"fmt"
	"strings"
	"testing"

	"github.com/converge-sync/converge/causal"
)

func actorN(n byte) causal.ActorID { return causal.ActorID{0: n, 15: n} }

// change runs fn as a local change on d and fails the test on error.
func change(t testing.TB, d *Doc, fn func(tx *Txn) error) *Change {
	t.Helper()
	c, _, err := d.Change(ChangeOptions{Time: 1000}, fn)
	if err != nil {
		t.Fatalf("change: %v", err)
	}
	return c
}

// merge delivers to dst every change src has that dst lacks.
func merge(t testing.TB, dst, src *Doc) []Patch {
	t.Helper()
	p, err := dst.Apply(src.ChangesSince(dst.Version())...)
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	return p
}

// syncAll brings every doc to the union of all their changes.
func syncAll(t testing.TB, docs ...*Doc) {
	t.Helper()
	for _, a := range docs {
		for _, b := range docs {
			if a != b {
				merge(t, a, b)
			}
		}
	}
}

// fingerprint is everything about a document that must be equal on replicas
// holding the same changes: content, conflicts with all candidates, heads.
func fingerprint(d *Doc) string {
	var b strings.Builder
	b.Write(d.JSON())
	for _, c := range d.Conflicts() {
		fmt.Fprintf(&b, "\n%s:", c.Path)
		for _, v := range c.Candidates {
			fmt.Fprintf(&b, " %v=%s", v.Op, d.ValueJSON(v.Value))
		}
	}
	fmt.Fprintf(&b, "\nheads %v", d.Heads())
	return b.String()
}

func mustEqualDocs(t testing.TB, docs ...*Doc) {
	t.Helper()
	want := fingerprint(docs[0])
	for i, d := range docs[1:] {
		if got := fingerprint(d); got != want {
			t.Fatalf("replica %d differs from replica 0:\n%s\n---\n%s", i+1, got, want)
		}
	}
}

func jsonOf(d *Doc) string { return string(d.JSON()) }
