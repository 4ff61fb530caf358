package converge

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/encoding"
	"github.com/converge-sync/converge/store"
	"github.com/converge-sync/converge/store/memory"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/pipe"
)

// rawClient speaks the protocol by hand over a pipe to r.Serve, so that a
// test can send what a well-behaved replica never would.
type rawClient struct {
	t    *testing.T
	conn transport.Conn
	s    *syncproto.Session
	done chan error
	w    map[string]*encoding.ChangeWriter
}

// send sends changes of doc as they are, in order, past the session (whose
// Push would skip a change below one it sent).
func (c *rawClient) send(doc string, cs []*crdt.Change) {
	c.t.Helper()
	w := c.w[doc]
	if w == nil {
		w = encoding.NewChangeWriter()
		c.w[doc] = w
	}
	m := &syncproto.Changes{Doc: doc}
	for _, ch := range cs {
		m.Changes = append(m.Changes, w.Encode(ch))
	}
	if err := c.conn.Write(context.Background(), syncproto.Encode(m)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func dialRaw(t *testing.T, r *Replica, cfg ServeConfig) *rawClient {
	t.Helper()
	a, b := pipe.New(pipe.WithBuffer(1024))
	c := &rawClient{t: t, conn: a, done: make(chan error, 1), w: map[string]*encoding.ChangeWriter{},
		s: syncproto.NewSession(syncproto.Config{Actor: causal.NewActorID(), Role: syncproto.RoleReplica, Dial: true}, time.Now())}
	go func() { c.done <- r.Serve(context.Background(), b, cfg) }()
	t.Cleanup(func() { a.Close(transport.CloseNormal, "") })
	c.flush()
	c.await(func(ev syncproto.Event) bool { _, ok := ev.(syncproto.Connected); return ok })
	return c
}

func (c *rawClient) flush() {
	frames, _ := c.s.Ready()
	for _, f := range frames {
		if err := c.conn.Write(context.Background(), f); err != nil {
			c.t.Fatalf("write: %v", err)
		}
	}
}

// await reads until an event satisfies ok, and returns it; it fails the
// test if the connection ends first.
func (c *rawClient) await(ok func(syncproto.Event) bool) syncproto.Event {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		f, err := c.conn.Read(ctx)
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		c.s.Receive(f, time.Now())
		frames, events := c.s.Ready()
		for _, f := range frames {
			c.conn.Write(ctx, f)
		}
		for _, ev := range events {
			if ok(ev) {
				return ev
			}
		}
	}
}

// closedWith waits for the server to end the session and returns the code.
func (c *rawClient) closedWith() syncproto.Code {
	c.t.Helper()
	ev := c.await(func(ev syncproto.Event) bool { _, ok := ev.(syncproto.Closed); return ok }).(syncproto.Closed)
	var pe *syncproto.PeerError
	if !errors.As(ev.Err, &pe) {
		c.t.Fatalf("closed without a code: %v", ev.Err)
	}
	return pe.Code
}

func (c *rawClient) subscribe(doc string) {
	c.t.Helper()
	c.s.Subscribe(doc, nil)
	c.flush()
	c.await(func(ev syncproto.Event) bool { h, ok := ev.(syncproto.HaveReceived); return ok && h.Doc == doc })
}

// chain makes n changes of one actor, each after the last.
func chain(t *testing.T, n int) []*crdt.Change {
	t.Helper()
	d := crdt.NewDoc(causal.NewActorID())
	out := make([]*crdt.Change, n)
	for i := range out {
		c, _, err := d.Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
			_, err := tx.Put(crdt.Root, "n", crdt.Int(int64(i)))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = c
	}
	return out
}

func origins(t *testing.T, r *Replica, doc string) []store.Origin {
	t.Helper()
	o, err := r.Store().Origins(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestServeRecordsSubject(t *testing.T) {
	h := newHub(t, ServeConfig{Role: syncproto.RoleServer, Subject: "ann"})
	a := openT(t, "", WithStore(memory.New()))
	setT(t, docT(t, a, "notes"), "/x", 1)
	setT(t, docT(t, a, "notes"), "/y", 2)
	waitSynced(t, syncT(t, a, h, SyncDocs("notes")))
	o := origins(t, h.r, "notes")
	if len(o) != 1 || o[0] != (store.Origin{Actor: a.Actor(), First: 1, Last: 2, Subject: "ann"}) {
		t.Fatalf("origins %+v", o)
	}
}

// A change held for a missing dependency keeps its sender when another
// sender's change releases it.
func TestMergeFromKeepsHeldSender(t *testing.T) {
	r := openT(t, "", WithStore(memory.New()))
	d := docT(t, r, "d")
	cs := chain(t, 3)
	if err := d.mergeFrom(ctx, "ann", []*crdt.Change{cs[2], cs[1]}); err != nil {
		t.Fatal(err)
	}
	if err := d.mergeFrom(ctx, "bob", cs[:1]); err != nil {
		t.Fatal(err)
	}
	o := origins(t, r, "d")
	a := cs[0].Actor
	want := []store.Origin{{Actor: a, First: 1, Last: 1, Subject: "bob"}, {Actor: a, First: 2, Last: 3, Subject: "ann"}}
	if len(o) != 2 || o[0] != want[0] || o[1] != want[1] {
		t.Fatalf("origins %+v, want %+v", o, want)
	}
}

func TestServeRateLimit(t *testing.T) {
	r := openT(t, "", WithStore(memory.New()))
	c := dialRaw(t, r, ServeConfig{Role: syncproto.RoleServer, ChangesPerSecond: 0.001, ChangeBurst: 5})
	c.subscribe("d")
	cs := chain(t, 8)
	for i := range cs {
		c.send("d", cs[i:i+1])
	}
	if code := c.closedWith(); code != syncproto.CodeRateLimited {
		t.Fatalf("closed with %v, want rate_limited", code)
	}
	<-c.done
	if v, _ := r.Store().Version(ctx, "d"); v.Total() != 5 {
		t.Fatalf("the server stored %d changes, want the 5 the bucket allowed", v.Total())
	}
}

func TestServeHeldBound(t *testing.T) {
	r := openT(t, "", WithStore(memory.New()))
	cfg := ServeConfig{Role: syncproto.RoleServer, MaxHeld: 10}
	cs := chain(t, 40)

	// Within the bound: held, then released by the missing change.
	c := dialRaw(t, r, cfg)
	c.subscribe("d")
	c.send("d", cs[1:10])
	c.send("d", cs[:1])
	c.await(func(ev syncproto.Event) bool {
		a, ok := ev.(syncproto.AckReceived)
		return ok && a.Durable.Get(cs[0].Actor) == 10
	})

	// Past it: the session ends, and what the peer parked is dropped.
	c2 := dialRaw(t, r, cfg)
	c2.subscribe("d")
	c2.send("d", cs[11:25]) // cs[10] missing
	if code := c2.closedWith(); code != syncproto.CodeTooManyPending {
		t.Fatalf("closed with %v, want too_many_pending", code)
	}
	<-c2.done
	d := docT(t, r, "d")
	var held []causal.ChangeID
	d.read(func(doc *crdt.Doc) { held = doc.Pending() })
	if len(held) != 0 {
		t.Fatalf("the server still holds %d changes of a peer that has gone", len(held))
	}
	if v := d.Version(); v.Get(cs[0].Actor) != 10 {
		t.Fatalf("version %v", v)
	}
	// The honest continuation applies as usual.
	c3 := dialRaw(t, r, cfg)
	c3.subscribe("d")
	c3.send("d", cs[10:])
	c3.await(func(ev syncproto.Event) bool {
		a, ok := ev.(syncproto.AckReceived)
		return ok && a.Durable.Get(cs[0].Actor) == 40
	})
}

// Presence updates are relayed to every subscriber, so they draw on the
// same bucket as changes.
func TestServePresenceRateLimited(t *testing.T) {
	r := openT(t, "", WithStore(memory.New()))
	c := dialRaw(t, r, ServeConfig{Role: syncproto.RoleServer, ChangesPerSecond: 0.001, ChangeBurst: 3})
	c.subscribe("d")
	for i := range 5 {
		c.s.SendPresence(syncproto.Presence{Doc: "d", Peer: causal.ActorID{1}, TTLMs: 1000, State: []byte(fmt.Sprintf(`{"n":%d}`, i))})
		c.flush()
	}
	if code := c.closedWith(); code != syncproto.CodeRateLimited {
		t.Fatalf("closed with %v, want rate_limited", code)
	}
}
