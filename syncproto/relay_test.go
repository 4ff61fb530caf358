package syncproto

import (
	"bytes"
	"errors"
	"testing"

	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/encoding"
)

// relayOf is what a server builds once for all subscribers: the changes'
// standalone encodings in one Relay.
func relayOf(doc string, cs []*crdt.Change) *Relay {
	enc := make([][]byte, len(cs))
	for i, c := range cs {
		enc[i] = encoding.EncodeChange(c)
	}
	return NewRelay(doc, enc)
}

// subscribed returns a client and a server with "d" live both ways.
func subscribed(t *testing.T, version uint64) (c, s *node) {
	c = newNode(t, RoleReplica, true, Limits{})
	s = newNode(t, RoleServer, false, Limits{})
	if version != Version {
		// An older client: its Hello says so.
		c.s.outbox[0].(*Hello).Version = version
	}
	pump(c, s)
	if err := c.s.Subscribe("d", nil); err != nil {
		t.Fatal(err)
	}
	pump(c, s)
	return c, s
}

// authored makes n changes of "d" by a third replica, as a server would
// forward them.
func authored(t *testing.T, n int) []*crdt.Change {
	t.Helper()
	a := newNode(t, RoleReplica, true, Limits{})
	for i := range n {
		a.edit("d", "k", int64(i))
	}
	return a.doc("d").Changes()
}

func TestRelaySendsTheSharedFrame(t *testing.T) {
	c, s := subscribed(t, Version)
	if !s.s.CanRelay() {
		t.Fatal("a version 2 session should relay")
	}
	cs := authored(t, 2)
	r := relayOf("d", cs)
	if sent := s.s.Relay(r, cs); sent != 2 {
		t.Fatalf("sent %d, want 2", sent)
	}
	frames, _ := s.s.Ready()
	if len(frames) != 1 || &frames[0][0] != &r.frame[0] {
		t.Fatalf("the frame sent is not the Relay's own (%d frames)", len(frames))
	}
	c.s.Receive(frames[0], t0)
	_, evs := c.s.Ready()
	got, ok := findEvent[ChangesReceived](evs)
	if !ok || len(got.Changes) != 2 || got.Changes[1].ID() != cs[1].ID() {
		t.Fatalf("client events %+v", evs)
	}
	// The peer holds them now: offered again, nothing is sent.
	if sent := s.s.Relay(r, cs); sent != 0 {
		t.Fatalf("sent %d changes the peer holds", sent)
	}
}

func TestRelayToAVersion1Peer(t *testing.T) {
	c, s := subscribed(t, 1)
	if p, _ := s.s.Peer(); p.Version != 1 {
		t.Fatalf("the server speaks version %d with a version 1 client", p.Version)
	}
	if w, _ := c.s.Peer(); w.Version != 1 {
		t.Fatalf("the client was answered in version %d", w.Version)
	}
	if s.s.CanRelay() {
		t.Fatal("CanRelay with a version 1 peer")
	}
	cs := authored(t, 3)
	if sent := s.s.Relay(relayOf("d", cs), cs); sent != 3 {
		t.Fatalf("sent %d, want 3", sent)
	}
	frames, _ := s.s.Ready()
	if len(frames) != 1 || Type(frames[0][0]) != TypeChanges {
		t.Fatalf("a version 1 peer got %d frames, the first of type %v", len(frames), Type(frames[0][0]))
	}
	c.s.Receive(frames[0], t0)
	if _, evs := c.s.Ready(); len(evs) != 1 {
		t.Fatalf("client events %+v", evs)
	}
	// A version 1 session refuses a Relay.
	c.s.Receive(r1(cs), t0)
	_, evs := c.s.Ready()
	if cl, ok := findEvent[Closed](evs); !ok || !isCode(cl.Err, CodeProtocol) {
		t.Fatalf("version 1 client got a Relay: %+v", evs)
	}
}

func r1(cs []*crdt.Change) []byte { return Encode(relayOf("d", cs)) }

func isCode(err error, code Code) bool {
	var le *LocalError
	return errors.As(err, &le) && le.Code == code
}

