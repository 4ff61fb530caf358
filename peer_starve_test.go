package converge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/encoding"
	"github.com/converge-sync/converge/store/memory"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/pipe"
)

// pressedConn is the server's end of a connection whose peer never pauses:
// while pressing, every frame the server writes waits until the next frame
// from the peer has been read and handed to the session goroutine. That is
// what a client streaming its own changes over a real network amounts to
// when reading a frame is quicker than handling one (the next is always in
// the socket's buffer), made certain rather than likely, so that a session
// goroutine that only drains its queue once no frame is waiting is caught
// on every run. (Over a bare pipe the client below, which makes a change
// per frame, is seldom quicker than the server: such a session goroutine
// would get a quiet moment to drain in most runs, and the test would
// prove nothing.) It looks at the peer's frame slot, the one place that
// says the next frame was handed over.
type pressedConn struct {
	transport.Conn
	p        *peer
	pressing atomic.Bool
}

func (c *pressedConn) Write(ctx context.Context, f []byte) error {
	for c.pressing.Load() {
		c.p.mu.Lock()
		next := c.p.frame != nil
		c.p.mu.Unlock()
		if next {
			break
		}
		time.Sleep(20 * time.Microsecond)
	}
	return c.Conn.Write(ctx, f)
}

// TestPeerSendingWithoutPauseGetsOthersChanges: a client that streams its
// own changes without pause still gets, while it streams, the changes
// another replica makes to the document, and is not dropped as too slow
// for the changes that piled up for it meanwhile.
func TestPeerSendingWithoutPauseGetsOthersChanges(t *testing.T) {
	// A small MaxQueue: a queue that is not drained overflows after a few
	// hundred frames (the client's own changes come back to its queue, to
	// be filtered when drained), so the failure is quick and says so.
	const maxQueue = 300
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer, MaxQueue: maxQueue})

	// b: another replica, syncing the document through the server.
	b := openT(t, "", WithStore(memory.New()))
	sb := syncT(t, b, h, SyncDocs("d"))
	waitSynced(t, sb)

	// The busy client: its own replica makes the changes, and a raw
	// session over a pipe sends them, one frame per change, as fast as
	// the pipe takes them.
	a := openT(t, "", WithStore(memory.New()))
	da := docT(t, a, "d")
	cli, srv := pipe.New()
	pc := &pressedConn{Conn: srv}
	pc.p = h.r.servePeer(pc, h.cfg)
	runCtx, stopRun := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- pc.p.run(runCtx) }()

	cs := syncproto.NewSession(syncproto.Config{Actor: a.Actor(), Role: syncproto.RoleReplica, Dial: true}, time.Now())
	flushT := func() {
		t.Helper()
		frames, _ := cs.Ready()
		for _, f := range frames {
			if err := cli.Write(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	awaitT := func(what string, done func(syncproto.Event) bool) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for {
			f, err := cli.Read(rctx)
			if err != nil {
				t.Fatalf("waiting for %s: %v", what, err)
			}
			cs.Receive(f, time.Now())
			_, evs := cs.Ready()
			for _, ev := range evs {
				if c, ok := ev.(syncproto.Closed); ok {
					t.Fatalf("waiting for %s: session ended: %v", what, c.Err)
				}
				if done(ev) {
					return
				}
			}
		}
	}
	flushT() // Hello
	awaitT("welcome", func(ev syncproto.Event) bool { _, ok := ev.(syncproto.Connected); return ok })
	if err := cs.Subscribe("d", nil); err != nil {
		t.Fatal(err)
	}
	flushT()
	awaitT("the server's have", func(ev syncproto.Event) bool { h, ok := ev.(syncproto.HaveReceived); return ok && h.Doc == "d" })

	// From here the reader owns cs: it reads all the server sends and
	// watches for b's change.
	got := make(chan struct{})
	ended := make(chan error, 1)
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		seen := false
		for {
			f, err := cli.Read(context.Background())
			if err != nil {
				ended <- err
				return
			}
			cs.Receive(f, time.Now())
			_, evs := cs.Ready() // what cs would answer (pongs) is not needed
			for _, ev := range evs {
				switch ev := ev.(type) {
				case syncproto.ChangesReceived:
					for _, c := range ev.Changes {
						if c.Actor == b.Actor() && !seen {
							seen = true
							close(got)
						}
					}
				case syncproto.ErrorReceived:
					ended <- fmt.Errorf("the server refused: %s: %s", ev.Code, ev.Message)
					return
				case syncproto.Closed:
					ended <- fmt.Errorf("the session ended: %w", ev.Err)
					return
				}
			}
		}
	}()

	// The writer streams a's changes until told to stop.
	var sent atomic.Int64
	stop := make(chan struct{})
	writerErr := make(chan error, 1)
	pc.pressing.Store(true)
	go func() {
		defer pc.pressing.Store(false) // a writer that stops lets the server's writes go
		w := encoding.NewChangeWriter()
		var have causal.VersionVector
		for i := 0; ; i++ {
			select {
			case <-stop:
				writerErr <- nil
				return
			default:
			}
			if err := da.Change(ctx, func(tx *Txn) error { return tx.Set("/a", i) }); err != nil {
				writerErr <- err
				return
			}
			m := &syncproto.Changes{Doc: "d"}
			for _, c := range da.ChangesSince(have) {
				m.Changes = append(m.Changes, w.Encode(c))
			}
			have = da.Version()
			if err := cli.Write(ctx, syncproto.Encode(m)); err != nil {
				writerErr <- err
				return
			}
			sent.Add(1)
		}
	}()
	stopWriter := sync.OnceFunc(func() {
		close(stop)
		if err := <-writerErr; err != nil && !errors.Is(err, transport.ErrClosed) {
			t.Errorf("the busy client's writer: %v", err)
		}
	})
	defer func() {
		stopWriter()
		stopRun()
		<-served
		cli.Close(transport.CloseNormal, "")
		readers.Wait()
	}()

	// The server is taking a's frames one after another; then b edits.
	eventually(t, "the busy client streaming", func() bool { return sent.Load() >= 50 })
	setT(t, docT(t, b, "d"), "/b", "from b")
	before := sent.Load()
	select {
	case <-got:
	case err := <-ended:
		pc.p.mu.Lock()
		overflow := pc.p.overflow
		pc.p.mu.Unlock()
		t.Fatalf("the busy client never got b's change (%d frames sent after it; its queue overflowed: %v): %v", sent.Load()-before, overflow, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("the busy client did not get b's change in 10s while sending (%d frames sent after it)", sent.Load()-before)
	}
	// It came while a was still sending: the writer stops only now.
	select {
	case err := <-writerErr:
		t.Fatalf("the busy client stopped sending before b's change reached it: %v", err)
	default:
	}
	t.Logf("b's change reached the busy client after %d of its frames", sent.Load()-before)
	stopWriter()
	// Still the same session, never dropped for not keeping up.
	pc.p.smu.Lock()
	over, endErr := pc.p.over, pc.p.endErr
	pc.p.smu.Unlock()
	if over {
		t.Fatalf("the server ended the busy client's session: %v", endErr)
	}
	select {
	case err := <-ended:
		t.Fatalf("the busy client's session ended: %v", err)
	default:
	}
	// And everything a streamed reached b.
	all := da.Version()
	eventually(t, "b has all of a's changes", func() bool { return docT(t, b, "d").Version().Contains(all) })
}
