package converge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/store"
	"github.com/converge-sync/converge/store/memory"
	"github.com/converge-sync/converge/syncproto"
)

// docActor is the actor the replica writes d's changes under.
func docActor(d *Doc) (a causal.ActorID) {
	d.read(func(doc *crdt.Doc) { a = doc.Actor() })
	return a
}

// The bug this guards against: a document deleted on a replica and then
// edited afresh numbered the replica's changes from 1 again, the IDs of
// changes the server and the other replicas already held with other
// content. Merge is idempotent by change ID, so each side dropped the
// other's as already seen and they disagreed for ever, without an error.
//
// Here replica a (on disk, reopened at every step, as an app restarting
// would be) edits, syncs through a server to b, deletes the document,
// writes it again, and syncs. Every replica must end with the same
// document: a's new content, and the old content merged with it by the
// usual rules (the old and the new /title are concurrent: a conflict).
func TestRecreatedDocConvergesThroughServer(t *testing.T) {
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer})
	dir := t.TempDir()
	a := openT(t, dir)
	b := openT(t, "", WithStore(memory.New()))
	setT(t, docT(t, a, "d"), "/title", "old")
	setT(t, docT(t, a, "d"), "/old", 1)
	sa, sb := syncT(t, a, h), syncT(t, b, h)
	waitSynced(t, sa, sb)
	eventually(t, "b has a's first document", func() bool { return jsonT(t, docT(t, b, "d")) == `{"old":1,"title":"old"}` })
	sa.Stop()
	<-sa.Done()

	if err := a.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	a = reopenT(t, a, dir)
	if infos, err := a.Docs(ctx); err != nil || len(infos) != 0 {
		t.Fatalf("Docs after Delete = %v, %v: a deleted document is not listed", infos, err)
	}
	d := docT(t, a, "d")
	if got := jsonT(t, d); got != `{}` {
		t.Fatalf("deleted document reads %s, want it empty", got)
	}
	setT(t, d, "/title", "new")
	setT(t, d, "/new", 2)
	a = reopenT(t, a, dir)
	d = docT(t, a, "d")
	setT(t, d, "/more", 3) // after a restart: still the new incarnation's actor
	mine := d.History()
	sa = syncT(t, a, h)
	waitSynced(t, sa, sb)
	converged(t, map[string]*Replica{"a": a, "b": b, "server": h.r}, "d", func(doc map[string]any) bool {
		return doc["new"] == int64(2) && doc["more"] == int64(3) && doc["old"] == int64(1)
	})
	if c, err := docT(t, a, "d").ConflictsAt("/title"); err != nil || len(c) != 2 {
		t.Fatalf("/title: %v, %v; want the old and the new value, concurrent", c, err)
	}
	// The new incarnation's changes are under one actor of its own (not
	// the replica's, whose changes to the old document others hold),
	// numbered on across the restart.
	if len(mine) != 3 || mine[0].Actor != mine[2].Actor || mine[0].Actor == a.Actor().String() || mine[2].Seq != 3 {
		t.Fatalf("the re-created document's history: %+v; want 3 changes by one actor, not the replica's (%s), seq 1 to 3", mine, a.Actor())
	}
}

