package syncproto

import (
	"errors"
	"reflect"
	"testing"

	"github.com/converge-sync/converge/causal"
	"pgregory.net/rapid"
)

var a1, a2 = causal.ActorID{1}, causal.ActorID{2}

func samples() []Message {
	vv := causal.VersionVector{a1: 3, a2: 7}
	return []Message{
		&Hello{Version: Version, Peer: a1, Role: RoleReplica, Name: "alice's laptop"},
		&Welcome{Version: Version, Peer: a2, Role: RoleServer, MaxFrame: 1 << 20, HeartbeatMs: 15000},
		&Error{Code: CodeForbidden, Fatal: false, Doc: "notes/1", Message: "not allowed"},
		&Subscribe{Doc: "notes/1", Have: vv},
		&Subscribe{Doc: "empty", Have: causal.VersionVector{}},
		&Unsubscribe{Doc: "notes/1"},
		&Have{Doc: "notes/1", Have: vv},
		&Changes{Doc: "notes/1", Changes: [][]byte{{1, 2, 3}, {4}}},
		&Ack{Doc: "notes/1", Durable: vv},
		&Relay{Doc: "notes/1", Changes: [][]byte{{5, 6}, {7}}},
		&Presence{Doc: "notes/1", Peer: a1, TTLMs: 30000, State: []byte(`{"cursor":4}`)},
		&Leave{Doc: "notes/1", Peer: a1},
		&Ping{Nonce: 42},
		&Pong{Nonce: 42},
		&Batch{Frames: [][]byte{Encode(&Ping{Nonce: 1}), Encode(&Ack{Doc: "notes/1", Durable: vv}), Encode(&Relay{Doc: "d", Changes: [][]byte{{5}}})}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, m := range samples() {
		got, err := Decode(Encode(m), DefaultLimits)
		if err != nil {
			t.Fatalf("%s: %v", m.Type(), err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%s: got %+v want %+v", m.Type(), got, m)
		}
	}
}

func TestEveryTruncationIsRefused(t *testing.T) {
	for _, m := range samples() {
		f := Encode(m)
		for n := 0; n < len(f); n++ {
			if _, err := Decode(f[:n], DefaultLimits); err == nil {
				t.Fatalf("%s truncated to %d bytes decoded", m.Type(), n)
			}
		}
		if _, err := Decode(append(f, 0), DefaultLimits); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s with a trailing byte: %v", m.Type(), err)
		}
	}
}

func TestLimits(t *testing.T) {
	lim := DefaultLimits
	lim.MaxDocID = 4
	var fe *FrameError
	_, err := Decode(Encode(&Unsubscribe{Doc: "toolong"}), lim)
	if !errors.As(err, &fe) || fe.Code() != CodeFrameTooLarge || fe.Field != "doc" {
		t.Fatalf("long doc ID: %v", err)
	}
	lim = DefaultLimits
	lim.MaxFrame = 3
	if _, err := Decode(Encode(&Ping{Nonce: 1 << 40}), lim); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("large frame: %v", err)
	}
	// A count far beyond the bytes present is refused before allocating.
	huge := append([]byte{byte(TypeChanges), 1, 'd'}, 0xff, 0xff, 0xff, 0xff, 0x0f)
	if _, err := Decode(huge, DefaultLimits); !errors.Is(err, ErrMalformed) {
		t.Fatalf("huge count: %v", err)
	}
	// A string longer than its limit is too large only when its bytes are
	// there; a length the frame cannot back is malformed.
	long := append([]byte{byte(TypeUnsubscribe)}, 0x80, 0x40) // 8192 bytes claimed, none present
	if _, err := Decode(long, DefaultLimits); !errors.Is(err, ErrMalformed) {
		t.Fatalf("doc ID claiming more bytes than the frame holds: %v", err)
	}
	lim = DefaultLimits
	lim.MaxChanges = 2
	three := Encode(&Changes{Doc: "d", Changes: [][]byte{{1}, {2}, {3}}})
	if _, err := Decode(three, lim); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("three changes over a limit of two: %v", err)
	}
	if _, err := Decode([]byte{0x7f}, DefaultLimits); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("unknown type: %v", err)
	}
}

func TestVectorsAreCanonical(t *testing.T) {
	// Hand-built Have with actors out of order.
	f := []byte{byte(TypeHave), 1, 'd', 2}
	f = append(append(f, a2[:]...), 1)
	f = append(append(f, a1[:]...), 1)
	if _, err := Decode(f, DefaultLimits); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unsorted vector: %v", err)
	}
}

func TestRandomMessagesRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		actor := func(label string) causal.ActorID {
			var a causal.ActorID
			copy(a[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, label))
			return a
		}
		vv := causal.VersionVector{}
		for i := rapid.IntRange(0, 4).Draw(t, "n"); i > 0; i-- {
			a := actor("a")
			if !a.IsZero() {
				vv[a] = rapid.Uint64Min(1).Draw(t, "seq")
			}
		}
		doc := rapid.StringMatching(`[a-z/]{1,20}`).Draw(t, "doc")
		var m Message
		switch rapid.IntRange(0, 3).Draw(t, "kind") {
		case 0:
			m = &Subscribe{Doc: doc, Have: vv}
		case 1:
			m = &Ack{Doc: doc, Durable: vv}
		case 2:
			m = &Changes{Doc: doc, Changes: rapid.SliceOf(rapid.SliceOfN(rapid.Byte(), 1, 40)).Draw(t, "changes")}
		case 3:
			m = &Presence{Doc: doc, Peer: actor("p"), TTLMs: rapid.Uint64().Draw(t, "ttl"), State: rapid.SliceOf(rapid.Byte()).Draw(t, "state")}
		}
		got, err := Decode(Encode(m), DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := m.(*Changes); ok && len(c.Changes) == 0 {
			c.Changes = [][]byte{}
		}
		if p, ok := m.(*Presence); ok && len(p.State) == 0 {
			p.State = got.(*Presence).State
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("got %+v want %+v", got, m)
		}
	})
}

// FuzzDecode: no bytes panic the decoder; whatever decodes re-encodes to
// the same bytes (the encoding is canonical).
func FuzzDecode(f *testing.F) {
	for _, m := range samples() {
		f.Add(Encode(m))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := Decode(frame, DefaultLimits)
		if err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if again := Encode(m); string(again) != string(frame) {
			t.Fatalf("re-encoding differs:\n%x\n%x", frame, again)
		}
		// The frames of a batch are decoded as the receiver does, one by
		// one: typed errors, and never a batch within.
		if b, ok := m.(*Batch); ok {
			for _, inner := range b.Frames {
				m, err := Decode(inner, DefaultLimits)
				var fe *FrameError
				if err != nil && !errors.As(err, &fe) {
					t.Fatalf("untyped error %v", err)
				}
				switch m.(type) {
				case *Batch, *Hello, *Welcome:
					t.Fatalf("a batch holds a %s", m.Type())
				}
			}
		}
	})
}
