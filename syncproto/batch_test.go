package syncproto

import (
	"bytes"
	"errors"
	"testing"

	"github.com/converge-sync/converge/causal"
	"pgregory.net/rapid"
)

// unbatched returns the messages of frames as the receiver sees them: each
// batch opened into its frames, in order.
func unbatched(t testing.TB, frames [][]byte) (msgs []Message, batches int) {
	t.Helper()
	for _, f := range frames {
		m, err := Decode(f, DefaultLimits)
		if err != nil {
			t.Fatalf("a frame sent does not decode: %v", err)
		}
		b, ok := m.(*Batch)
		if !ok {
			msgs = append(msgs, m)
			continue
		}
		batches++
		for _, inner := range b.Frames {
			m, err := Decode(inner, DefaultLimits)
			if err != nil {
				t.Fatalf("a frame in a batch does not decode: %v", err)
			}
			msgs = append(msgs, m)
		}
	}
	return msgs, batches
}

func TestBatchRefusesHostileFraming(t *testing.T) {
	ping := Encode(&Ping{Nonce: 1})
	cases := []struct {
		name  string
		frame []byte
		field string
	}{
		{"empty batch", []byte{byte(TypeBatch), 0}, "count"},
		{"no count", []byte{byte(TypeBatch)}, "count"},
		{"count over the bytes there", append([]byte{byte(TypeBatch), 0x80, 0x80, 0x04}, ping...), "count"},
		{"count over the frames there", append([]byte{byte(TypeBatch), 2, byte(len(ping))}, ping...), "count"},
		{"count over the frames there, with bytes to spare", append(append([]byte{byte(TypeBatch), 2, byte(len(ping))}, ping...), 7, 7), "frame"},
		{"length past the end", append([]byte{byte(TypeBatch), 1, byte(len(ping) + 1)}, ping...), "frame"},
		{"empty frame", []byte{byte(TypeBatch), 1, 0, 0}, "frame"},
		{"nested batch", Append(nil, &Batch{Frames: [][]byte{ping, Append(nil, &Batch{Frames: [][]byte{ping}})}}), "frame"},
		{"hello inside", Append(nil, &Batch{Frames: [][]byte{Encode(&Hello{Version: Version})}}), "frame"},
		{"welcome inside", Append(nil, &Batch{Frames: [][]byte{ping, Encode(&Welcome{Version: Version})}}), "frame"},
		{"trailing byte", append(Append(nil, &Batch{Frames: [][]byte{ping}}), 0), "end"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.frame, DefaultLimits)
			var fe *FrameError
			if !errors.As(err, &fe) || !errors.Is(err, ErrMalformed) || fe.Type != TypeBatch || fe.Field != tc.field {
				t.Fatalf("got %v, want a malformed batch at field %s", err, tc.field)
			}
		})
	}
	// A batch is one frame: it is over the limit as a whole.
	lim := DefaultLimits
	lim.MaxFrame = 8
	big := Encode(&Batch{Frames: [][]byte{ping, ping, ping}})
	if _, err := Decode(big, lim); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a batch over the frame limit: %v", err)
	}
}

// TestSessionRefusesHostileBatches: a batch that does not decode, or comes
// where none may, ends the session with a typed error; frames of a batch
// before a bad one are handled, those after it are not.
func TestSessionRefusesHostileBatches(t *testing.T) {
	hello := func(v uint64) []byte { return Encode(&Hello{Version: v, Role: RoleReplica}) }
	batch := func(ms ...Message) []byte {
		b := &Batch{}
		for _, m := range ms {
			b.Frames = append(b.Frames, Encode(m))
		}
		return Encode(b)
	}
	cases := []struct {
		name   string
		frames [][]byte
		code   Code
		pongs  int // Pongs sent before the error
	}{
		{"batch before hello", [][]byte{batch(&Ping{Nonce: 1}, &Ping{Nonce: 2})}, CodeProtocol, 0},
		{"batch in version 2", [][]byte{hello(2), batch(&Ping{Nonce: 1}, &Ping{Nonce: 2})}, CodeProtocol, 0},
		{"empty batch", [][]byte{hello(3), {byte(TypeBatch), 0}}, CodeMalformed, 0},
		{"nested batch", [][]byte{hello(3), Append(nil, &Batch{Frames: [][]byte{Encode(&Ping{Nonce: 1}), batch(&Ping{Nonce: 2})}})}, CodeMalformed, 0},
		{"garbage inside", [][]byte{hello(3), Append(nil, &Batch{Frames: [][]byte{Encode(&Ping{Nonce: 1}), {0xff, 1}, Encode(&Ping{Nonce: 2})}})}, CodeMalformed, 1},
		{"changes without a stream inside", [][]byte{hello(3), batch(&Ping{Nonce: 1}, &Changes{Doc: "d", Changes: [][]byte{{1}}}, &Ping{Nonce: 2})}, CodeNotSubscribed, 1},
		{"frame too large inside", [][]byte{hello(3), batch(&Ping{Nonce: 1}, &Unsubscribe{Doc: string(make([]byte, 2000))})}, CodeFrameTooLarge, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, frames := closedWith(t, tc.code, tc.frames)
			msgs, _ := unbatched(t, frames)
			pongs := 0
			for _, m := range msgs {
				if _, ok := m.(*Pong); ok {
					pongs++
				}
			}
			last, ok := msgs[len(msgs)-1].(*Error)
			if !ok || !last.Fatal || last.Code != tc.code || pongs != tc.pongs {
				t.Fatalf("sent %+v, want %d Pongs then a fatal %s", msgs, tc.pongs, tc.code)
			}
		})
	}
}

