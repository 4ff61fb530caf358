package prototest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/encoding"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
)

// awaitTimeout bounds every wait for the other side.
const awaitTimeout = 10 * time.Second

// Client is a dialling protocol session driven by hand.
type Client struct {
	t    testing.TB
	Conn transport.Conn
	S    *syncproto.Session
	w    map[string]*encoding.ChangeWriter // per document: Send's change stream
}

// Dial says Hello over conn and waits until the other side welcomes it.
func Dial(t testing.TB, conn transport.Conn) *Client {
	t.Helper()
	c := &Client{t: t, Conn: conn, w: map[string]*encoding.ChangeWriter{},
		S: syncproto.NewSession(syncproto.Config{Actor: causal.NewActorID(), Role: syncproto.RoleReplica, Dial: true}, time.Now())}
	c.Flush()
	c.Await(func(ev syncproto.Event) bool { _, ok := ev.(syncproto.Connected); return ok })
	return c
}

// Flush writes what the session has to say.
func (c *Client) Flush() {
	c.t.Helper()
	frames, _ := c.S.Ready()
	for _, f := range frames {
		if err := c.Conn.Write(context.Background(), f); err != nil {
			c.t.Fatalf("write: %v", err)
		}
	}
}

// Await reads until an event satisfies ok, and returns it, answering what
// the session answers on the way (pongs, acknowledgements of the handshake);
// it fails the test if the connection ends first.
func (c *Client) Await(ok func(syncproto.Event) bool) syncproto.Event {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	for {
		f, err := c.Conn.Read(ctx)
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		c.S.Receive(f, time.Now())
		frames, events := c.S.Ready()
		for _, f := range frames {
			c.Conn.Write(ctx, f)
		}
		for _, ev := range events {
			if ok(ev) {
				return ev
			}
		}
	}
}

// AwaitError waits for an error message from the other side.
func (c *Client) AwaitError() syncproto.Error {
	c.t.Helper()
	return c.Await(func(ev syncproto.Event) bool { _, ok := ev.(syncproto.ErrorReceived); return ok }).(syncproto.ErrorReceived).Error
}

// ClosedWith waits for the other side to end the session and returns its
// code.
func (c *Client) ClosedWith() syncproto.Code {
	c.t.Helper()
	ev := c.Await(func(ev syncproto.Event) bool { _, ok := ev.(syncproto.Closed); return ok }).(syncproto.Closed)
	var pe *syncproto.PeerError
	if !errors.As(ev.Err, &pe) {
		c.t.Fatalf("closed without a code: %v", ev.Err)
	}
	return pe.Code
}

// Subscribe subscribes to doc from nothing and waits for the other side's
// Have.
func (c *Client) Subscribe(doc string) {
	c.t.Helper()
	c.S.Subscribe(doc, nil)
	c.Flush()
	c.Await(func(ev syncproto.Event) bool { h, ok := ev.(syncproto.HaveReceived); return ok && h.Doc == doc })
}

// Send sends changes of doc as they are, in order, in one message, past
// the session (whose Push would skip what the peer is known to hold).
func (c *Client) Send(doc string, cs []*crdt.Change) {
	c.t.Helper()
	if err := c.TrySend(doc, cs); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// TrySend is Send for a test in which the other side may have closed the
// connection by then: it returns the write's error.
func (c *Client) TrySend(doc string, cs []*crdt.Change) error {
	w := c.w[doc]
	if w == nil {
		w = encoding.NewChangeWriter()
		c.w[doc] = w
	}
	m := &syncproto.Changes{Doc: doc}
	for _, ch := range cs {
		m.Changes = append(m.Changes, w.Encode(ch))
	}
	return c.Conn.Write(context.Background(), syncproto.Encode(m))
}

// Chain makes n changes of one new actor, each after the last: change i
// sets the root key "n" to i.
func Chain(t testing.TB, n int) []*crdt.Change {
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
