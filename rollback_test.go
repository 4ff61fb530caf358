package converge

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/converge-sync/converge/syncproto"
)

// A replica folder restored from an older copy numbers its new changes
// with IDs the server already holds for others. When the server holds
// more of the replica's changes than it has made since the copy, syncing
// shows it: the server's copies of the replica's lost changes are refused
// (ErrRolledBack, which WaitSynced returns), nothing of the collision
// reaches the server, and the document stops syncing on the connection.
// (With as many or fewer, versions cannot tell: see docs/sync.md.)
func TestSyncRefusesARolledBackFolder(t *testing.T) {
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer})
	dir, backup := t.TempDir(), t.TempDir()

	a := openT(t, dir)
	setT(t, docT(t, a, "notes"), "/x", 1)
	waitSynced(t, syncT(t, a, h))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	copyDir(t, dir, backup) // the backup: /x=1

	a = openT(t, dir)
	setT(t, docT(t, a, "notes"), "/y", 2) // made after the backup, synced
	setT(t, docT(t, a, "notes"), "/w", 4)
	waitSynced(t, syncT(t, a, h))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	restored := openT(t, backup)
	setT(t, docT(t, restored, "notes"), "/z", 3) // the same change ID as /y's
	s := syncT(t, restored, h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitSynced(ctx); !errors.Is(err, ErrRolledBack) {
		t.Fatalf("WaitSynced = %v, want ErrRolledBack", err)
	}
	got, _ := docT(t, restored, "notes").JSON("")
	if string(got) != `{"x":1,"z":3}` {
		t.Fatalf("the restored replica merged what collides with its own: %s", got)
	}
	var server []byte
	h.r.mu.Lock()
	sd := h.r.docs["notes"]
	h.r.mu.Unlock()
	if sd != nil {
		server, _ = sd.JSON("")
	}
	if string(server) != `{"w":4,"x":1,"y":2}` {
		t.Fatalf("the server's document: %s", server)
	}
}

// copyDir copies the files of folder from into folder to.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		src, err := os.Open(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.Create(filepath.Join(to, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
