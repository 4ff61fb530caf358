package converge

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/converge-sync/converge/store/memory"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
)

// A stopped Syncer does not report itself connected.
func TestSyncerStatusAfterStop(t *testing.T) {
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer})
	r := openT(t, "", WithStore(memory.New()))
	s := syncT(t, r, h)
	waitSynced(t, s)
	if !s.Status().Connected {
		t.Fatal("not connected once synced")
	}
	s.Stop()
	if st := s.Status(); st.Connected || st.Synced {
		t.Fatalf("after Stop: %+v", st)
	}
}

// Closing a replica stops its Syncers: none keeps running (and dialling)
// against the closed replica.
func TestCloseStopsSyncers(t *testing.T) {
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer})
	r := openT(t, "", WithStore(memory.New()))
	s := syncT(t, r, h)
	waitSynced(t, s)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the Syncer still runs after Close")
	}
	if s.Status().Connected {
		t.Fatal("connected after Close")
	}
}

// Syncing from a replica (not a server) that holds changes this side
// lacks, with nothing to send back: what the peer sent needs no
// acknowledgement, so WaitSynced returns.
func TestSyncFromReplicaWaitSynced(t *testing.T) {
	h := newHub(t, ServeConfig{}) // RoleReplica
	setT(t, docT(t, h.r, "d"), "/from", "hub")
	a := openT(t, "", WithStore(memory.New()))
	docT(t, a, "d")
	s := syncT(t, a, h)
	waitSynced(t, s)
	if got := jsonT(t, docT(t, a, "d")); got != `{"from":"hub"}` {
		t.Fatalf("a holds %s", got)
	}
	if st := s.Status(); st.Unacknowledged != 0 {
		t.Fatalf("status %+v", st)
	}
}

// WaitSynced on a Syncer stopped before it synced says so, for errors.Is.
func TestWaitSyncedStopped(t *testing.T) {
	r := openT(t, "", WithStore(memory.New()))
	s, err := r.Sync(context.Background(), "nowhere", SyncBackoff(time.Millisecond, time.Millisecond),
		SyncDialer(func(context.Context) (transport.Conn, error) { return nil, errors.New("no network") }))
	if err != nil {
		t.Fatal(err)
	}
	go s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitSynced(ctx); !errors.Is(err, ErrSyncStopped) {
		t.Fatalf("WaitSynced = %v, want ErrSyncStopped", err)
	}
}

// Status answers from what the Syncer knows and the store, without
// loading documents that are not loaded: the count of unacknowledged
// changes is the same either way.
func TestSyncerStatusLoadsNoDocument(t *testing.T) {
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer})
	r := openT(t, "", WithStore(memory.New()))
	d := docT(t, r, "notes/a")
	if err := d.Change(ctx, func(tx *Txn) error { return tx.Set("/n", 1) }); err != nil {
		t.Fatal(err)
	}
	s := syncT(t, r, h)
	waitSynced(t, s)
	h.stop() // the server goes away: what follows is not acknowledged
	for i := 2; i <= 3; i++ {
		if err := d.Change(ctx, func(tx *Txn) error { return tx.Set("/n", i) }); err != nil {
			t.Fatal(err)
		}
	}
	s.Stop()
	loaded := s.Status()
	if loaded.Unacknowledged != 2 {
		t.Fatalf("with the document loaded: %+v", loaded)
	}
	if !r.Evict("notes/a") || r.Loaded() != 0 {
		t.Fatalf("the document could not be evicted (%d loaded)", r.Loaded())
	}
	unloaded := s.Status()
	if r.Loaded() != 0 {
		t.Fatalf("Status loaded %d document(s)", r.Loaded())
	}
	if unloaded.Unacknowledged != loaded.Unacknowledged || unloaded.Synced {
		t.Fatalf("with the document unloaded: %+v; loaded: %+v", unloaded, loaded)
	}
}
