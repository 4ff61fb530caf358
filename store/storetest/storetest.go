package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/store"
)

// Run checks the store.Store contract. open must return a new, empty store
// each time it is called; Run closes every store it opens.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"AppendThenChanges", testAppendThenChanges},
		{"AppendOrder", testAppendOrder},
		{"Idempotent", testIdempotent},
		{"Conflict", testConflict},
		{"EmptyAppend", testEmptyAppend},
		{"BuffersNotShared", testBuffersNotShared},
		{"Snapshot", testSnapshot},
		{"SnapshotAheadOfLog", testSnapshotAheadOfLog},
		{"SnapshotNeverGoesBack", testSnapshotNeverGoesBack},
		{"SnapshotCreatesDoc", testSnapshotCreatesDoc},
		{"Docs", testDocs},
		{"Delete", testDelete},
		{"Deletions", testDeletions},
		{"NotFound", testNotFound},
		{"DocIDs", testDocIDs},
		{"BadChangeIDs", testBadChangeIDs},
		{"Closed", testClosed},
		{"ContextDone", testContextDone},
		{"Concurrent", testConcurrent},
		{"ConcurrentSameID", testConcurrentSameID},
		{"Model", testModel},
		{"Origins", testOrigins},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
}

func testAppendThenChanges(t *testing.T, s store.Store) {
	a1, b1, a2 := ch(actorA, 1, "a1"), ch(actorB, 1, "b1"), ch(actorA, 2, "a2")
	appendOK(t, s, "d", a1, b1)
	appendOK(t, s, "d", a2)

	wantChanges(t, "Changes(nil)", changes(t, s, "d", nil), []store.Change{a1, b1, a2})
	wantChanges(t, "Changes(empty)", changes(t, s, "d", causal.VersionVector{}), []store.Change{a1, b1, a2})
	wantChanges(t, "Changes({A:1})", changes(t, s, "d", causal.VersionVector{actorA: 1}), []store.Change{b1, a2})
	wantChanges(t, "Changes({B:1})", changes(t, s, "d", causal.VersionVector{actorB: 1}), []store.Change{a1, a2})
	// An actor the document never saw does not matter.
	wantChanges(t, "Changes({C:9 A:2})", changes(t, s, "d", causal.VersionVector{actorC: 9, actorA: 2}), []store.Change{b1})
	if got := changes(t, s, "d", causal.VersionVector{actorA: 2, actorB: 1}); len(got) != 0 {
		t.Fatalf("Changes(everything held) = %s, want none", fmtChanges(got))
	}
	// A version ahead of the store lacks nothing the store has.
	if got := changes(t, s, "d", causal.VersionVector{actorA: 7, actorB: 7}); len(got) != 0 {
		t.Fatalf("Changes(ahead) = %s, want none", fmtChanges(got))
	}
	wantVersion(t, "Version", version(t, s, "d"), causal.VersionVector{actorA: 2, actorB: 1})

	snap, log := load(t, s, "d")
	wantSnapshot(t, "Load without SaveSnapshot", snap, nil)
	wantChanges(t, "Load log", log, []store.Change{a1, b1, a2})
}

// Append order is the order of first arrival, across calls, even when it is
// not sequence order (a gap filled later).
func testAppendOrder(t *testing.T, s store.Store) {
	a1, a3, b1, a2, b2 := ch(actorA, 1, "a1"), ch(actorA, 3, "a3"), ch(actorB, 1, "b1"), ch(actorA, 2, "a2"), ch(actorB, 2, "b2")
	appendOK(t, s, "d", a1, a3)
	appendOK(t, s, "d", b1)
	appendOK(t, s, "d", a2, b2)
	wantChanges(t, "Changes(nil)", changes(t, s, "d", nil), []store.Change{a1, a3, b1, a2, b2})
	wantChanges(t, "Changes({A:1})", changes(t, s, "d", causal.VersionVector{actorA: 1}), []store.Change{a3, b1, a2, b2})
	wantChanges(t, "Changes({A:2 B:1})", changes(t, s, "d", causal.VersionVector{actorA: 2, actorB: 1}), []store.Change{a3, b2})
	_, log := load(t, s, "d")
	wantChanges(t, "Load log", log, []store.Change{a1, a3, b1, a2, b2})
}

func testIdempotent(t *testing.T, s store.Store) {
	a1, a2 := ch(actorA, 1, "a1"), ch(actorA, 2, "a2")
	appendOK(t, s, "d", a1)
	appendOK(t, s, "d", a1)
	appendOK(t, s, "d", a1, a2, a2, a1) // repeats inside one call too
	appendOK(t, s, "d", a2)
	wantChanges(t, "Changes", changes(t, s, "d", nil), []store.Change{a1, a2})
	ds := docs(t, s)
	wantDocs(t, "Docs", ds, []store.DocInfo{{ID: "d", Version: causal.VersionVector{actorA: 2}, LogChanges: 2, Bytes: 4}})
	// Empty bytes are a change like any other, and equal to themselves.
	e := store.Change{ID: causal.ChangeID{Actor: actorB, Seq: 1}}
	appendOK(t, s, "d", e)
	appendOK(t, s, "d", store.Change{ID: e.ID, Bytes: []byte{}})
	wantChanges(t, "Changes after empty change", changes(t, s, "d", nil), []store.Change{a1, a2, {ID: e.ID, Bytes: []byte{}}})
}

