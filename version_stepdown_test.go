package converge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/converge-sync/converge/store/memory"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/pipe"
)

// oldServer serves like a server built before protocol version
// newest+1: a Hello of a newer version is refused with protocol_version
// and the connection closed, as such a server does, without saying which
// versions it speaks. It records the version of every Hello.
type oldServer struct {
	h      *hub
	newest uint64
	mu     sync.Mutex
	hellos []uint64
	conn   transport.Conn // the connection being served
}

// drop closes the connection being served, as a restart would.
func (o *oldServer) drop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.conn.Close(transport.CloseGoingAway, "restarting")
}

func (o *oldServer) dial(ctx context.Context) (transport.Conn, error) {
	a, b := pipe.New()
	go func() {
		f, err := b.Read(ctx)
		if err != nil {
			return
		}
		m, err := syncproto.Decode(f, syncproto.DefaultLimits)
		hello, ok := m.(*syncproto.Hello)
		if err != nil || !ok {
			b.Close(transport.CloseProtocolError, "not a hello")
			return
		}
		o.mu.Lock()
		o.hellos = append(o.hellos, hello.Version)
		o.conn = b
		o.mu.Unlock()
		if hello.Version > o.newest {
			b.Write(ctx, syncproto.Encode(&syncproto.Error{Code: syncproto.CodeProtocolVersion, Fatal: true,
				Message: fmt.Sprintf("peer speaks version %d; this side speaks versions 1 to %d", hello.Version, o.newest)}))
			b.Close(transport.CloseProtocolError, "protocol version")
			return
		}
		o.h.r.Serve(ctx, &replayFirst{Conn: b, first: f}, o.h.cfg)
	}()
	return a, nil
}

// replayFirst hands back the frame already read before reading on.
type replayFirst struct {
	transport.Conn
	first []byte
}

func (c *replayFirst) Read(ctx context.Context) ([]byte, error) {
	if f := c.first; f != nil {
		c.first = nil
		return f, nil
	}
	return c.Conn.Read(ctx)
}

// A replica of this build syncs with a server of an older one (upgraded
// last): refused the newest version, it offers the one before at once, and
// keeps offering that one when it reconnects, for an hour; then it offers
// the newest again (the server may have been upgraded), and steps down
// again if not.
func TestSyncStepsDownToAnOlderServer(t *testing.T) {
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer})
	old := &oldServer{h: h, newest: 2}
	var clock atomic.Int64
	clock.Store(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	a := openT(t, "", WithStore(memory.New()), WithClock(now))
	setT(t, docT(t, a, "trip"), "/dest", "Porto")
	s, err := a.Sync(context.Background(), "old", SyncDialer(old.dial))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	waitSynced(t, s)
	b := openT(t, "", WithStore(memory.New()))
	waitSynced(t, syncT(t, b, h, SyncDocs("trip")))
	if got, err := docT(t, b, "trip").Get("/dest"); err != nil || got != "Porto" {
		t.Fatalf("the other replica reads %v (%v), want Porto", got, err)
	}
	// Reconnecting offers the accepted version straight away.
	old.drop()
	eventually(t, "the Syncer to notice", func() bool { return !s.Status().Connected })
	setT(t, docT(t, a, "trip"), "/dest", "Lisbon")
	waitSynced(t, s)
	// An hour on, it tries the newest version once more.
	clock.Add(int64(retryNewestAfter + time.Minute))
	old.drop()
	eventually(t, "the Syncer to notice", func() bool { return !s.Status().Connected })
	setT(t, docT(t, a, "trip"), "/dest", "Oslo")
	waitSynced(t, s)
	old.mu.Lock()
	defer old.mu.Unlock()
	if want := []uint64{syncproto.Version, 2, 2, syncproto.Version, 2}; fmt.Sprint(old.hellos) != fmt.Sprint(want) {
		t.Fatalf("Hello versions %v, want %v", old.hellos, want)
	}
}

// A server that refuses every version this build speaks stops the Syncer
// with ErrSyncRefused, having offered each version once.
func TestSyncRefusedEveryVersion(t *testing.T) {
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer})
	none := &oldServer{h: h, newest: 0}
	a := openT(t, "", WithStore(memory.New()))
	s, err := a.Sync(context.Background(), "none", SyncDialer(none.dial))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	<-s.Done()
	var pe *syncproto.PeerError
	if err := s.Err(); !errors.Is(err, ErrSyncRefused) || !errors.As(err, &pe) || pe.Code != syncproto.CodeProtocolVersion {
		t.Fatalf("Err() = %v, want ErrSyncRefused with the peer's protocol_version", err)
	}
	none.mu.Lock()
	defer none.mu.Unlock()
	if len(none.hellos) != syncproto.Version-syncproto.MinVersion+1 || none.hellos[len(none.hellos)-1] != syncproto.MinVersion {
		t.Fatalf("Hello versions %v, want each from %d down to %d once", none.hellos, syncproto.Version, syncproto.MinVersion)
	}
}