// TestBatchCarriesAStepsFrames: frames ready together go as one batch, in
// order, and the peer handles them as if each had come alone.
func TestBatchCarriesAStepsFrames(t *testing.T) {
	c, s := pair(t)
	if p, _ := s.s.Peer(); p.Version != 3 {
		t.Fatalf("the session speaks version %d", p.Version)
	}
	docs := []string{"a", "b", "c", "d", "e"}
	for _, id := range docs {
		s.edit(id, "k", 1)
		if err := c.s.Subscribe(id, nil); err != nil {
			t.Fatal(err)
		}
	}
	frames, _ := c.s.Ready()
	msgs, batches := unbatched(t, frames)
	if len(frames) != 1 || batches != 1 || len(msgs) != len(docs) {
		t.Fatalf("five Subscribes went as %d frames, %d batches, %d messages", len(frames), batches, len(msgs))
	}
	for i, m := range msgs {
		if sub, ok := m.(*Subscribe); !ok || sub.Doc != docs[i] {
			t.Fatalf("message %d is %+v, want the Subscribe of %s", i, m, docs[i])
		}
	}
	s.s.Receive(frames[0], t0)
	_, evs := s.s.Ready()
	if len(evs) != len(docs) {
		t.Fatalf("the server saw %d events, want %d SubscribeRequests", len(evs), len(docs))
	}
	for i, ev := range evs {
		if req, ok := ev.(SubscribeRequest); !ok || req.Doc != docs[i] {
			t.Fatalf("event %d is %+v, want the SubscribeRequest of %s", i, ev, docs[i])
		}
	}
	s.handle(evs)
	// The answers (Changes, Have per document) go back in one frame too,
	// and the two sides end up with the same documents.
	frames, _ = s.s.Ready()
	if len(frames) != 1 {
		t.Fatalf("the answers went as %d frames", len(frames))
	}
	c.s.Receive(frames[0], t0)
	pump(c, s)
	for _, id := range docs {
		sameJSON(t, c.doc(id), s.doc(id))
	}
	// One frame ready goes as it is.
	c.s.send(&Ping{Nonce: 9})
	if frames, _ := c.s.Ready(); len(frames) != 1 || frames[0][0] != byte(TypePing) {
		t.Fatalf("a lone Ping went as %x", frames)
	}
}