func testConflict(t *testing.T, s store.Store) {
	ctx := context.Background()
	a1, b1 := ch(actorA, 1, "a1"), ch(actorB, 1, "b1")
	appendOK(t, s, "d", a1)

	// The new change b1 comes before the conflicting one in the call, and
	// must not be stored either.
	err := s.Append(ctx, "d", []store.Change{b1, ch(actorA, 1, "other"), ch(actorA, 2, "a2")})
	wantErr(t, "Append with a conflicting change", err, store.ErrConflict)
	wantChanges(t, "Changes after refused call", changes(t, s, "d", nil), []store.Change{a1})
	wantVersion(t, "Version after refused call", version(t, s, "d"), causal.VersionVector{actorA: 1})

	// A conflict inside one call, on a new document: nothing is created.
	err = s.Append(ctx, "new", []store.Change{ch(actorA, 1, "x"), ch(actorA, 1, "y")})
	wantErr(t, "Append conflicting with itself", err, store.ErrConflict)
	_, err = s.Changes(ctx, "new", nil)
	wantErr(t, "Changes of a document whose only Append was refused", err, store.ErrNotFound)

	// Empty versus non-empty bytes differ.
	appendOK(t, s, "d", store.Change{ID: causal.ChangeID{Actor: actorC, Seq: 1}})
	err = s.Append(ctx, "d", []store.Change{ch(actorC, 1, "x")})
	wantErr(t, "Append of bytes over an empty change", err, store.ErrConflict)

	// The store still works after refusing.
	appendOK(t, s, "d", b1)
	wantChanges(t, "Changes at the end", changes(t, s, "d", nil), []store.Change{a1, {ID: causal.ChangeID{Actor: actorC, Seq: 1}, Bytes: []byte{}}, b1})
}

func testEmptyAppend(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, "Append(nil)", s.Append(ctx, "d", nil))
	must(t, "Append(empty)", s.Append(ctx, "d", []store.Change{}))
	_, err := s.Version(ctx, "d")
	wantErr(t, "Version after empty appends", err, store.ErrNotFound)
	if ds := docs(t, s); len(ds) != 0 {
		t.Fatalf("Docs after empty appends: %s", fmtInfos(ds))
	}
}

func testBuffersNotShared(t *testing.T, s store.Store) {
	ctx := context.Background()
	buf := []byte("first")
	must(t, "Append", s.Append(ctx, "d", []store.Change{{ID: causal.ChangeID{Actor: actorA, Seq: 1}, Bytes: buf}}))
	copy(buf, "XXXXX")
	got := changes(t, s, "d", nil)
	wantChanges(t, "Changes after the caller reused its buffer", got, []store.Change{ch(actorA, 1, "first")})
	copy(got[0].Bytes, "YYYYY")
	wantChanges(t, "Changes after the caller changed what it got", changes(t, s, "d", nil), []store.Change{ch(actorA, 1, "first")})

	snapBytes := []byte("snapshot")
	snapVersion := causal.VersionVector{actorA: 1}
	must(t, "SaveSnapshot", s.SaveSnapshot(ctx, "d", store.Snapshot{Version: snapVersion, Bytes: snapBytes}))
	copy(snapBytes, "ZZZZZZZZ")
	snapVersion[actorA] = 9
	snapVersion[actorB] = 9
	snap, _ := load(t, s, "d")
	wantSnapshot(t, "Load after the caller changed its snapshot", snap, &store.Snapshot{Version: causal.VersionVector{actorA: 1}, Bytes: []byte("snapshot")})
	snap.Bytes[0] = 'Q'
	snap.Version[actorC] = 4
	snap, _ = load(t, s, "d")
	wantSnapshot(t, "Load after the caller changed what it loaded", snap, &store.Snapshot{Version: causal.VersionVector{actorA: 1}, Bytes: []byte("snapshot")})

	v := version(t, s, "d")
	v[actorC] = 5
	wantVersion(t, "Version after the caller changed what it got", version(t, s, "d"), causal.VersionVector{actorA: 1})
	ds := docs(t, s)
	ds[0].Version[actorC] = 5
	wantVersion(t, "Docs version after the caller changed what it got", docs(t, s)[0].Version, causal.VersionVector{actorA: 1})
}

