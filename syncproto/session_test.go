package syncproto

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// node is a minimal driver: a session over in-memory documents, answering
// events the way a replica or server does.
type node struct {
	t      *testing.T
	actor  causal.ActorID
	s      *Session
	docs   map[string]*crdt.Doc
	events []Event // every event seen, for assertions
	acked  map[string]causal.VersionVector
}

func newNode(t *testing.T, role Role, dial bool, lim Limits) *node {
	a := causal.NewActorID()
	return &node{t: t, actor: a, docs: map[string]*crdt.Doc{}, acked: map[string]causal.VersionVector{},
		s: NewSession(Config{Actor: a, Role: role, Name: fmt.Sprint(role), Dial: dial, Limits: lim}, t0)}
}

func (n *node) doc(id string) *crdt.Doc {
	if n.docs[id] == nil {
		n.docs[id] = crdt.NewDoc(n.actor)
	}
	return n.docs[id]
}

func (n *node) edit(id, key string, v int64) {
	n.t.Helper()
	if _, _, err := n.doc(id).Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
		_, err := tx.Put(crdt.Root, key, crdt.Int(v))
		return err
	}); err != nil {
		n.t.Fatal(err)
	}
}

// pushLocal offers every change of id to the session (it sends only what the
// peer lacks, and only if live).
func (n *node) pushLocal(id string) { n.s.Push(id, n.doc(id).Changes()) }

func (n *node) handle(evs []Event) {
	for _, ev := range evs {
		n.events = append(n.events, ev)
		switch ev := ev.(type) {
		case SubscribeRequest:
			d := n.doc(ev.Doc)
			n.s.Answer(ev.Doc, d.ChangesSince(ev.Have), d.Version())
		case HaveReceived:
			n.s.Push(ev.Doc, n.doc(ev.Doc).ChangesSince(ev.Have))
		case ChangesReceived:
			d := n.doc(ev.Doc)
			if _, err := d.Apply(ev.Changes...); err != nil {
				n.s.Refuse(ev.Doc, CodeInvalidChange, err.Error())
				continue
			}
			n.s.Ack(ev.Doc, d.Version())
		case AckReceived:
			n.acked[ev.Doc] = merged(n.acked[ev.Doc], ev.Durable)
		}
	}
}

// pump delivers frames both ways until both sides are quiet; it returns
// the number of frames and bytes carried.
func pump(a, b *node) (frames, size int) {
	for {
		fa, ea := a.s.Ready()
		a.handle(ea)
		fb, eb := b.s.Ready()
		b.handle(eb)
		if len(fa)+len(fb)+len(ea)+len(eb) == 0 {
			return
		}
		for _, f := range fa {
			frames, size = frames+1, size+len(f)
			b.s.Receive(f, t0)
		}
		for _, f := range fb {
			frames, size = frames+1, size+len(f)
			a.s.Receive(f, t0)
		}
	}
}

func pair(t *testing.T) (client, server *node) {
	client = newNode(t, RoleReplica, true, Limits{})
	server = newNode(t, RoleServer, false, Limits{})
	pump(client, server)
	return client, server
}

func findEvent[T Event](evs []Event) (T, bool) {
	for _, ev := range evs {
		if e, ok := ev.(T); ok {
			return e, true
		}
	}
	var zero T
	return zero, false
}

func sameJSON(t *testing.T, a, b *crdt.Doc) {
	t.Helper()
	if ja, jb := a.JSON(), b.JSON(); !bytes.Equal(ja, jb) {
		t.Fatalf("documents differ:\n%s\n%s", ja, jb)
	}
}

func TestSessionHandshake(t *testing.T) {
	c, s := pair(t)
	cc, ok := findEvent[Connected](c.events)
	if !ok || cc.Peer != s.actor || cc.Role != RoleServer {
		t.Fatalf("client saw %+v", c.events)
	}
	sc, ok := findEvent[Connected](s.events)
	if !ok || sc.Peer != c.actor || sc.Role != RoleReplica || sc.Name != "1" {
		t.Fatalf("server saw %+v", s.events)
	}
	if p, open := c.s.Peer(); !open || p.Peer != s.actor {
		t.Fatalf("Peer() = %+v, %v", p, open)
	}
}

