package converge

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/converge-sync/converge/store/memory"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
)

// A document the server refuses because its store failed (unavailable: a
// full disk, say) is asked for again on the same connection, with backoff:
// once the store recovers, the change the server could not take arrives
// without waiting for a reconnection (which a healthy connection never
// makes).
func TestSyncRetriesADocumentRefusedAsUnavailable(t *testing.T) {
	fs := &failingStore{Store: memory.New()}
	h := &hub{t: t, cfg: ServeConfig{Role: syncproto.RoleServer}}
	h.start(openT(t, "", WithStore(fs)))
	t.Cleanup(h.stop)

	var dials atomic.Int32
	dial := func(ctx context.Context) (transport.Conn, error) {
		dials.Add(1)
		return h.dial(ctx)
	}
	a := openT(t, "", WithStore(memory.New()))
	s := syncT(t, a, h, SyncDocs("d"), SyncDialer(dial))
	waitSynced(t, s)

	fs.setFailing(true)
	setT(t, docT(t, a, "d"), "/x", 1)
	eventually(t, "the server's refusal", func() bool { return errorsContains(s.Status().LastErr, "unavailable") })
	// WaitSynced waits through it (the document is asked for again).
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := s.WaitSynced(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitSynced during the refusal: %v, want it to wait", err)
	}
	fs.setFailing(false)
	eventually(t, "the change on the server", func() bool { return jsonT(t, docT(t, h.r, "d")) == `{"x":1}` })
	waitSynced(t, s)
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d connections: the document came back by reconnecting, not on its connection", n)
	}
}