func testSnapshot(t *testing.T, s store.Store) {
	ctx := context.Background()
	a1, a2, a3, b1 := ch(actorA, 1, "a1"), ch(actorA, 2, "a2"), ch(actorA, 3, "a3"), ch(actorB, 1, "b1")
	appendOK(t, s, "d", a1, a2, b1, a3)
	snap := store.Snapshot{Version: causal.VersionVector{actorA: 2}, Bytes: []byte("state at A:2")}
	must(t, "SaveSnapshot", s.SaveSnapshot(ctx, "d", snap))

	got, log := load(t, s, "d")
	wantSnapshot(t, "Load snapshot", got, &snap)
	wantChanges(t, "Load log (pruned of the snapshot's changes)", log, []store.Change{b1, a3})
	wantChanges(t, "Changes(nil) after snapshot", changes(t, s, "d", nil), []store.Change{b1, a3})
	wantChanges(t, "Changes({B:1}) after snapshot", changes(t, s, "d", causal.VersionVector{actorB: 1}), []store.Change{a3})
	wantVersion(t, "Version across snapshot and log", version(t, s, "d"), causal.VersionVector{actorA: 3, actorB: 1})

	// Later appends come after what was left, in order.
	a4 := ch(actorA, 4, "a4")
	appendOK(t, s, "d", a4)
	_, log = load(t, s, "d")
	wantChanges(t, "Load log after a later append", log, []store.Change{b1, a3, a4})

	// The snapshot's changes are held: appending them again is a no-op,
	// whatever the bytes (they were folded away and cannot be compared).
	appendOK(t, s, "d", a1, ch(actorA, 2, "not comparable"))
	_, log = load(t, s, "d")
	wantChanges(t, "Load log after re-appending folded changes", log, []store.Change{b1, a3, a4})
	// Logged changes are still compared.
	wantErr(t, "Append conflicting with a logged change", s.Append(ctx, "d", []store.Change{ch(actorA, 3, "other")}), store.ErrConflict)

	wantDocs(t, "Docs", docs(t, s), []store.DocInfo{{
		ID: "d", Version: causal.VersionVector{actorA: 4, actorB: 1}, LogChanges: 3,
		Bytes: int64(len(snap.Bytes) + len("b1a3a4")),
	}})

	// A newer snapshot folds more and replaces the old one.
	snap2 := store.Snapshot{Version: causal.VersionVector{actorA: 4, actorB: 1}, Bytes: []byte("all")}
	must(t, "SaveSnapshot 2", s.SaveSnapshot(ctx, "d", snap2))
	got, log = load(t, s, "d")
	wantSnapshot(t, "Load snapshot 2", got, &snap2)
	wantChanges(t, "Load log after snapshot 2", log, nil)
	if cs := changes(t, s, "d", nil); len(cs) != 0 {
		t.Fatalf("Changes after folding everything: %s", fmtChanges(cs))
	}
	wantDocs(t, "Docs after snapshot 2", docs(t, s), []store.DocInfo{{ID: "d", Version: snap2.Version, LogChanges: 0, Bytes: 3}})
}

func testSnapshotAheadOfLog(t *testing.T, s store.Store) {
	ctx := context.Background()
	appendOK(t, s, "d", ch(actorA, 1, "a1"), ch(actorA, 2, "a2"), ch(actorB, 1, "b1"), ch(actorA, 3, "a3"))
	// A snapshot may hold changes this store never logged (built elsewhere).
	snap := store.Snapshot{Version: causal.VersionVector{actorA: 5, actorC: 2, actorB: 0}, Bytes: []byte("s")}
	must(t, "SaveSnapshot", s.SaveSnapshot(ctx, "d", snap))
	wantVersion(t, "Version", version(t, s, "d"), causal.VersionVector{actorA: 5, actorB: 1, actorC: 2})
	appendOK(t, s, "d", ch(actorA, 4, "a4"), ch(actorC, 3, "c3"))
	wantChanges(t, "Changes", changes(t, s, "d", nil), []store.Change{ch(actorB, 1, "b1"), ch(actorC, 3, "c3")})
	got, _ := load(t, s, "d")
	wantSnapshot(t, "Load", got, &snap)
}

func testSnapshotNeverGoesBack(t *testing.T, s store.Store) {
	ctx := context.Background()
	appendOK(t, s, "d", ch(actorA, 1, "a1"), ch(actorA, 2, "a2"), ch(actorB, 1, "b1"))
	first := store.Snapshot{Version: causal.VersionVector{actorA: 2}, Bytes: []byte("first")}
	must(t, "SaveSnapshot", s.SaveSnapshot(ctx, "d", first))

	for _, v := range []causal.VersionVector{
		{actorA: 1},             // behind
		{actorB: 1},             // concurrent
		{actorA: 1, actorB: 1},  // concurrent
		{},                      // empty
		nil,                     // empty
		{actorA: 0, actorC: 10}, // concurrent, with a zero entry
	} {
		err := s.SaveSnapshot(ctx, "d", store.Snapshot{Version: v, Bytes: []byte("stale")})
		wantErr(t, fmt.Sprintf("SaveSnapshot(%v) over %v", v, first.Version), err, store.ErrStaleSnapshot)
	}
	got, log := load(t, s, "d")
	wantSnapshot(t, "Load after refusals", got, &first)
	wantChanges(t, "log after refusals", log, []store.Change{ch(actorB, 1, "b1")})

	// The same version again is not going back: it replaces.
	same := store.Snapshot{Version: causal.VersionVector{actorA: 2}, Bytes: []byte("same, rewritten")}
	must(t, "SaveSnapshot of the same version", s.SaveSnapshot(ctx, "d", same))
	got, _ = load(t, s, "d")
	wantSnapshot(t, "Load after same version", got, &same)

	ahead := store.Snapshot{Version: causal.VersionVector{actorA: 2, actorB: 1}, Bytes: []byte("ahead")}
	must(t, "SaveSnapshot ahead", s.SaveSnapshot(ctx, "d", ahead))
	got, _ = load(t, s, "d")
	wantSnapshot(t, "Load after ahead", got, &ahead)
}