// TestBatchWithOlderPeers: a version 2 peer, on either side, never gets a
// batch, and still syncs every document.
func TestBatchWithOlderPeers(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		client, server, speaks uint64
	}{
		{"client of version 2", 2, Version, 2},
		{"server of version 2", Version, 2, 2},
		{"client of version 1", 1, Version, 1},
		{"both of version 3", Version, Version, 3},
		{"client newer than this build", Version + 5, Version, Version},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newNode(t, RoleReplica, true, Limits{})
			s := newNode(t, RoleServer, false, Limits{})
			c.s = NewSession(Config{Actor: c.actor, Role: RoleReplica, Dial: true, Version: min(tc.client, Version)}, t0)
			if tc.client > Version {
				c.s.outbox[0].(*Hello).Version = tc.client // a newer build's Hello
			}
			s.s = NewSession(Config{Actor: s.actor, Role: RoleServer, Version: tc.server}, t0)
			var batches int
			carry := func(from, to *node) int {
				frames, evs := from.s.Ready()
				from.handle(evs)
				_, n := unbatched(t, frames)
				batches += n
				for _, f := range frames {
					to.s.Receive(f, t0)
				}
				return len(frames) + len(evs)
			}
			for _, id := range []string{"a", "b", "c"} {
				s.edit(id, "k", 1)
				c.edit(id, "j", 2)
			}
			for range 20 {
				if carry(c, s)+carry(s, c) == 0 {
					break
				}
				if p, ok := c.s.Peer(); ok && len(c.s.docs) == 0 {
					if p.Version != tc.speaks {
						t.Fatalf("the session speaks version %d, want %d", p.Version, tc.speaks)
					}
					for _, id := range []string{"a", "b", "c"} {
						c.s.Subscribe(id, c.doc(id).Version())
					}
				}
			}
			for _, id := range []string{"a", "b", "c"} {
				sameJSON(t, c.doc(id), s.doc(id))
			}
			if got := batches > 0; got != (tc.speaks >= 3) {
				t.Fatalf("%d batches sent in a version %d session", batches, tc.speaks)
			}
		})
	}
}

// TestBatchNeverHoldsTheWelcome: the peer learns from Welcome that it may
// get batches, so Welcome goes alone, even with frames behind it.
func TestBatchNeverHoldsTheWelcome(t *testing.T) {
	s := NewSession(Config{Actor: causal.NewActorID(), Role: RoleServer}, t0)
	s.Receive(Encode(&Hello{Version: Version, Role: RoleReplica}), t0)
	s.Receive(Encode(&Ping{Nonce: 1}), t0)
	s.Receive(Encode(&Ping{Nonce: 2}), t0)
	frames, _ := s.Ready()
	if len(frames) != 2 || frames[0][0] != byte(TypeWelcome) || frames[1][0] != byte(TypeBatch) {
		t.Fatalf("sent %x, want Welcome then a batch of two Pongs", frames)
	}
}

// TestBatchKeepsWithinThePeersLimit: whatever the sizes of the frames
// ready, every frame sent is within the peer's limit (but for a frame too
// large to share one, which goes alone, as it would unbatched), and the
// peer gets every frame, in order.
func TestBatchKeepsWithinThePeersLimit(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		limit := rapid.IntRange(8, 300).Draw(rt, "limit")
		s := NewSession(Config{Actor: causal.NewActorID(), Role: RoleServer}, t0)
		s.Receive(Encode(&Hello{Version: Version, Role: RoleReplica, MaxFrame: uint64(limit)}), t0)
		s.Ready()
		var want []Message
		for i, n := range rapid.SliceOfN(rapid.IntRange(0, limit), 1, 40).Draw(rt, "sizes") {
			// A Presence of about n bytes: the frame limit is the peer's
			// to keep, so any size up to it may be ready.
			state := bytes.Repeat([]byte{'x'}, max(0, n-22))
			m := &Presence{Doc: "d", Peer: causal.ActorID{byte(i)}, State: state}
			want = append(want, m)
			s.outbox = append(s.outbox, m)
		}
		frames, _ := s.Ready()
		got, _ := unbatched(t, frames)
		if len(got) != len(want) {
			rt.Fatalf("the peer gets %d frames, want %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(Encode(got[i]), Encode(want[i])) {
				rt.Fatalf("frame %d: the peer gets %+v, want %+v", i, got[i], want[i])
			}
		}
		for _, f := range frames {
			if f[0] == byte(TypeBatch) && len(f) > limit {
				rt.Fatalf("a batch of %d bytes, over the peer's %d", len(f), limit)
			}
		}
		// Packed: frames ready that fit in one batch together go as one.
		total := 0
		for _, f := range frames {
			total += batchSize(t, f)
		}
		if len(want) > 1 && 1+uvarintLen(len(want))+total <= limit && len(frames) != 1 {
			rt.Fatalf("%d frames of %d bytes in all went as %d, within a limit of %d", len(want), total, len(frames), limit)
		}
	})
}

// batchSize is the size of frame's contents in a batch: the frame with its
// length, or a batch's frames with theirs.
func batchSize(t testing.TB, f []byte) int {
	m, err := Decode(f, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := m.(*Batch); ok {
		n := 0
		for _, inner := range b.Frames {
			n += uvarintLen(len(inner)) + len(inner)
		}
		return n
	}
	return uvarintLen(len(f)) + len(f)
}
