package converge

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/converge-sync/converge/store/memory"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/pipe"
)

// expiring is a grant that runs out when told to.
type expiring struct{ over atomic.Bool }

func (*expiring) CanRead(string) bool          { return true }
func (*expiring) CanWrite(string) bool         { return true }
func (e *expiring) Expired(now time.Time) bool { return e.over.Load() }

// TestBusySessionStillEndsWhenTokenExpires: a heartbeat step that finds
// the session busy is put off, but not for ever: the step is what ends a
// session whose token expired, and a connection kept busy all the time
// must not escape it. After at most maxPutOff steps put off in a row, the
// next waits for the session and runs.
func TestBusySessionStillEndsWhenTokenExpires(t *testing.T) {
	r := openT(t, "", WithStore(memory.New()))
	grant := &expiring{}
	cli, srv := pipe.New()
	p := r.servePeer(srv, ServeConfig{Role: syncproto.RoleServer, Access: grant})
	served := make(chan error, 1)
	go func() { served <- p.run(context.Background()) }()

	cs := syncproto.NewSession(syncproto.Config{Actor: r.Actor(), Role: syncproto.RoleReplica, Dial: true}, time.Now())
	frames, _ := cs.Ready()
	for _, f := range frames {
		if err := cli.Write(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for the welcome: the peer's ticker is armed by then.
	awaitEvent(t, cli, cs, "the welcome", func(ev syncproto.Event) bool {
		_, ok := ev.(syncproto.Connected)
		return ok
	})

	// The session is busy (the test holds its step) when the token expires.
	p.smu.Lock()
	grant.over.Store(true)
	returned := make(chan int, maxPutOff+2)
	go func() {
		for i := 1; i <= maxPutOff+2; i++ {
			p.onTick()
			returned <- i
		}
	}()
	// The steps put off return at once; one of the first maxPutOff+1 waits
	// (the peer's own timer may have put off some already).
	last := 0
	for waiting := false; !waiting; {
		select {
		case last = <-returned:
			if last > maxPutOff {
				p.smu.Unlock()
				t.Fatalf("%d heartbeat steps in a row put off while the session was busy", last)
			}
		case <-time.After(200 * time.Millisecond):
			waiting = true
		}
	}
	p.smu.Unlock() // the waiting step runs and ends the session

	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end once its step ran with the token expired")
	}
	// The client was told why.
	ev := awaitEvent(t, cli, cs, "the close frame", func(ev syncproto.Event) bool {
		_, ok := ev.(syncproto.Closed)
		return ok
	})
	if err := ev.(syncproto.Closed).Err; !errorsContains(err, "token_expired") {
		t.Fatalf("closed with %v, want token_expired", err)
	}
}

// awaitEvent reads frames from conn into the client session cs until it
// reports an event match accepts, and returns that event.
func awaitEvent(t *testing.T, conn transport.Conn, cs *syncproto.Session, what string, match func(syncproto.Event) bool) syncproto.Event {
	t.Helper()
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		f, err := conn.Read(rctx)
		cancel()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		cs.Receive(f, time.Now())
		_, evs := cs.Ready()
		for _, ev := range evs {
			if match(ev) {
				return ev
			}
		}
	}
}