func testSnapshotCreatesDoc(t *testing.T, s store.Store) {
	ctx := context.Background()
	snap := store.Snapshot{Version: causal.VersionVector{actorA: 3}, Bytes: bytes.Repeat([]byte{0, 1, 2, 0xff}, 1000)}
	must(t, "SaveSnapshot", s.SaveSnapshot(ctx, "fresh", snap))
	got, log := load(t, s, "fresh")
	wantSnapshot(t, "Load", got, &snap)
	wantChanges(t, "Load log", log, nil)
	if cs := changes(t, s, "fresh", nil); len(cs) != 0 {
		t.Fatalf("Changes = %s, want none", fmtChanges(cs))
	}
	wantVersion(t, "Version", version(t, s, "fresh"), snap.Version)
	wantDocs(t, "Docs", docs(t, s), []store.DocInfo{{ID: "fresh", Version: snap.Version, Bytes: 4000}})

	// An empty snapshot of a new document is a document too.
	must(t, "SaveSnapshot empty", s.SaveSnapshot(ctx, "empty", store.Snapshot{}))
	got, _ = load(t, s, "empty")
	wantSnapshot(t, "Load empty", got, &store.Snapshot{Bytes: []byte{}})
}

func testDocs(t *testing.T, s store.Store) {
	ctx := context.Background()
	if ds := docs(t, s); len(ds) != 0 {
		t.Fatalf("Docs of an empty store: %s", fmtInfos(ds))
	}
	// Sorted by ID as bytes: "a" < "a/b" < "b" < "é" ("é" is 0xc3 0xa9).
	appendOK(t, s, "é", ch(actorA, 1, "x"))
	appendOK(t, s, "b", ch(actorA, 1, "xy"), ch(actorB, 1, "z"))
	appendOK(t, s, "a/b", ch(actorC, 7, "0123456789"))
	must(t, "SaveSnapshot a", s.SaveSnapshot(ctx, "a", store.Snapshot{Version: causal.VersionVector{actorB: 2}, Bytes: []byte("snap")}))
	appendOK(t, s, "a", ch(actorB, 1, "folded"), ch(actorB, 3, "b3"))
	wantDocs(t, "Docs", docs(t, s), []store.DocInfo{
		{ID: "a", Version: causal.VersionVector{actorB: 3}, LogChanges: 1, Bytes: 6},
		{ID: "a/b", Version: causal.VersionVector{actorC: 7}, LogChanges: 1, Bytes: 10},
		{ID: "b", Version: causal.VersionVector{actorA: 1, actorB: 1}, LogChanges: 2, Bytes: 3},
		{ID: "é", Version: causal.VersionVector{actorA: 1}, LogChanges: 1, Bytes: 1},
	})
}

func testDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	appendOK(t, s, "gone", ch(actorA, 1, "a1"), ch(actorA, 2, "a2"))
	must(t, "SaveSnapshot", s.SaveSnapshot(ctx, "gone", store.Snapshot{Version: causal.VersionVector{actorA: 1}, Bytes: []byte("s")}))
	appendOK(t, s, "kept", ch(actorA, 1, "k"))

	must(t, "Delete", s.Delete(ctx, "gone"))
	_, err := s.Changes(ctx, "gone", nil)
	wantErr(t, "Changes after Delete", err, store.ErrNotFound)
	_, _, err = s.Load(ctx, "gone")
	wantErr(t, "Load after Delete", err, store.ErrNotFound)
	_, err = s.Version(ctx, "gone")
	wantErr(t, "Version after Delete", err, store.ErrNotFound)
	wantDocs(t, "Docs after Delete", docs(t, s), []store.DocInfo{{ID: "kept", Version: causal.VersionVector{actorA: 1}, LogChanges: 1, Bytes: 1}})

	must(t, "Delete again", s.Delete(ctx, "gone"))
	must(t, "Delete of a document never written", s.Delete(ctx, "never"))

	// A document written after Delete starts empty: no old snapshot, no old
	// log, and the old changes are not "held" any more.
	appendOK(t, s, "gone", ch(actorA, 1, "new a1"))
	snap, log := load(t, s, "gone")
	wantSnapshot(t, "Load after re-creating", snap, nil)
	wantChanges(t, "log after re-creating", log, []store.Change{ch(actorA, 1, "new a1")})
	wantVersion(t, "Version after re-creating", version(t, s, "gone"), causal.VersionVector{actorA: 1})
	wantChanges(t, "other document untouched", changes(t, s, "kept", nil), []store.Change{ch(actorA, 1, "k")})
}