func TestSessionSyncsBothWaysThenLive(t *testing.T) {
	c, s := pair(t)
	c.edit("d", "c1", 1)
	c.edit("d", "c2", 2)
	s.edit("d", "s1", 3)
	if err := c.s.Subscribe("d", c.doc("d").Version()); err != nil {
		t.Fatal(err)
	}
	pump(c, s)
	sameJSON(t, c.doc("d"), s.doc("d"))
	if !c.s.Live("d") || !s.s.Live("d") {
		t.Fatal("document not live after the exchange")
	}
	if !c.acked["d"].Contains(c.doc("d").Version()) {
		t.Fatalf("client's changes not acknowledged: acked %v, holds %v", c.acked["d"], c.doc("d").Version())
	}

	// Live: a new change on either side reaches the other, and nothing is
	// sent twice.
	c.edit("d", "c3", 4)
	c.pushLocal("d")
	s.edit("d", "s2", 5)
	s.pushLocal("d")
	pump(c, s)
	sameJSON(t, c.doc("d"), s.doc("d"))
	frames, _ := func() (int, int) { c.pushLocal("d"); s.pushLocal("d"); return pump(c, s) }()
	if frames != 0 {
		t.Fatalf("re-offering known changes sent %d frames", frames)
	}
}

func TestSessionUnsubscribeStopsAndResubscribeResumes(t *testing.T) {
	c, s := pair(t)
	c.edit("d", "a", 1)
	c.s.Subscribe("d", c.doc("d").Version())
	pump(c, s)
	c.s.Unsubscribe("d")
	pump(c, s)
	if s.s.Live("d") || c.s.Live("d") {
		t.Fatal("still live after unsubscribe")
	}
	if _, ok := findEvent[Unsubscribed](s.events); !ok {
		t.Fatal("server saw no Unsubscribed")
	}
	s.edit("d", "b", 2)
	s.pushLocal("d")
	if f, _ := pump(c, s); f != 0 {
		t.Fatalf("%d frames sent for an unsubscribed document", f)
	}
	// The same streams carry on after subscribing again.
	c.edit("d", "c", 3)
	c.s.Subscribe("d", c.doc("d").Version())
	pump(c, s)
	sameJSON(t, c.doc("d"), s.doc("d"))
}

