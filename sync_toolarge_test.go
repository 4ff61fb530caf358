package converge

import (
	"context"
	"errors"
	"math/rand/v2"
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
	setT(t, docT(t, a, "blob"), "/x", incompressible(100<<10))
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

// A local change too large to sync is refused when it is made, with
// nothing of it kept: a document holding one could never sync again.
func TestChangeTooLargeRefusedWhenMade(t *testing.T) {
	r := openT(t, t.TempDir(), WithMaxChangeSize(4<<10))
	d := docT(t, r, "notes")
	setT(t, d, "/a", "small")
	before, _ := d.JSON("")
	err := d.Change(ctx, func(tx *Txn) error {
		if err := tx.Set("/b", "also small"); err != nil {
			return err
		}
		return tx.Set("/blob", incompressible(8<<10))
	})
	if !errors.Is(err, ErrChangeTooLarge) || !strings.Contains(err.Error(), "4096") {
		t.Fatalf("a change of 8 KB with a bound of 4 KB: %v", err)
	}
	if after, _ := d.JSON(""); string(after) != string(before) {
		t.Fatalf("the refused change left a trace: %s, was %s", after, before)
	}
	setT(t, d, "/c", "next")
	h := d.History()
	if len(h) != 2 || h[1].Seq != 2 {
		t.Fatalf("history after the refusal: %+v", h)
	}

	// The default bound is what syncs (8 MiB); 0 lifts it.
	blob := incompressible(9 << 20)
	err = docT(t, openT(t, t.TempDir()), "big").Change(ctx, func(tx *Txn) error { return tx.Set("/blob", blob) })
	if !errors.Is(err, ErrChangeTooLarge) {
		t.Fatalf("a 9 MiB change under the default bound: %v", err)
	}
	setT(t, docT(t, openT(t, t.TempDir(), WithMaxChangeSize(0)), "big"), "/blob", blob)
}

// incompressible returns n bytes of text that the encoding cannot shrink.
func incompressible(n int) string {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	for i := range b {
		b[i] = 'a' + byte(rng.IntN(26))
	}
	return string(b)
}