// Deletions counts the times Delete removed a document: what a replica
// numbers a document's incarnations by, so it must never go back.
func testDeletions(t *testing.T, s store.Store) {
	ctx := context.Background()
	want := func(what, doc string, n uint64) {
		t.Helper()
		if got := deletions(t, s, doc); got != n {
			t.Fatalf("%s: Deletions(%q) = %d, want %d", what, doc, got, n)
		}
	}
	want("a document never written", "d", 0)
	appendOK(t, s, "d", ch(actorA, 1, "a1"))
	appendOK(t, s, "other", ch(actorA, 1, "o"))
	want("a document never deleted", "d", 0)

	must(t, "Delete", s.Delete(ctx, "d"))
	want("after Delete", "d", 1)
	must(t, "Delete again", s.Delete(ctx, "d"))
	want("after deleting a deleted document", "d", 1)
	must(t, "Delete of a document never written", s.Delete(ctx, "never"))
	want("after deleting a document never written", "never", 0)
	want("another document", "other", 0)

	// A tombstone is not a document.
	wantDocs(t, "Docs with a tombstone", docs(t, s), []store.DocInfo{{ID: "other", Version: causal.VersionVector{actorA: 1}, LogChanges: 1, Bytes: 1}})
	_, err := s.Version(ctx, "d")
	wantErr(t, "Version of a deleted document", err, store.ErrNotFound)

	// Written again, the document keeps its count, and the next Delete
	// counts on from it, whether the document was written by Append or by
	// SaveSnapshot.
	appendOK(t, s, "d", ch(actorA, 1, "new a1"))
	want("a document written again", "d", 1)
	must(t, "Delete", s.Delete(ctx, "d"))
	want("after the second Delete", "d", 2)
	must(t, "SaveSnapshot", s.SaveSnapshot(ctx, "d", store.Snapshot{Version: causal.VersionVector{actorB: 1}, Bytes: []byte("s")}))
	must(t, "Delete", s.Delete(ctx, "d"))
	want("after the third Delete", "d", 3)
	want("another document", "other", 0)
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	appendOK(t, s, "other", ch(actorA, 1, "x"))
	_, err := s.Changes(ctx, "missing", nil)
	wantErr(t, "Changes", err, store.ErrNotFound)
	_, _, err = s.Load(ctx, "missing")
	wantErr(t, "Load", err, store.ErrNotFound)
	_, err = s.Version(ctx, "missing")
	wantErr(t, "Version", err, store.ErrNotFound)
	// Names differing only slightly are different documents.
	_, err = s.Version(ctx, "Other")
	wantErr(t, "Version of a name differing in case", err, store.ErrNotFound)
	_, err = s.Version(ctx, "other ")
	wantErr(t, "Version of a name with a trailing space", err, store.ErrNotFound)
}

func testDocIDs(t *testing.T, s store.Store) {
	ctx := context.Background()
	bad := map[string]string{
		"empty":        "",
		"too long":     strings.Repeat("x", store.MaxDocIDLen+1),
		"invalid UTF8": "a\xffb",
		"cut rune":     "\xc3",
	}
	for what, id := range bad {
		wantErr(t, "Append "+what, s.Append(ctx, id, []store.Change{ch(actorA, 1, "x")}), store.ErrBadDocID)
		wantErr(t, "Append of nothing "+what, s.Append(ctx, id, nil), store.ErrBadDocID)
		_, err := s.Changes(ctx, id, nil)
		wantErr(t, "Changes "+what, err, store.ErrBadDocID)
		_, _, err = s.Load(ctx, id)
		wantErr(t, "Load "+what, err, store.ErrBadDocID)
		wantErr(t, "SaveSnapshot "+what, s.SaveSnapshot(ctx, id, store.Snapshot{Bytes: []byte("s")}), store.ErrBadDocID)
		_, err = s.Version(ctx, id)
		wantErr(t, "Version "+what, err, store.ErrBadDocID)
		wantErr(t, "Delete "+what, s.Delete(ctx, id), store.ErrBadDocID)
		_, err = s.Deletions(ctx, id)
		wantErr(t, "Deletions "+what, err, store.ErrBadDocID)
	}
	if ds := docs(t, s); len(ds) != 0 {
		t.Fatalf("Docs after bad IDs: %s", fmtInfos(ds))
	}

	good := []string{
		"x",
		"users/42/notes",
		"/leading/and/trailing/",
		"a\x00b", // NUL is valid UTF-8
		"日本語のノート",
		"emoji 🎉",
		strings.Repeat("y", store.MaxDocIDLen),
		strings.Repeat("é", store.MaxDocIDLen/2),
		"%_*'\";--", // nothing a SQL backend may treat specially
	}
	for i, id := range good {
		c := ch(actorA, uint64(i+1), id)
		appendOK(t, s, id, c)
		wantChanges(t, fmt.Sprintf("Changes(%q)", id), changes(t, s, id, nil), []store.Change{c})
	}
	ds := docs(t, s)
	if len(ds) != len(good) {
		t.Fatalf("Docs lists %d documents, want %d: %s", len(ds), len(good), fmtInfos(ds))
	}
	for i := 1; i < len(ds); i++ {
		if ds[i-1].ID >= ds[i].ID {
			t.Fatalf("Docs not sorted: %q before %q", ds[i-1].ID, ds[i].ID)
		}
	}
	for _, id := range good {
		must(t, fmt.Sprintf("Delete(%q)", id), s.Delete(ctx, id))
	}
	if ds := docs(t, s); len(ds) != 0 {
		t.Fatalf("Docs after deleting all: %s", fmtInfos(ds))
	}
	// Each name has a tombstone of its own: names that differ by a byte
	// do not share one.
	must(t, "Delete(\"x\") again", s.Delete(ctx, "x"))
	appendOK(t, s, "x", ch(actorA, 1, "x"))
	must(t, "Delete(\"x\")", s.Delete(ctx, "x"))
	for _, id := range good {
		want := uint64(1)
		if id == "x" {
			want = 2
		}
		if n := deletions(t, s, id); n != want {
			t.Fatalf("Deletions(%q) = %d, want %d", id, n, want)
		}
	}
	if n := deletions(t, s, "X"); n != 0 {
		t.Fatalf("Deletions(\"X\") = %d, want 0", n)
	}
}

