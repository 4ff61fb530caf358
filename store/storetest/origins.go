package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/store"
)

func from(c store.Change, subject string) store.Change {
	c.Origin = subject
	return c
}

func origins(t testing.TB, s store.Store, doc string) []store.Origin {
	t.Helper()
	o, err := s.Origins(context.Background(), doc)
	must(t, "Origins", err)
	return o
}

func fmtOrigins(os []store.Origin) string {
	var b strings.Builder
	for _, o := range os {
		fmt.Fprintf(&b, "[%s %d-%d %q]", o.Actor.Short(), o.First, o.Last, o.Subject)
	}
	return b.String()
}

func wantOrigins(t testing.TB, what string, got, want []store.Origin) {
	t.Helper()
	if fmtOrigins(got) != fmtOrigins(want) {
		t.Fatalf("%s:\n got %s\nwant %s", what, fmtOrigins(got), fmtOrigins(want))
	}
}

func run(a causal.ActorID, first, last uint64, subject string) store.Origin {
	return store.Origin{Actor: a, First: first, Last: last, Subject: subject}
}

// Append records who sent each stored change, as maximal runs per actor;
// a change already held keeps its first sender; the record outlives
// snapshots and goes with Delete.
func testOrigins(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.Origins(ctx, "d")
	wantErr(t, "Origins of a document never written", err, store.ErrNotFound)

	appendOK(t, s, "d", from(ch(actorA, 1, "a1"), "ann"), from(ch(actorA, 2, "a2"), "ann"), ch(actorB, 1, "b1"))
	wantOrigins(t, "first append", origins(t, s, "d"), []store.Origin{run(actorA, 1, 2, "ann")})

	// The same run grows across calls; another subject starts another run.
	appendOK(t, s, "d", from(ch(actorA, 3, "a3"), "ann"), from(ch(actorB, 2, "b2"), "bob"))
	appendOK(t, s, "d", from(ch(actorA, 4, "a4"), "bob"))
	wantOrigins(t, "runs", origins(t, s, "d"), []store.Origin{run(actorA, 1, 3, "ann"), run(actorA, 4, 4, "bob"), run(actorB, 2, 2, "bob")})

	// A change already held keeps its first origin, even sent again by
	// someone else.
	appendOK(t, s, "d", from(ch(actorA, 2, "a2"), "eve"), from(ch(actorB, 1, "b1"), "eve"))
	wantOrigins(t, "resent", origins(t, s, "d"), []store.Origin{run(actorA, 1, 3, "ann"), run(actorA, 4, 4, "bob"), run(actorB, 2, 2, "bob")})

	// A gap filled joins the runs on both sides.
	appendOK(t, s, "d", from(ch(actorC, 1, "c1"), "cy"), from(ch(actorC, 3, "c3"), "cy"))
	appendOK(t, s, "d", from(ch(actorC, 2, "c2"), "cy"))
	wantOrigins(t, "gap filled", origins(t, s, "d")[3:], []store.Origin{run(actorC, 1, 3, "cy")})

	// A call refused for a conflict records nothing.
	wantErr(t, "conflicting Append", s.Append(ctx, "d", []store.Change{from(ch(actorC, 4, "c4"), "mal"), from(ch(actorA, 1, "other"), "mal")}), store.ErrConflict)
	wantOrigins(t, "after a refused call", origins(t, s, "d")[3:], []store.Origin{run(actorC, 1, 3, "cy")})

	// Snapshots fold the log away, not the record of who sent it.
	must(t, "SaveSnapshot", s.SaveSnapshot(ctx, "d", store.Snapshot{Version: causal.VersionVector{actorA: 4, actorB: 2, actorC: 3}, Bytes: []byte("s")}))
	wantOrigins(t, "after a snapshot", origins(t, s, "d"), []store.Origin{
		run(actorA, 1, 3, "ann"), run(actorA, 4, 4, "bob"), run(actorB, 2, 2, "bob"), run(actorC, 1, 3, "cy")})

	// A document with changes but no origins lists none (not ErrNotFound).
	appendOK(t, s, "local", ch(actorA, 1, "x"))
	if o := origins(t, s, "local"); len(o) != 0 {
		t.Fatalf("origins of local changes: %s", fmtOrigins(o))
	}

	must(t, "Delete", s.Delete(ctx, "d"))
	_, err = s.Origins(ctx, "d")
	wantErr(t, "Origins after Delete", err, store.ErrNotFound)
	appendOK(t, s, "d", from(ch(actorA, 1, "new"), "zed"))
	wantOrigins(t, "re-created", origins(t, s, "d"), []store.Origin{run(actorA, 1, 1, "zed")})

	// Subjects are kept as given, whatever their bytes.
	odd := "ünï/cødé \x00 " + strings.Repeat("x", 300)
	appendOK(t, s, "odd", from(ch(actorB, 1, "x"), odd))
	wantOrigins(t, "odd subject", origins(t, s, "odd"), []store.Origin{run(actorB, 1, 1, odd)})
}
