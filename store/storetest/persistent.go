package storetest

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/store"
)

// RunPersistent checks that a backend keeping data on disk loses nothing
// across Close and a new open of the same folder: logs in append order,
// snapshots, versions, deletions, and the refusal of stale snapshots. open
// must open (creating if needed) the store kept in dir; RunPersistent
// closes every store it opens.
func RunPersistent(t *testing.T, open func(t *testing.T, dir string) store.Store) {
	t.Run("Reopen", func(t *testing.T) {
		ctx := context.Background()
		dir := t.TempDir()
		s := open(t, dir)
		closeOK := func() { must(t, "Close", s.Close()) }

		h := newHistory(7, "")
		for i := range 120 {
			h.step(t, s, i)
		}
		// Cases the random history may have missed: a big snapshot, a
		// deleted document, a document with only a snapshot.
		big := store.Snapshot{Version: causal.VersionVector{actorA: 3}, Bytes: bytes.Repeat([]byte("0123456789abcdef"), 64<<10)}
		must(t, "SaveSnapshot big", s.SaveSnapshot(ctx, "big", big))
		must(t, "model", h.m.saveSnapshot("big", big))
		appendOK(t, s, "doomed", ch(actorA, 1, "x"))
		must(t, "Delete", s.Delete(ctx, "doomed"))
		must(t, "model", h.m.append("doomed", []store.Change{ch(actorA, 1, "x")}))
		h.m.delete("doomed")
		audited := []store.Change{from(ch(actorA, 1, "x"), "ann"), from(ch(actorA, 2, "y"), "ann")}
		appendOK(t, s, "audited", audited...)
		must(t, "model", h.m.append("audited", audited))
		checkModel(t, s, h.m)
		closeOK()

		s = open(t, dir)
		checkModel(t, s, h.m)
		wantOrigins(t, "Origins after reopening", origins(t, s, "audited"), []store.Origin{run(actorA, 1, 2, "ann")})
		_, err := s.Version(ctx, "doomed")
		wantErr(t, "Version of a deleted document after reopening", err, store.ErrNotFound)
		if n := deletions(t, s, "doomed"); n != 1 {
			t.Fatalf("Deletions of a deleted document after reopening = %d, want 1", n)
		}

		// Appends after reopening come after the old ones; held changes are
		// still recognised, in the log and in snapshots.
		for i := 120; i < 200; i++ {
			h.step(t, s, i)
		}
		appendOK(t, s, "big", ch(actorA, 2, "folded"), ch(actorA, 4, "a4"))
		must(t, "model", h.m.append("big", []store.Change{ch(actorA, 2, "folded"), ch(actorA, 4, "a4")}))
		wantErr(t, "stale snapshot after reopening",
			s.SaveSnapshot(ctx, "big", store.Snapshot{Version: causal.VersionVector{actorA: 2}, Bytes: []byte("old")}), store.ErrStaleSnapshot)
		wantErr(t, "conflict after reopening",
			s.Append(ctx, "big", []store.Change{ch(actorA, 4, "other")}), store.ErrConflict)
		checkModel(t, s, h.m)
		closeOK()

		s = open(t, dir)
		defer func() { _ = s.Close() }()
		checkModel(t, s, h.m)
		for id := range h.m.docs {
			since := causal.VersionVector{}
			cs := h.m.changes(id, since)
			if len(cs) > 1 {
				since.Observe(cs[0].ID)
				wantChanges(t, fmt.Sprintf("Changes(%q, %v) after reopening", id, since), changes(t, s, id, since), h.m.changes(id, since))
			}
		}
	})
}