func testBadChangeIDs(t *testing.T, s store.Store) {
	ctx := context.Background()
	for what, id := range map[string]causal.ChangeID{
		"zero actor":    {Seq: 1},
		"zero seq":      {Actor: actorA},
		"seq too large": {Actor: actorA, Seq: store.MaxSeq + 1},
	} {
		err := s.Append(ctx, "d", []store.Change{ch(actorB, 1, "ok"), {ID: id, Bytes: []byte("x")}})
		wantErr(t, "Append "+what, err, store.ErrBadChangeID)
		err = s.SaveSnapshot(ctx, "d", store.Snapshot{Version: causal.VersionVector{id.Actor: max(id.Seq, 1)}, Bytes: []byte("s")})
		if id.Seq != 0 { // a zero seq in a version is an empty entry, not an error
			wantErr(t, "SaveSnapshot "+what, err, store.ErrBadChangeID)
		} else {
			must(t, "SaveSnapshot with a plain entry", err)
			must(t, "Delete", s.Delete(ctx, "d"))
		}
	}
	_, err := s.Version(ctx, "d")
	wantErr(t, "Version after refused calls", err, store.ErrNotFound)

	top := ch(actorA, store.MaxSeq, "top")
	appendOK(t, s, "d", top)
	wantVersion(t, "Version with MaxSeq", version(t, s, "d"), causal.VersionVector{actorA: store.MaxSeq})
	wantChanges(t, "Changes({A:MaxSeq-1})", changes(t, s, "d", causal.VersionVector{actorA: store.MaxSeq - 1}), []store.Change{top})
	// A since beyond MaxSeq (from a hostile peer) lacks nothing.
	if cs := changes(t, s, "d", causal.VersionVector{actorA: ^uint64(0)}); len(cs) != 0 {
		t.Fatalf("Changes(since max uint64) = %s", fmtChanges(cs))
	}
}

func testClosed(t *testing.T, s store.Store) {
	ctx := context.Background()
	appendOK(t, s, "d", ch(actorA, 1, "x"))
	must(t, "Close", s.Close())
	wantErr(t, "Append", s.Append(ctx, "d", []store.Change{ch(actorA, 2, "y")}), store.ErrClosed)
	wantErr(t, "Append of nothing", s.Append(ctx, "d", nil), store.ErrClosed)
	_, err := s.Changes(ctx, "d", nil)
	wantErr(t, "Changes", err, store.ErrClosed)
	_, _, err = s.Load(ctx, "d")
	wantErr(t, "Load", err, store.ErrClosed)
	wantErr(t, "SaveSnapshot", s.SaveSnapshot(ctx, "d", store.Snapshot{Bytes: []byte("s")}), store.ErrClosed)
	_, err = s.Version(ctx, "d")
	wantErr(t, "Version", err, store.ErrClosed)
	_, err = s.Docs(ctx)
	wantErr(t, "Docs", err, store.ErrClosed)
	wantErr(t, "Delete", s.Delete(ctx, "d"), store.ErrClosed)
	_, err = s.Origins(ctx, "d")
	wantErr(t, "Origins", err, store.ErrClosed)
	_, err = s.Deletions(ctx, "d")
	wantErr(t, "Deletions", err, store.ErrClosed)
	wantErr(t, "Close again", s.Close(), store.ErrClosed)
}

func testContextDone(t *testing.T, s store.Store) {
	bg := context.Background()
	appendOK(t, s, "d", ch(actorA, 1, "a1"))
	must(t, "SaveSnapshot", s.SaveSnapshot(bg, "d", store.Snapshot{Version: causal.VersionVector{actorA: 1}, Bytes: []byte("s1")}))
	appendOK(t, s, "d", ch(actorA, 2, "a2"))

	ctx, cancel := context.WithCancel(bg)
	cancel()
	wantErr(t, "Append", s.Append(ctx, "d", []store.Change{ch(actorA, 3, "a3")}), context.Canceled)
	wantErr(t, "Append to a new document", s.Append(ctx, "new", []store.Change{ch(actorA, 1, "n")}), context.Canceled)
	wantErr(t, "SaveSnapshot", s.SaveSnapshot(ctx, "d", store.Snapshot{Version: causal.VersionVector{actorA: 2}, Bytes: []byte("s2")}), context.Canceled)
	wantErr(t, "Delete", s.Delete(ctx, "d"), context.Canceled)
	_, err := s.Changes(ctx, "d", nil)
	wantErr(t, "Changes", err, context.Canceled)
	_, _, err = s.Load(ctx, "d")
	wantErr(t, "Load", err, context.Canceled)
	_, err = s.Version(ctx, "d")
	wantErr(t, "Version", err, context.Canceled)
	_, err = s.Docs(ctx)
	wantErr(t, "Docs", err, context.Canceled)
	_, err = s.Origins(ctx, "d")
	wantErr(t, "Origins", err, context.Canceled)
	_, err = s.Deletions(ctx, "d")
	wantErr(t, "Deletions", err, context.Canceled)

	// Nothing of the cancelled calls happened.
	snap, log := load(t, s, "d")
	wantSnapshot(t, "snapshot after cancelled calls", snap, &store.Snapshot{Version: causal.VersionVector{actorA: 1}, Bytes: []byte("s1")})
	wantChanges(t, "log after cancelled calls", log, []store.Change{ch(actorA, 2, "a2")})
	wantDocs(t, "Docs after cancelled calls", docs(t, s), []store.DocInfo{{ID: "d", Version: causal.VersionVector{actorA: 2}, LogChanges: 1, Bytes: 4}})
	if n := deletions(t, s, "d"); n != 0 {
		t.Fatalf("Deletions after a cancelled Delete = %d, want 0", n)
	}
}

