package converge

import (
	"testing"
	"time"

	"github.com/converge-sync/converge/store/memory"
	"github.com/converge-sync/converge/syncproto"
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