// converged waits until every replica's document id is the same, with the
// same conflicts, and want holds of it.
func converged(t *testing.T, rs map[string]*Replica, id string, want func(map[string]any) bool) {
	t.Helper()
	var why string
	deadline := time.Now().Add(10 * time.Second)
	for !sameEverywhere(t, rs, id, want, &why) {
		if time.Now().After(deadline) {
			t.Fatalf("the replicas do not converge: %s", why)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// sameEverywhere reports whether every replica's document id holds the
// same changes and reads the same, with as many conflicts, and want holds
// of it; why says what
// differs if not.
func sameEverywhere(t *testing.T, rs map[string]*Replica, id string, want func(map[string]any) bool, why *string) bool {
	var first string
	var firstConflicts int
	var firstVersion causal.VersionVector
	for name, r := range rs {
		d := docT(t, r, id)
		got := jsonT(t, d)
		// The same changes, not just the same JSON: a change overwritten
		// since changes nothing in the JSON.
		if v := d.Version(); firstVersion == nil {
			firstVersion = v
		} else if !v.Contains(firstVersion) || !firstVersion.Contains(v) {
			*why = fmt.Sprintf("%s holds %v, another %v", name, v, firstVersion)
			return false
		}
		v, err := d.Get("")
		m, _ := v.(map[string]any)
		if err != nil || !want(m) {
			*why = fmt.Sprintf("%s holds %s", name, got)
			return false
		}
		if first == "" {
			first, firstConflicts = got, len(d.Conflicts())
		} else if got != first || len(d.Conflicts()) != firstConflicts {
			*why = fmt.Sprintf("%s holds %s (%d conflicts); another %s (%d)", name, got, len(d.Conflicts()), first, firstConflicts)
			return false
		}
	}
	return true
}

// reopenT closes r and opens its folder again.
func reopenT(t *testing.T, r *Replica, dir string) *Replica {
	t.Helper()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	return openT(t, dir)
}

// Two replicas syncing directly, no server: the same story.
func TestRecreatedDocConvergesDirectly(t *testing.T) {
	h, a, b, s := syncedDirectly(t)
	s.Stop()
	<-s.Done()

	if err := a.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	setT(t, docT(t, a, "d"), "/title", "new")
	setT(t, docT(t, a, "d"), "/n", 1)
	s = syncT(t, a, h, SyncDocs("d"))
	waitSynced(t, s)
	converged(t, map[string]*Replica{"a": a, "b": b}, "d", func(doc map[string]any) bool { return doc["n"] == int64(1) })
	if c, err := docT(t, b, "d").ConflictsAt("/title"); err != nil || len(c) != 2 {
		t.Fatalf("/title on b: %v, %v; want the old and the new value", c, err)
	}
}

// Each incarnation of a document is written under an actor of its own:
// the replica's for a document never deleted, then one per deletion.
// Deleting what the replica does not hold (a document never written, or
// deleted already) makes no new incarnation: none of its changes exist
// anywhere.
func TestDocActorPerIncarnation(t *testing.T) {
	r := openT(t, "", WithStore(memory.New()))
	if err := r.Delete(ctx, "never"); err != nil {
		t.Fatal(err)
	}
	setT(t, docT(t, r, "never"), "/x", 1)
	if got := docActor(docT(t, r, "never")); got != r.Actor() {
		t.Fatalf("a document never held before is written by %s, want the replica's actor %s", got, r.Actor())
	}

	seen := map[causal.ActorID]int{}
	for i := range 3 {
		d := docT(t, r, "d")
		a := docActor(d)
		if j, ok := seen[a]; ok {
			t.Fatalf("incarnation %d of the document has the actor of incarnation %d (%s)", i, j, a)
		}
		seen[a] = i
		if (i == 0) != (a == r.Actor()) {
			t.Fatalf("incarnation %d has actor %s; the replica's is %s", i, a, r.Actor())
		}
		setT(t, d, "/i", i)
		if h := d.History(); len(h) != 1 || h[0].Actor != a.String() || h[0].Seq != 1 {
			t.Fatalf("incarnation %d: history %+v", i, h)
		}
		for range 2 { // the second deletion finds nothing to delete
			if err := r.Delete(ctx, "d"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, err := r.Store().Deletions(ctx, "d"); err != nil || n != 3 {
		t.Fatalf("Deletions = %d, %v; want 3", n, err)
	}
	// Derived, not random: the same replica, document and count give the
	// same actor; another document or count, another.
	if d1, again := r.docActor("d", 1), r.docActor("d", 1); d1 != again || d1 == r.docActor("e", 1) || d1 == r.docActor("d", 2) {
		t.Fatal("docActor is not a function of the document and the count")
	}
}

// Importing the old document (an export from before the deletion) into
// the re-created one merges it like any other replica's changes; the
// replica's new edits are the new incarnation's, and another replica that
// held the old document converges with it.
func TestImportIntoRecreatedDoc(t *testing.T) {
	h := newHub(t, ServeConfig{})
	b := h.r
	a := openT(t, t.TempDir())
	setT(t, docT(t, a, "d"), "/title", "old")
	setT(t, docT(t, a, "d"), "/kept", true)
	saved, err := docT(t, a, "d").Save()
	if err != nil {
		t.Fatal(err)
	}
	s := syncT(t, a, h, SyncDocs("d"))
	waitSynced(t, s)
	eventually(t, "b has the old document", func() bool { return jsonT(t, docT(t, b, "d")) == `{"kept":true,"title":"old"}` })
	s.Stop()
	<-s.Done()

	if err := a.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if err := a.Import(ctx, "d", saved); err != nil {
		t.Fatal(err)
	}
	d := docT(t, a, "d")
	if got := jsonT(t, d); got != `{"kept":true,"title":"old"}` {
		t.Fatalf("imported %s", got)
	}
	setT(t, d, "/title", "new") // after the import: it replaces the old title
	last := d.History()[len(d.History())-1]
	if last.Actor == a.Actor().String() || last.Seq != 1 {
		t.Fatalf("the edit after the import is %+v; want the new incarnation's first change, not the replica's actor", last)
	}
	s = syncT(t, a, h, SyncDocs("d"))
	waitSynced(t, s)
	converged(t, map[string]*Replica{"a": a, "b": b}, "d", func(doc map[string]any) bool { return doc["title"] == "new" && doc["kept"] == true })
	if c := docT(t, b, "d").Conflicts(); len(c) != 0 {
		t.Fatalf("conflicts on b: %+v; the new title was written over the old one", c)
	}
}

// Delete and Evict lock the replica and then a document; a document's
// calls (Change, Flush, merges) check that the replica is open with the
// document locked. Run together they must not wait on each other for
// ever. (A deadlock here makes the test time out.)
func TestDeleteEvictAndChangesTogether(t *testing.T) {
	r := openT(t, "", WithStore(memory.New()))
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for i := range 2000 {
			d, err := r.Doc(ctx, "x")
			if err != nil {
				t.Error(err)
				return
			}
			err = d.Change(ctx, func(tx *Txn) error { return tx.Set("/i", i) })
			if err != nil && !errors.Is(err, ErrEvicted) {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range 2000 {
			r.Evict("x")
		}
	}()
	go func() {
		defer wg.Done()
		for range 200 {
			if err := r.Delete(ctx, "x"); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
}

// snapshotGate is a store whose SaveSnapshot waits to be let through.
type snapshotGate struct {
	store.Store
	started chan struct{} // a SaveSnapshot has begun
	release chan struct{} // closed: SaveSnapshot goes on
}

func (g *snapshotGate) SaveSnapshot(ctx context.Context, doc string, snap store.Snapshot) error {
	select {
	case g.started <- struct{}{}:
	default:
	}
	<-g.release
	return g.Store.SaveSnapshot(ctx, doc, snap)
}

// A compaction that was writing the document's saved copy when Delete
// was called must not write it after the deletion: that would bring the
// deleted document back.
func TestDeleteWaitsForCompaction(t *testing.T) {
	g := &snapshotGate{Store: memory.New(), started: make(chan struct{}, 1), release: make(chan struct{})}
	r := openT(t, "", WithStore(g), WithCompactAfter(2))
	d := docT(t, r, "d")
	setT(t, d, "/a", 1)
	setT(t, d, "/b", 2) // the second logged change starts a compaction
	<-g.started
	deleted := make(chan error, 1)
	go func() { deleted <- r.Delete(ctx, "d") }()
	time.Sleep(20 * time.Millisecond) // a Delete that does not wait is done by now
	close(g.release)
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	r.bg.Wait() // the compaction has ended
	if infos, err := r.Docs(ctx); err != nil || len(infos) != 0 {
		t.Fatalf("Docs after Delete: %+v, %v; want none", infos, err)
	}
	if got := jsonT(t, docT(t, r, "d")); got != `{}` {
		t.Fatalf("the deleted document reads %s", got)
	}
}

// recreatedWhileSynced has two replicas syncing "d" through a server; then
// a deletes it and writes it again (/new) while b edits its copy of the old
// one (/fromB).
func recreatedWhileSynced(t *testing.T) (h *hub, a, b *Replica, sa, sb *Syncer) {
	t.Helper()
	h = newHub(t, ServeConfig{Role: syncproto.RoleServer})
	a = openT(t, "", WithStore(memory.New()))
	b = openT(t, "", WithStore(memory.New()))
	setT(t, docT(t, a, "d"), "/title", "old")
	sa, sb = syncT(t, a, h), syncT(t, b, h)
	waitSynced(t, sa, sb)
	eventually(t, "b has a's document", func() bool { return jsonT(t, docT(t, b, "d")) == `{"title":"old"}` })
	if err := a.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	setT(t, docT(t, a, "d"), "/new", 1)
	setT(t, docT(t, b, "d"), "/fromB", 2)
	return h, a, b, sa, sb
}

// convergedAfterRecreating checks that a, b and the server hold one "d":
// the old title, a's new document and b's edit.
func convergedAfterRecreating(t *testing.T, h *hub, a, b *Replica) {
	t.Helper()
	converged(t, map[string]*Replica{"a": a, "b": b, "server": h.r}, "d", func(doc map[string]any) bool {
		return doc["new"] == int64(1) && doc["fromB"] == int64(2) && doc["title"] == "old"
	})
}

// The same with a's Syncer connected when the document is deleted and
// written again; b goes on editing meanwhile. The connection that
// followed the old document ends; the next one syncs the new one.
func TestRecreatedDocConvergesAfterReconnecting(t *testing.T) {
	h, a, b, sa, sb := recreatedWhileSynced(t)
	sa.Stop()
	<-sa.Done()
	sa = syncT(t, a, h)
	waitSynced(t, sa, sb)
	convergedAfterRecreating(t, h, a, b)
}

// Random rounds of offline work on three replicas (edits, deletions,
// documents written again, restarts), each round ended by syncing through
// a server: after every round, every replica and the server hold the same
// document, change for change. A deletion is forgetting, so the document
// comes back from the others; what matters is that no change ID ever
// names two different changes, whatever the deletions. The seed (logged)
// replays the operations, not the actors (random) nor the timing.
func TestDeletionsInRandomRounds(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer})
	dir := t.TempDir()
	rs := []*Replica{openT(t, dir), openT(t, "", WithStore(memory.New())), openT(t, "", WithStore(memory.New()))}
	rounds := 8
	if testing.Short() {
		rounds = 4
	}
	for round := range rounds {
		for op := range 12 {
			i := rng.IntN(len(rs))
			r := rs[i]
			switch k := rng.IntN(10); {
			case k < 6:
				setT(t, docT(t, r, "d"), fmt.Sprintf("/r%d", i), fmt.Sprintf("round %d op %d", round, op))
			case k < 8:
				setT(t, docT(t, r, "d"), "/shared", int64(round*100+op))
			case k < 9:
				if err := r.Delete(ctx, "d"); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
			default:
				if i == 0 {
					rs[0] = reopenT(t, rs[0], dir)
				}
			}
		}
		var ss []*Syncer
		for _, r := range rs {
			ss = append(ss, syncT(t, r, h, SyncDocs("d")))
		}
		waitSynced(t, ss...)
		all := map[string]*Replica{"server": h.r}
		for i, r := range rs {
			all[fmt.Sprint("replica ", i)] = r
		}
		converged(t, all, "d", func(map[string]any) bool { return true })
		for _, s := range ss {
			s.Stop()
			<-s.Done()
		}
	}
}

// The same while a's Syncer stays connected: the deletion and the new
// document happen under a live sync, and b goes on editing.
func TestRecreatedDocConvergesWhileSyncing(t *testing.T) {
	h, a, b, sa, sb := recreatedWhileSynced(t)
	waitSynced(t, sa, sb)
	convergedAfterRecreating(t, h, a, b)
}

// The same with a Syncer given the document by name: it syncs the
// document again at once, without the application opening it.
func TestRecreatedDocConvergesWhileSyncingNamed(t *testing.T) {
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer})
	a := openT(t, "", WithStore(memory.New()))
	b := openT(t, "", WithStore(memory.New()))
	setT(t, docT(t, a, "d"), "/title", "old")
	sa, sb := syncT(t, a, h, SyncDocs("d")), syncT(t, b, h, SyncDocs("d"))
	waitSynced(t, sa, sb)
	eventually(t, "b has a's document", func() bool { return jsonT(t, docT(t, b, "d")) == `{"title":"old"}` })

	if err := a.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	setT(t, docT(t, b, "d"), "/fromB", 2)
	waitSynced(t, sa, sb)
	converged(t, map[string]*Replica{"a": a, "b": b, "server": h.r}, "d", func(doc map[string]any) bool {
		return doc["fromB"] == int64(2) && doc["title"] == "old"
	})
	setT(t, docT(t, a, "d"), "/new", 1)
	waitSynced(t, sa, sb)
	converged(t, map[string]*Replica{"a": a, "b": b, "server": h.r}, "d", func(doc map[string]any) bool {
		return doc["new"] == int64(1)
	})
}

// A Syncer that syncs the document when it is deleted goes on syncing
// it: it gets the old document back at once, as a new connection would,
// rather than leaving a stale subscription behind. (To keep a document
// off the device, sync the others by name.)
func TestDeleteWhileSyncingFetchesTheDocumentBack(t *testing.T) {
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer})
	a := openT(t, "", WithStore(memory.New()))
	setT(t, docT(t, a, "d"), "/title", "old")
	sa := syncT(t, a, h)
	waitSynced(t, sa)
	eventually(t, "the server has the document", func() bool { return jsonT(t, docT(t, h.r, "d")) == `{"title":"old"}` })
	if err := a.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	setT(t, docT(t, h.r, "d"), "/server", true)
	waitSynced(t, sa)
	eventually(t, "a has the document back", func() bool { return jsonT(t, docT(t, a, "d")) == `{"server":true,"title":"old"}` })
	setT(t, docT(t, a, "d"), "/a", 1)
	waitSynced(t, sa)
	eventually(t, "the server has a's new change", func() bool { return jsonT(t, docT(t, h.r, "d")) == `{"a":1,"server":true,"title":"old"}` })
}

// The replica that serves (Replica.Serve) deletes the document and
// writes it again while a peer that dialled it follows it: the peer
// subscribes again, as after any unavailable refusal, and both converge.
func TestRecreatedDocOnTheServingSide(t *testing.T) {
	_, a, b, s := syncedDirectly(t)
	if err := b.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	setT(t, docT(t, b, "d"), "/b", 1)
	waitSynced(t, s)
	converged(t, map[string]*Replica{"a": a, "b": b}, "d", func(doc map[string]any) bool {
		return doc["b"] == int64(1) && doc["title"] == "old"
	})
}

// syncedDirectly returns a replica a syncing document d, {"title":"old"},
// with the replica b that serves it through the hub h, once b has it.
func syncedDirectly(t *testing.T) (h *hub, a, b *Replica, s *Syncer) {
	t.Helper()
	h = newHub(t, ServeConfig{})
	b = h.r
	a = openT(t, "", WithStore(memory.New()))
	setT(t, docT(t, a, "d"), "/title", "old")
	s = syncT(t, a, h, SyncDocs("d"))
	waitSynced(t, s)
	eventually(t, "b has a's document", func() bool { return jsonT(t, docT(t, b, "d")) == `{"title":"old"}` })
	return h, a, b, s
}
