package converge

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/converge-sync/converge/syncproto"
)

// A change too large for the server's frames cannot be sent. It used to be
// sent anyway: the server ended the session, the client reconnected and
// sent it again, for ever, and no document synced. Now that document
// stops syncing with a clear error, the connection stays up and the other
// documents go on.
func TestSyncChangeTooLargeForTheServer(t *testing.T) {
	lim := syncproto.DefaultLimits
	lim.MaxFrame = 64 << 10
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer, Limits: lim})
	a, b := openT(t, t.TempDir()), openT(t, t.TempDir())
	setT(t, docT(t, a, "notes"), "/x", 1)
	setT(t, docT(t, a, "blob"), "/x", strings.Repeat("y", 100<<10))
	sa := syncT(t, a, h)
	sb := syncT(t, b, h, SyncDocs("notes"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := sa.WaitSynced(ctx)
	var tl *ChangeTooLargeError
	if !errors.As(err, &tl) || tl.Doc != "blob" || tl.Size <= tl.Limit || tl.Limit >= lim.MaxFrame || tl.Limit < lim.MaxFrame-16 {
		t.Fatalf("WaitSynced = %v, want a ChangeTooLargeError for blob", err)
	}
	if !strings.Contains(err.Error(), `"blob"`) {
		t.Fatalf("the error does not name the document: %v", err)
	}

	// The connection stays up, and the other document syncs both ways.
	waitSynced(t, sb)
	eventually(t, "notes reaching b", func() bool { v, _ := docT(t, b, "notes").Get("/x"); return v == int64(1) })
	setT(t, docT(t, a, "notes"), "/y", 2)
	setT(t, docT(t, b, "notes"), "/z", 3)
	eventually(t, "a's edit reaching b", func() bool { v, _ := docT(t, b, "notes").Get("/y"); return v == int64(2) })
	eventually(t, "b's edit reaching a", func() bool { v, _ := docT(t, a, "notes").Get("/z"); return v == int64(3) })
	if st := sa.Status(); !st.Connected || st.Retries != 0 {
		t.Fatalf("a's connection: %+v", st)
	}
}

// A name longer than a peer accepts would end every session at the Hello:
// Sync refuses it at once.
func TestSyncNameTooLong(t *testing.T) {
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer})
	a := openT(t, t.TempDir())
	_, err := a.Sync(context.Background(), "pipe", SyncDialer(h.dial), SyncName(strings.Repeat("n", syncproto.DefaultLimits.MaxString+1)))
	if !errors.Is(err, ErrBadValue) {
		t.Fatalf("Sync with a name too long: %v", err)
	}
	s := syncT(t, a, h, SyncName(strings.Repeat("n", syncproto.DefaultLimits.MaxString)))
	waitSynced(t, s)
}