// Many writers to several documents at once, with readers alongside. Run
// it with -race.
func testConcurrent(t *testing.T, s store.Store) {
	const writers, nDocs, perDoc = 6, 3, 12
	ctx := context.Background()
	docName := func(d int) string { return fmt.Sprintf("doc/%d", d) }
	payload := func(w, d int, seq uint64) []byte { return fmt.Appendf(nil, "w%d d%d s%d", w, d, seq) }

	var wg sync.WaitGroup
	errs := make(chan error, writers*nDocs*perDoc+16)
	done := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := actor(100 + w)
			for seq := uint64(1); seq <= perDoc; seq++ {
				for d := range nDocs {
					c := store.Change{ID: causal.ChangeID{Actor: a, Seq: seq}, Bytes: payload(w, d, seq)}
					batch := []store.Change{c}
					if seq > 1 && seq%3 == 0 { // re-send the previous change too: a no-op
						batch = append(batch, store.Change{ID: causal.ChangeID{Actor: a, Seq: seq - 1}, Bytes: payload(w, d, seq-1)})
					}
					if err := s.Append(ctx, docName(d), batch); err != nil {
						errs <- fmt.Errorf("writer %d: Append(%s, %v): %w", w, docName(d), c.ID, err)
						return
					}
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for r := range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				doc := docName(i % nDocs)
				v, err := s.Version(ctx, doc)
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("reader %d: Version: %w", r, err)
					return
				}
				// What a version names is held: Changes since nothing
				// returns at least that many changes, each actor in order.
				cs, err := s.Changes(ctx, doc, nil)
				if err != nil {
					errs <- fmt.Errorf("reader %d: Changes: %w", r, err)
					return
				}
				if uint64(len(cs)) < v.Total() {
					errs <- fmt.Errorf("reader %d: %s: version %v names %d changes, Changes returned %d", r, doc, v, v.Total(), len(cs))
					return
				}
				if _, err := s.Docs(ctx); err != nil {
					errs <- fmt.Errorf("reader %d: Docs: %w", r, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	want := causal.VersionVector{}
	for w := range writers {
		want[actor(100+w)] = perDoc
	}
	for d := range nDocs {
		doc := docName(d)
		wantVersion(t, "Version("+doc+")", version(t, s, doc), want)
		cs := changes(t, s, doc, nil)
		if len(cs) != writers*perDoc {
			t.Fatalf("%s: %d changes, want %d", doc, len(cs), writers*perDoc)
		}
		last := map[causal.ActorID]uint64{}
		for _, c := range cs {
			if c.ID.Seq != last[c.ID.Actor]+1 {
				t.Fatalf("%s: %v follows seq %d of its actor: append order lost", doc, c.ID, last[c.ID.Actor])
			}
			last[c.ID.Actor] = c.ID.Seq
			w := int(c.ID.Actor[0]) - 100
			if !bytes.Equal(c.Bytes, payload(w, d, c.ID.Seq)) {
				t.Fatalf("%s: %v holds %q", doc, c.ID, c.Bytes)
			}
		}
	}
}

// Many goroutines append the same change ID at once: with the same bytes
// all succeed and one copy is kept; with two different byte strings, the
// ones that lose the race get ErrConflict and the stored bytes are the
// winners'.
func testConcurrentSameID(t *testing.T, s store.Store) {
	const n = 8
	ctx := context.Background()
	id := causal.ChangeID{Actor: actorA, Seq: 1}
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.Append(ctx, "same", []store.Change{{ID: id, Bytes: []byte("one")}})
		}()
	}
	wg.Wait()
	for i, err := range results {
		must(t, fmt.Sprintf("Append %d of the same change", i), err)
	}
	wantChanges(t, "Changes", changes(t, s, "same", nil), []store.Change{{ID: id, Bytes: []byte("one")}})

	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.Append(ctx, "race", []store.Change{{ID: id, Bytes: []byte{byte('a' + i%2)}}})
		}()
	}
	wg.Wait()
	cs := changes(t, s, "race", nil)
	if len(cs) != 1 {
		t.Fatalf("Changes after racing appends: %s", fmtChanges(cs))
	}
	for i, err := range results {
		mine := byte('a' + i%2)
		switch {
		case err == nil && cs[0].Bytes[0] != mine:
			t.Fatalf("Append %d of %q succeeded but %q is stored", i, mine, cs[0].Bytes)
		case err != nil && !errors.Is(err, store.ErrConflict):
			t.Fatalf("Append %d: %v", i, err)
		case err != nil && cs[0].Bytes[0] == mine:
			t.Fatalf("Append %d of %q conflicted with the same bytes", i, mine)
		}
	}
}