func TestRelaysJoinForAPeerBehind(t *testing.T) {
	c, s := subscribed(t, Version)
	cs := authored(t, 3)
	r0, r1, r2 := relayOf("d", cs[:1]), relayOf("d", cs[1:2]), relayOf("d", cs[2:])
	keep := [][]byte{bytes.Clone(r0.frame), bytes.Clone(r1.frame), bytes.Clone(r2.frame)}
	for i, r := range []*Relay{r0, r1, r2} {
		if sent := s.s.Relay(r, cs[i:i+1]); sent != 1 {
			t.Fatalf("relay %d sent %d", i, sent)
		}
	}
	frames, _ := s.s.Ready()
	if len(frames) != 1 {
		t.Fatalf("%d frames for three relays of one document in a row, want 1", len(frames))
	}
	for i, r := range []*Relay{r0, r1, r2} {
		if !bytes.Equal(r.frame, keep[i]) || len(r.Changes) != 1 {
			t.Fatalf("relay %d, shared by other connections, was changed", i)
		}
	}
	c.s.Receive(frames[0], t0)
	_, evs := c.s.Ready()
	if got, ok := findEvent[ChangesReceived](evs); !ok || len(got.Changes) != 3 {
		t.Fatalf("client events %+v", evs)
	}
}

func TestRelayOfWhatThePeerLacks(t *testing.T) {
	c, s := subscribed(t, Version)
	cs := append(append(authored(t, 1), authored(t, 1)...), authored(t, 1)...) // three authors
	// The peer has the second already (as a client has its own changes in
	// a batch from several): the others go, in a Relay of their own.
	s.s.Push("d", cs[1:2])
	frames, _ := s.s.Ready()
	c.s.Receive(frames[0], t0)
	c.s.Ready()
	r := relayOf("d", cs)
	keep := bytes.Clone(r.frame)
	if sent := s.s.Relay(r, cs); sent != 2 {
		t.Fatalf("sent %d, want 2", sent)
	}
	frames, _ = s.s.Ready()
	if len(frames) != 1 || Type(frames[0][0]) != TypeRelay || !bytes.Equal(r.frame, keep) {
		t.Fatalf("got %d frames, or the shared one changed", len(frames))
	}
	m, err := Decode(frames[0], DefaultLimits)
	if err != nil || len(m.(*Relay).Changes) != 2 || !bytes.Equal(m.(*Relay).Changes[1], r.Changes[2]) {
		t.Fatalf("relay %+v (%v): want the first and third change", m, err)
	}
	c.s.Receive(frames[0], t0)
	_, evs := c.s.Ready()
	if got, ok := findEvent[ChangesReceived](evs); !ok || len(got.Changes) != 2 || got.Changes[1].ID() != cs[2].ID() {
		t.Fatalf("client events %+v", evs)
	}
}

func TestRelayFallsBackToTheStream(t *testing.T) {
	// A peer that accepts smaller frames than the Relay's gets Changes.
	c2, s2 := subscribed(t, Version)
	s2.s.peerMax = 40
	big := authored(t, 4)
	if sent := s2.s.Relay(relayOf("d", big), big); sent != 4 {
		t.Fatalf("sent %d, want 4", sent)
	}
	frames, _ := s2.s.Ready()
	for _, f := range frames {
		if Type(f[0]) != TypeChanges || len(f) > 40 {
			t.Fatalf("frame of type %v, %d bytes, to a peer accepting 40", Type(f[0]), len(f))
		}
		c2.s.Receive(f, t0)
	}
	_, evs := c2.s.Ready()
	n := 0
	for _, ev := range evs {
		if cr, ok := ev.(ChangesReceived); ok {
			n += len(cr.Changes)
		}
	}
	if n != 4 {
		t.Fatalf("received %d changes, want 4", n)
	}
}

// A relayed change over the bound on one change is not relayed (the peer
// would end the session on it): the document stops on the connection, as
// for a change pushed.
func TestRelayOfAChangeTooLarge(t *testing.T) {
	c, s := subscribed(t, Version)
	s.s.lim.MaxChangeLen = 8
	cs := authored(t, 1)
	if sent := s.s.Relay(relayOf("d", cs), cs); sent != 0 {
		t.Fatalf("sent %d", sent)
	}
	frames, evs := s.s.Ready()
	if ev, ok := findEvent[ChangeTooLarge](evs); !ok || ev.Doc != "d" || ev.Limit != 8 {
		t.Fatalf("events %+v", evs)
	}
	for _, f := range frames {
		c.s.Receive(f, t0)
	}
	_, evs = c.s.Ready()
	if e, ok := findEvent[ErrorReceived](evs); !ok || e.Code != CodeFrameTooLarge || e.Doc != "d" || e.Fatal {
		t.Fatalf("client events %+v", evs)
	}
	if err := c.s.Err(); err != nil {
		t.Fatal(err)
	}
}
