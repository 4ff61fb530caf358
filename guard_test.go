package converge

import (
	"context"
	"fmt"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/internal/prototest"
	"github.com/converge-sync/converge/store"
	"github.com/converge-sync/converge/store/memory"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/pipe"
)

// rawClient speaks the protocol by hand over a pipe to r.Serve, so that a
// test can send what a well-behaved replica never would.
type rawClient struct {
	*prototest.Client
	done chan error // r.Serve's result
}

func dialRaw(t *testing.T, r *Replica, cfg ServeConfig) *rawClient {
	t.Helper()
	a, b := pipe.New(pipe.WithBuffer(1024))
	done := make(chan error, 1)
	go func() { done <- r.Serve(context.Background(), b, cfg) }()
	t.Cleanup(func() { a.Close(transport.CloseNormal, "") })
	return &rawClient{Client: prototest.Dial(t, a), done: done}
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
	cs := prototest.Chain(t, 3)
	res, err := d.mergeFrom(ctx, "ann", []*crdt.Change{cs[2], cs[1]})
	if err != nil {
		t.Fatal(err)
	}
	if res.fresh != 0 || res.held != 2 {
		t.Fatalf("first merge: %d fresh, %d held; want 0 and 2", res.fresh, res.held)
	}
	res, err = d.mergeFrom(ctx, "bob", cs[:1])
	if err != nil {
		t.Fatal(err)
	}
	if res.fresh != 1 || res.held != 0 || res.version.Get(cs[0].Actor) != 3 {
		t.Fatalf("second merge: %d fresh, %d held, version %v; want 1, 0 and 3 changes", res.fresh, res.held, res.version)
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
	c.Subscribe("d")
	cs := prototest.Chain(t, 8)
	for i := range cs {
		// The server may close the connection before the last ones are
		// written: what counts is why it closed, and what it stored.
		_ = c.TrySend("d", cs[i:i+1])
	}
	if code := c.ClosedWith(); code != syncproto.CodeRateLimited {
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
	cs := prototest.Chain(t, 40)

	// Within the bound: held, then released by the missing change.
	c := dialRaw(t, r, cfg)
	c.Subscribe("d")
	c.Send("d", cs[1:10])
	c.Send("d", cs[:1])
	c.Await(func(ev syncproto.Event) bool {
		a, ok := ev.(syncproto.AckReceived)
		return ok && a.Durable.Get(cs[0].Actor) == 10
	})

	// Past it: the session ends, and what the peer parked is dropped.
	c2 := dialRaw(t, r, cfg)
	c2.Subscribe("d")
	c2.Send("d", cs[11:25]) // cs[10] missing
	if code := c2.ClosedWith(); code != syncproto.CodeTooManyPending {
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
	c3.Subscribe("d")
	c3.Send("d", cs[10:])
	c3.Await(func(ev syncproto.Event) bool {
		a, ok := ev.(syncproto.AckReceived)
		return ok && a.Durable.Get(cs[0].Actor) == 40
	})
}

// Presence updates are relayed to every subscriber, so they draw on the
// same bucket as changes.
func TestServePresenceRateLimited(t *testing.T) {
	r := openT(t, "", WithStore(memory.New()))
	c := dialRaw(t, r, ServeConfig{Role: syncproto.RoleServer, ChangesPerSecond: 0.001, ChangeBurst: 3})
	c.Subscribe("d")
	// The burst and one more: a write after that one could find the
	// connection already closed by the refusal, and fail the test.
	for i := range 4 {
		c.S.SendPresence(syncproto.Presence{Doc: "d", Peer: causal.ActorID{1}, TTLMs: 1000, State: []byte(fmt.Sprintf(`{"n":%d}`, i))})
		c.Flush()
	}
	if code := c.ClosedWith(); code != syncproto.CodeRateLimited {
		t.Fatalf("closed with %v, want rate_limited", code)
	}
}