// testModel runs random histories against the store and the model, and
// compares them after every step.
func testModel(t *testing.T, s store.Store) {
	steps := 150
	if testing.Short() {
		steps = 60
	}
	m := newModel() // one store, so one model for both seeds
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			h := newHistory(seed, fmt.Sprintf("seed%d/", seed))
			h.m = m
			for i := range steps {
				h.step(t, s, i)
			}
			checkModel(t, s, h.m)
		})
	}
}

// history makes random operations that hit the interesting cases often:
// duplicates, conflicts, gaps, stale snapshots, deletions.
type history struct {
	rng    *rand.Rand
	m      *model
	prefix string
	docs   []string
	actors []causal.ActorID
	gen    map[string]map[causal.ActorID]uint64 // highest seq made so far
}

func newHistory(seed uint64, prefix string) *history {
	h := &history{
		rng:    rand.New(rand.NewPCG(seed, 0x5eed)),
		m:      newModel(),
		prefix: prefix,
		actors: []causal.ActorID{actorA, actorB, actorC},
		gen:    map[string]map[causal.ActorID]uint64{},
	}
	for _, d := range []string{"a", "b/c", "d"} {
		h.docs = append(h.docs, prefix+d)
		h.gen[prefix+d] = map[causal.ActorID]uint64{}
	}
	return h
}

func (h *history) payload(doc string, id causal.ChangeID, variant int) []byte {
	return fmt.Appendf(nil, "%s|%s|%d|%s", doc, id, variant, strings.Repeat("~", int(id.Seq%7)))
}

func (h *history) step(t *testing.T, s store.Store, i int) {
	t.Helper()
	ctx := context.Background()
	doc := h.docs[h.rng.IntN(len(h.docs))]
	switch r := h.rng.IntN(100); {
	case r < 70:
		var cs []store.Change
		for range 1 + h.rng.IntN(3) {
			a := h.actors[h.rng.IntN(len(h.actors))]
			g := h.gen[doc][a]
			seq := 1 + uint64(h.rng.IntN(int(g)+2)) // old (a repeat), next, or a gap
			if seq > g {
				h.gen[doc][a] = seq
			}
			variant := 0
			if h.rng.IntN(20) == 0 {
				variant = 1 // same ID, other bytes
			}
			cs = append(cs, store.Change{ID: causal.ChangeID{Actor: a, Seq: seq}, Bytes: h.payload(doc, causal.ChangeID{Actor: a, Seq: seq}, variant)})
		}
		want := h.m.append(doc, cs)
		got := s.Append(ctx, doc, cs)
		if !errors.Is(got, want) && !(want == nil && got == nil) {
			t.Fatalf("step %d: Append(%q, %s) = %v, want %v", i, doc, fmtChanges(cs), got, want)
		}
	case r < 85:
		v := causal.VersionVector{}
		if d := h.m.docs[doc]; d != nil && h.rng.IntN(3) > 0 {
			v = d.version() // compaction of everything held, the usual case
			for a := range v {
				if h.rng.IntN(3) == 0 {
					v[a] -= uint64(h.rng.IntN(int(v[a]) + 1)) // sometimes less
				}
			}
		} else {
			for _, a := range h.actors {
				v[a] = uint64(h.rng.IntN(4))
			}
		}
		snap := store.Snapshot{Version: v, Bytes: fmt.Appendf(nil, "snapshot %d of %s", i, doc)}
		want := h.m.saveSnapshot(doc, snap)
		got := s.SaveSnapshot(ctx, doc, snap)
		if !errors.Is(got, want) && !(want == nil && got == nil) {
			t.Fatalf("step %d: SaveSnapshot(%q, %v) = %v, want %v", i, doc, v, got, want)
		}
	case r < 88:
		h.m.delete(doc)
		h.gen[doc] = map[causal.ActorID]uint64{}
		must(t, fmt.Sprintf("step %d: Delete(%q)", i, doc), s.Delete(ctx, doc))
	default:
		d := h.m.docs[doc]
		if d == nil {
			_, err := s.Changes(ctx, doc, nil)
			wantErr(t, fmt.Sprintf("step %d: Changes(%q) of a missing document", i, doc), err, store.ErrNotFound)
			return
		}
		since := causal.VersionVector{}
		for _, a := range h.actors {
			since[a] = uint64(h.rng.IntN(int(h.gen[doc][a]) + 2))
		}
		wantChanges(t, fmt.Sprintf("step %d: Changes(%q, %v)", i, doc, since), changes(t, s, doc, since), h.m.changes(doc, since))
	}
	if i%10 == 9 {
		checkModel(t, s, h.m)
	}
}
