package converge

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/store/memory"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
)

// countingConn counts what crosses a connection in each direction: writes
// (one transport message each) and the protocol messages they carry (a
// Batch counts its frames).
type countingConn struct {
	transport.Conn
	mu                           sync.Mutex
	writes, sent, reads, arrived int
	bad                          error // a frame written or read that does not decode
}

func (c *countingConn) count(f []byte) int {
	m, err := syncproto.Decode(f, syncproto.DefaultLimits)
	if err != nil {
		c.bad = err
		return 1
	}
	if b, ok := m.(*syncproto.Batch); ok {
		return len(b.Frames)
	}
	return 1
}

func (c *countingConn) Write(ctx context.Context, f []byte) error {
	c.mu.Lock()
	c.writes++
	c.sent += c.count(f)
	c.mu.Unlock()
	return c.Conn.Write(ctx, f)
}

func (c *countingConn) Read(ctx context.Context) ([]byte, error) {
	f, err := c.Conn.Read(ctx)
	if err == nil {
		c.mu.Lock()
		c.reads++
		c.arrived += c.count(f)
		c.mu.Unlock()
	}
	return f, err
}

// TestBatchSyncManyDocuments: a replica syncing many documents with a
// server at once sends and gets many messages per write (its Subscribes,
// the server's answers, the changes and their Acks), and every document
// arrives whole.
func TestBatchSyncManyDocuments(t *testing.T) {
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer})
	r := openT(t, "", WithStore(memory.New()))
	const n = 200
	for i := range n {
		id := fmt.Sprintf("doc-%03d", i)
		setT(t, docT(t, r, id), "/n", i)
		setT(t, docT(t, h.r, id), "/m", -i)
	}
	var conn *countingConn
	dial := func(ctx context.Context) (transport.Conn, error) {
		c, err := h.dial(ctx)
		if err != nil {
			return nil, err
		}
		conn = &countingConn{Conn: c}
		return conn, nil
	}
	s := syncT(t, r, h, SyncDialer(dial))
	waitSynced(t, s)
	for i := range n {
		id := fmt.Sprintf("doc-%03d", i)
		want := fmt.Sprintf(`{"m":%d,"n":%d}`, -i, i)
		eventually(t, id+" on both sides", func() bool {
			return jsonT(t, docT(t, r, id)) == want && jsonT(t, docT(t, h.r, id)) == want
		})
	}
	conn.mu.Lock()
	defer conn.mu.Unlock()
	if conn.bad != nil {
		t.Fatalf("a frame that does not decode crossed the connection: %v", conn.bad)
	}
	// Each side sends n Subscribes or n answers (Changes and Have), n
	// Changes and n Acks: at least 3n messages each way.
	if conn.sent < 3*n || conn.arrived < 3*n {
		t.Fatalf("%d messages sent, %d arrived; want %d each way at least", conn.sent, conn.arrived, 3*n)
	}
	if conn.writes*4 > conn.sent || conn.reads*4 > conn.arrived {
		t.Fatalf("%d messages sent in %d writes, %d arrived in %d reads: not batched", conn.sent, conn.writes, conn.arrived, conn.reads)
	}
	t.Logf("%d messages sent in %d writes, %d arrived in %d reads", conn.sent, conn.writes, conn.arrived, conn.reads)
}

// TestBatchNoneForAVersion2Client: a client that speaks version 2 (a build
// before Batch) subscribing to many documents at once gets every answer,
// each in a frame of its own.
func TestBatchNoneForAVersion2Client(t *testing.T) {
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer})
	const n = 50
	for i := range n {
		setT(t, docT(t, h.r, fmt.Sprintf("doc-%03d", i)), "/n", i)
	}
	c, err := h.dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn := &countingConn{Conn: c}
	defer conn.Close(transport.CloseNormal, "")
	s := syncproto.NewSession(syncproto.Config{Actor: causal.NewActorID(), Role: syncproto.RoleReplica, Dial: true, Version: 2}, time.Now())
	got := map[string]int{} // changes received per document
	haves := 0
	deadline, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// A pipe holds nothing: the server's answers are read as they come,
	// while the Subscribes are written.
	in := make(chan []byte, 4*n)
	go func() {
		defer close(in)
		for {
			f, err := conn.Read(deadline)
			if err != nil {
				return
			}
			in <- f
		}
	}()
	for haves < n {
		frames, events := s.Ready()
		for _, ev := range events {
			switch ev := ev.(type) {
			case syncproto.Connected:
				if p, _ := s.Peer(); p.Version != 2 {
					t.Fatalf("the session speaks version %d", p.Version)
				}
				for i := range n {
					if err := s.Subscribe(fmt.Sprintf("doc-%03d", i), nil); err != nil {
						t.Fatal(err)
					}
				}
			case syncproto.ChangesReceived:
				got[ev.Doc] += len(ev.Changes)
			case syncproto.HaveReceived:
				haves++
			case syncproto.Closed:
				t.Fatalf("session ended: %v", ev.Err)
			}
		}
		for _, f := range frames {
			if err := conn.Write(deadline, f); err != nil {
				t.Fatal(err)
			}
		}
		if len(events) > 0 || len(frames) > 0 {
			continue
		}
		f, ok := <-in
		if !ok {
			t.Fatalf("the connection ended after %d Haves", haves)
		}
		if f[0] == byte(syncproto.TypeBatch) {
			t.Fatal("a version 2 client was sent a batch")
		}
		s.Receive(f, time.Now())
	}
	for i := range n {
		if id := fmt.Sprintf("doc-%03d", i); got[id] != 1 {
			t.Fatalf("%s: %d changes received, want 1", id, got[id])
		}
	}
	conn.mu.Lock()
	defer conn.mu.Unlock()
	if conn.bad != nil || conn.reads != conn.arrived || conn.reads < 2*n {
		t.Fatalf("%d frames read carrying %d messages (%v); want a frame per message, 2 per document", conn.reads, conn.arrived, conn.bad)
	}
}
