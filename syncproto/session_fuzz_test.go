package syncproto

import (
	"testing"

	"github.com/converge-sync/converge/causal"
)

// FuzzSession feeds arbitrary frames to an accepting session, after a
// valid Hello or none: whatever arrives, the session must not panic, every
// frame it answers with must decode, and once it has ended it stays ended.
func FuzzSession(f *testing.F) {
	hello := Encode(&Hello{Version: Version, Role: RoleReplica, Name: "fuzz"})
	f.Add(true, Encode(&Subscribe{Doc: "d"}), Encode(&Changes{Doc: "d", Changes: [][]byte{{1, 2, 3, 4, 5}}}))
	f.Add(true, Encode(&Presence{Doc: "d", TTLMs: 5, State: []byte("{}")}), Encode(&Ack{Doc: "d"}))
	f.Add(false, Encode(&Ping{Nonce: 7}), []byte{0x13, 1, 'd', 1, 1, 0})
	f.Add(true, Encode(&Subscribe{Doc: "d"}), Encode(&Relay{Doc: "d", Changes: [][]byte{{0x85, 0x6f, 0x4a, 0x83, 1, 'c'}}}))
	batch := Encode(&Batch{Frames: [][]byte{Encode(&Subscribe{Doc: "d"}), Encode(&Ping{Nonce: 1}), Encode(&Unsubscribe{Doc: "d"})}})
	f.Add(true, batch, Encode(&Batch{Frames: [][]byte{Encode(&Ack{Doc: "d"}), batch}}))
	f.Fuzz(func(t *testing.T, greet bool, a, b []byte) {
		s := NewSession(Config{Actor: causal.ActorID{1}, Role: RoleServer}, t0)
		if greet {
			s.Receive(hello, t0)
		}
		for _, frame := range [][]byte{a, b, a} {
			s.Receive(frame, t0)
			frames, events := s.Ready()
			for _, out := range frames {
				m, err := Decode(out, DefaultLimits)
				if err != nil {
					t.Fatalf("the session sent a frame that does not decode: %v", err)
				}
				if b, ok := m.(*Batch); ok {
					for _, inner := range b.Frames {
						if _, err := Decode(inner, DefaultLimits); err != nil {
							t.Fatalf("the session sent a batch holding a frame that does not decode: %v", err)
						}
					}
				}
			}
			for _, ev := range events {
				if req, ok := ev.(SubscribeRequest); ok {
					s.Answer(req.Doc, nil, causal.VersionVector{})
				}
			}
		}
		if s.Err() != nil {
			s.Receive(hello, t0)
			if frames, events := s.Ready(); len(frames)+len(events) != 0 {
				t.Fatal("an ended session answered")
			}
		}
	})
}
