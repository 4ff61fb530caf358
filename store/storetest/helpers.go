package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/store"
)

// Actors used throughout: fixed, so that failures read the same every run.
var (
	actorA = actor(1)
	actorB = actor(2)
	actorC = actor(3)
)

func actor(i int) causal.ActorID {
	var a causal.ActorID
	a[0], a[1] = byte(i), byte(i>>8)
	a[15] = 0xa5 // never the zero actor
	return a
}

func ch(a causal.ActorID, seq uint64, payload string) store.Change {
	return store.Change{ID: causal.ChangeID{Actor: a, Seq: seq}, Bytes: []byte(payload)}
}

func fmtChanges(cs []store.Change) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, c := range cs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%v=%q", c.ID, c.Bytes)
	}
	b.WriteByte(']')
	return b.String()
}

func sameChanges(a, b []store.Change) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || !bytes.Equal(a[i].Bytes, b[i].Bytes) {
			return false
		}
	}
	return true
}

func wantChanges(t testing.TB, what string, got, want []store.Change) {
	t.Helper()
	if !sameChanges(got, want) {
		t.Fatalf("%s:\n got %s\nwant %s", what, fmtChanges(got), fmtChanges(want))
	}
}

func sameVersion(a, b causal.VersionVector) bool {
	return clean(a).Compare(clean(b)) == causal.Equal
}

func wantVersion(t testing.TB, what string, got, want causal.VersionVector) {
	t.Helper()
	if !sameVersion(got, want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func appendOK(t testing.TB, s store.Store, doc string, cs ...store.Change) {
	t.Helper()
	must(t, fmt.Sprintf("Append(%q, %s)", doc, fmtChanges(cs)), s.Append(context.Background(), doc, cs))
}

func changes(t testing.TB, s store.Store, doc string, since causal.VersionVector) []store.Change {
	t.Helper()
	cs, err := s.Changes(context.Background(), doc, since)
	must(t, fmt.Sprintf("Changes(%q, %v)", doc, since), err)
	return cs
}

func version(t testing.TB, s store.Store, doc string) causal.VersionVector {
	t.Helper()
	v, err := s.Version(context.Background(), doc)
	must(t, fmt.Sprintf("Version(%q)", doc), err)
	return v
}

func load(t testing.TB, s store.Store, doc string) (*store.Snapshot, []store.Change) {
	t.Helper()
	snap, cs, err := s.Load(context.Background(), doc)
	must(t, fmt.Sprintf("Load(%q)", doc), err)
	return snap, cs
}

func docs(t testing.TB, s store.Store) []store.DocInfo {
	t.Helper()
	ds, err := s.Docs(context.Background())
	must(t, "Docs", err)
	return ds
}

func wantSnapshot(t testing.TB, what string, got *store.Snapshot, want *store.Snapshot) {
	t.Helper()
	switch {
	case want == nil && got == nil:
		return
	case want == nil:
		t.Fatalf("%s: got snapshot %v %q, want none", what, got.Version, got.Bytes)
	case got == nil:
		t.Fatalf("%s: got no snapshot, want %v %q", what, want.Version, want.Bytes)
	}
	if !sameVersion(got.Version, want.Version) || !bytes.Equal(got.Bytes, want.Bytes) {
		t.Fatalf("%s: got snapshot %v (%d bytes), want %v (%d bytes)", what, got.Version, len(got.Bytes), want.Version, len(want.Bytes))
	}
}

func wantDocs(t testing.TB, what string, got, want []store.DocInfo) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		g, w := got[i], want[i]
		ok = g.ID == w.ID && sameVersion(g.Version, w.Version) && g.LogChanges == w.LogChanges && g.Bytes == w.Bytes
	}
	if !ok {
		t.Fatalf("%s:\n got %s\nwant %s", what, fmtInfos(got), fmtInfos(want))
	}
}

func fmtInfos(ds []store.DocInfo) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "\n  {%q %v log=%d bytes=%d}", d.ID, d.Version, d.LogChanges, d.Bytes)
	}
	return b.String()
}

// checkModel compares everything s can say with what m says it must.
func checkModel(t testing.TB, s store.Store, m *model) {
	t.Helper()
	wantDocs(t, "Docs", docs(t, s), m.infos())
	for id, d := range m.docs {
		snap, log := load(t, s, id)
		wantSnapshot(t, fmt.Sprintf("Load(%q) snapshot", id), snap, d.snap)
		wantChanges(t, fmt.Sprintf("Load(%q) log", id), log, d.log)
		wantChanges(t, fmt.Sprintf("Changes(%q, nil)", id), changes(t, s, id, nil), d.log)
		wantVersion(t, fmt.Sprintf("Version(%q)", id), version(t, s, id), d.version())
	}
	for id, n := range m.deletions {
		if got := deletions(t, s, id); got != n {
			t.Fatalf("Deletions(%q) = %d, want %d", id, got, n)
		}
	}
}

func deletions(t testing.TB, s store.Store, doc string) uint64 {
	t.Helper()
	n, err := s.Deletions(context.Background(), doc)
	must(t, fmt.Sprintf("Deletions(%q)", doc), err)
	return n
}