// Each side announces its limits in the handshake (Hello or Welcome), and
// the other keeps every Changes message within them, whichever side has the
// smaller ones and whichever side sends.
func TestSessionKeepsWithinThePeersLimits(t *testing.T) {
	small := func(frame, changes int) Limits {
		lim := DefaultLimits
		lim.MaxFrame, lim.MaxChanges = frame, changes
		return lim
	}
	for _, tc := range []struct {
		name           string
		client, server Limits
	}{
		{"server accepts small frames", Limits{}, small(512, DefaultLimits.MaxChanges)},
		{"server accepts few changes per message", Limits{}, small(DefaultLimits.MaxFrame, 3)},
		{"client accepts small frames", small(512, DefaultLimits.MaxChanges), Limits{}},
		{"client accepts few changes per message", small(DefaultLimits.MaxFrame, 3), Limits{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newNode(t, RoleReplica, true, tc.client)
			s := newNode(t, RoleServer, false, tc.server)
			pump(c, s)
			for i := range 200 {
				c.edit("d", fmt.Sprint("c-", i), int64(i))
				s.edit("d", fmt.Sprint("s-", i), int64(i))
			}
			c.s.Subscribe("d", c.doc("d").Version())
			s.s.Subscribe("d", s.doc("d").Version())
			// Deliver by hand to check every frame against its receiver's limits.
			deliver := func(from, to *node, lim Limits) {
				if lim == (Limits{}) {
					lim = DefaultLimits
				}
				frames, events := from.s.Ready()
				from.handle(events)
				for _, f := range frames {
					if len(f) > lim.MaxFrame {
						t.Fatalf("frame of %d bytes to a peer accepting %d", len(f), lim.MaxFrame)
					}
					if m, err := Decode(f, lim); err != nil {
						t.Fatalf("a frame the peer cannot accept: %v", err)
					} else if ch, ok := m.(*Changes); ok && len(ch.Changes) > lim.MaxChanges {
						t.Fatalf("%d changes in a message to a peer accepting %d", len(ch.Changes), lim.MaxChanges)
					}
					to.s.Receive(f, t0)
				}
			}
			for range 200 {
				deliver(c, s, tc.server)
				deliver(s, c, tc.client)
			}
			sameJSON(t, c.doc("d"), s.doc("d"))
			if c.doc("d").Len(crdt.Root) != 400 {
				t.Fatalf("%d keys after sync, want 400", c.doc("d").Len(crdt.Root))
			}
			for _, n := range []*node{c, s} {
				if err := n.s.Err(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestSessionManyDocuments(t *testing.T) {
	c, s := pair(t)
	for i := range 50 {
		id := fmt.Sprint("doc/", i)
		c.edit(id, "k", int64(i))
		s.edit(id, "s", int64(i))
		c.s.Subscribe(id, c.doc(id).Version())
	}
	pump(c, s)
	for i := range 50 {
		id := fmt.Sprint("doc/", i)
		sameJSON(t, c.doc(id), s.doc(id))
	}
}

func TestSessionPresence(t *testing.T) {
	c, s := pair(t)
	c.s.Subscribe("d", nil)
	pump(c, s)
	c.s.SendPresence(Presence{Doc: "d", Peer: c.actor, TTLMs: 30000, State: []byte(`{"cursor":3}`)})
	c.s.SendLeave("d", c.actor)
	pump(c, s)
	p, ok := findEvent[PresenceReceived](s.events)
	if !ok || p.Peer != c.actor || string(p.State) != `{"cursor":3}` || p.TTLMs != 30000 {
		t.Fatalf("server got %+v", s.events)
	}
	if l, ok := findEvent[LeaveReceived](s.events); !ok || l.Peer != c.actor {
		t.Fatalf("no leave: %+v", s.events)
	}

	// Presence for a document the connection does not share is refused,
	// without ending the session.
	c.s.docs["other"] = c.s.stream("other")
	c.s.docs["other"].subscribed = true // a misbehaving peer
	c.s.SendPresence(Presence{Doc: "other", Peer: c.actor, State: []byte(`{}`)})
	pump(c, s)
	if e, ok := findEvent[ErrorReceived](c.events); !ok || e.Code != CodeNotSubscribed || e.Doc != "other" {
		t.Fatalf("client saw %+v", c.events)
	}
	if c.s.Err() != nil || s.s.Err() != nil {
		t.Fatal("a refused presence ended the session")
	}
}

func TestSessionHeartbeat(t *testing.T) {
	c, s := pair(t)
	hb := c.s.Heartbeat()
	if hb != DefaultHeartbeat {
		t.Fatalf("heartbeat %v", hb)
	}
	c.s.Tick(t0.Add(hb))
	frames, _ := c.s.Ready()
	if len(frames) != 1 || frames[0][0] != byte(TypePing) {
		t.Fatalf("no ping after a quiet heartbeat: %x", frames)
	}
	s.s.Receive(frames[0], t0.Add(hb))
	pong, _ := s.s.Ready()
	if len(pong) != 1 || pong[0][0] != byte(TypePong) {
		t.Fatalf("no pong: %x", pong)
	}
	// Silence for three heartbeats ends the session.
	s.s.Tick(t0.Add(4 * hb))
	_, evs := s.s.Ready()
	cl, ok := findEvent[Closed](evs)
	var le *LocalError
	if !ok || !errors.As(cl.Err, &le) || le.Code != CodeUnavailable {
		t.Fatalf("server events after silence: %+v", evs)
	}
}

func TestSessionRefusesBadPeers(t *testing.T) {
	frame := func(m Message) []byte { return Encode(m) }
	cases := []struct {
		name   string
		frames [][]byte // sent to a fresh accepting session
		code   Code
	}{
		{"garbage", [][]byte{{0xff, 1, 2}}, CodeMalformed},
		{"empty frame", [][]byte{{}}, CodeMalformed},
		{"subscribe before hello", [][]byte{frame(&Subscribe{Doc: "d"})}, CodeProtocol},
		{"version 0", [][]byte{frame(&Hello{Version: 0, Role: RoleReplica})}, CodeProtocolVersion},
		{"second hello", [][]byte{frame(&Hello{Version: Version}), frame(&Hello{Version: Version})}, CodeProtocol},
		{"changes without a stream", [][]byte{frame(&Hello{Version: Version}), frame(&Changes{Doc: "d", Changes: [][]byte{{1, 2, 3, 4, 5}}})}, CodeNotSubscribed},
		{"broken change stream", [][]byte{frame(&Hello{Version: Version}), frame(&Subscribe{Doc: "d"}), frame(&Changes{Doc: "d", Changes: [][]byte{{1, 2, 3, 4, 5}}})}, CodeMalformed},
		{"ack without a stream", [][]byte{frame(&Hello{Version: Version}), frame(&Ack{Doc: "d"})}, CodeNotSubscribed},
		{"relay without a stream", [][]byte{frame(&Hello{Version: Version}), frame(relayOf("d", authored(t, 1)))}, CodeNotSubscribed},
		{"relay of garbage", [][]byte{frame(&Hello{Version: Version}), frame(&Subscribe{Doc: "d"}), frame(&Relay{Doc: "d", Changes: [][]byte{{1, 2, 3}}})}, CodeMalformed},
		{"relay in version 1", [][]byte{frame(&Hello{Version: 1}), frame(&Subscribe{Doc: "d"}), frame(relayOf("d", authored(t, 1)))}, CodeProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, frames := closedWith(t, tc.code, tc.frames)
			last, err := Decode(frames[len(frames)-1], DefaultLimits)
			if e, ok := last.(*Error); err != nil || !ok || !e.Fatal || e.Code != tc.code {
				t.Fatalf("last frame %+v (%v), want a fatal %s", last, err, tc.code)
			}
			// A closed session ignores everything after.
			s.Receive(frame(&Ping{Nonce: 1}), t0)
			if f, e := s.Ready(); len(f)+len(e) != 0 {
				t.Fatalf("closed session answered: %x %+v", f, e)
			}
		})
	}
}

func TestSessionPeerErrorEndsDialer(t *testing.T) {
	c := newNode(t, RoleReplica, true, Limits{})
	c.s.Receive(Encode(&Error{Code: CodeUnauthorized, Fatal: true, Message: "no token"}), t0)
	_, evs := c.s.Ready()
	cl, ok := findEvent[Closed](evs)
	var pe *PeerError
	if !ok || !errors.As(cl.Err, &pe) || pe.Code != CodeUnauthorized || pe.Message != "no token" {
		t.Fatalf("events %+v", evs)
	}
}

func TestSessionInvalidChangeIsRefusedForThatDocumentOnly(t *testing.T) {
	c, s := pair(t)
	c.s.Subscribe("good", nil)
	c.s.Subscribe("bad", nil)
	pump(c, s)
	// A change the document model refuses: it puts into an object that does
	// not exist.
	bogus := &crdt.Change{Actor: c.actor, Seq: 1, StartOp: 1, Ops: []crdt.Op{{
		Action: crdt.ActPut, Obj: crdt.ObjID{Counter: 99, Actor: c.actor}, Key: "x", Value: crdt.Int(1)}}}
	c.s.Push("bad", []*crdt.Change{bogus})
	c.edit("good", "k", 1)
	c.pushLocal("good")
	pump(c, s)
	if e, ok := findEvent[ErrorReceived](c.events); !ok || e.Code != CodeInvalidChange || e.Doc != "bad" {
		t.Fatalf("client events %+v", c.events)
	}
	if c.s.Live("bad") || !c.s.Live("good") {
		t.Fatal("the refusal should end only the bad document's stream")
	}
	sameJSON(t, c.doc("good"), s.doc("good"))
	if len(s.doc("bad").Changes()) != 0 {
		t.Fatal("the server kept an invalid change")
	}
}

func TestSessionTooManyDocs(t *testing.T) {
	c := newNode(t, RoleReplica, true, Limits{})
	s := newNode(t, RoleServer, false, Limits{})
	s.s.cfg.MaxDocs = 2
	for _, d := range []string{"a", "b", "c"} {
		c.s.Subscribe(d, nil)
	}
	pump(c, s)
	e, ok := findEvent[ErrorReceived](c.events)
	if !ok || e.Code != CodeTooManyDocs || e.Doc != "c" {
		t.Fatalf("client events %+v", c.events)
	}
	if !c.s.Live("a") || !c.s.Live("b") || c.s.Live("c") {
		t.Fatal("wrong documents live")
	}
}

// A change too large for any frame the peer accepts is not sent: sending it
// would end the session, again at every reconnection, for every document.
// Its document stops syncing on the connection, the peer is told, and the
// other documents go on. Both ways: a client pushing to a server with
// small frames, and a server relaying to a client with small frames.
func TestSessionChangeTooLargeStopsOnlyItsDocument(t *testing.T) {
	small := DefaultLimits
	small.MaxFrame = 4 << 10
	shortChanges := DefaultLimits
	shortChanges.MaxChangeLen = 2 << 10
	for _, tc := range []struct {
		name           string
		client, server Limits
		senderIsClient bool
		limit          int // the largest change that could go
	}{
		{"client to a server accepting small frames", Limits{}, small, true, small.MaxFrame - aloneSize("big", 0) - 1},
		{"server to a client accepting small frames", small, Limits{}, false, small.MaxFrame - aloneSize("big", 0) - 1},
		{"changes over the bound on one change", shortChanges, shortChanges, true, shortChanges.MaxChangeLen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newNode(t, RoleReplica, true, tc.client)
			s := newNode(t, RoleServer, false, tc.server)
			pump(c, s)
			from, to := s, c
			if tc.senderIsClient {
				from, to = c, s
			}
			for _, id := range []string{"big", "small"} {
				if err := c.s.Subscribe(id, c.doc(id).Version()); err != nil {
					t.Fatal(err)
				}
			}
			pump(c, s)
			from.edit("small", "a", 1)
			from.pushLocal("small")
			if _, _, err := from.doc("big").Change(crdt.ChangeOptions{}, func(tx *crdt.Txn) error {
				_, err := tx.Put(crdt.Root, "blob", crdt.String(strings.Repeat("x", 8<<10)))
				return err
			}); err != nil {
				t.Fatal(err)
			}
			from.pushLocal("big")
			from.edit("big", "after", 2) // cannot go either: it follows the big one
			from.pushLocal("big")
			pump(c, s)

			for _, n := range []*node{c, s} {
				if err := n.s.Err(); err != nil {
					t.Fatalf("the session ended: %v", err)
				}
			}
			ev, ok := findEvent[ChangeTooLarge](from.events)
			if !ok || ev.Doc != "big" || ev.Change != from.doc("big").Changes()[0].ID() || ev.Size <= ev.Limit || ev.Limit != tc.limit {
				t.Fatalf("sender's event: %+v, %v; want a limit of %d", ev, ok, tc.limit)
			}
			refused, ok := findEvent[ErrorReceived](to.events)
			if !ok || refused.Doc != "big" || refused.Code != CodeFrameTooLarge || refused.Fatal {
				t.Fatalf("receiver was told %+v, %v", refused, ok)
			}
			if to.doc("big").Len(crdt.Root) != 0 {
				t.Fatalf("receiver got part of the big document: %s", to.doc("big").JSON())
			}
			if from.s.Live("big") || to.s.Live("big") {
				t.Fatal("the big document is still live")
			}

			// The other document goes on, both ways.
			sameJSON(t, c.doc("small"), s.doc("small"))
			from.edit("small", "b", 2)
			from.pushLocal("small")
			to.edit("small", "c", 3)
			to.pushLocal("small")
			pump(c, s)
			sameJSON(t, c.doc("small"), s.doc("small"))
			if c.doc("small").Len(crdt.Root) != 3 {
				t.Fatalf("small document: %s", c.doc("small").JSON())
			}
		})
	}
}

// closedWith has a server session receive frames and checks that it ended
// the session with code; it returns the session and the frames it sent.
func closedWith(t *testing.T, code Code, frames [][]byte) (*Session, [][]byte) {
	t.Helper()
	s := NewSession(Config{Actor: causal.NewActorID(), Role: RoleServer}, t0)
	for _, f := range frames {
		s.Receive(f, t0)
	}
	out, evs := s.Ready()
	cl, ok := findEvent[Closed](evs)
	var le *LocalError
	if !ok || !errors.As(cl.Err, &le) || le.Code != code {
		t.Fatalf("events %+v, want Closed with %s", evs, code)
	}
	return s, out
}
