package encoding

import (
	"errors"
	"reflect"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

func TestStreamRoundTrip(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		g := newGen(seed)
		w, r := NewChangeWriter(), NewChangeReader()
		for i := 0; i < 20; i++ {
			c := g.change()
			got, err := r.Decode(w.Encode(c))
			if err != nil {
				t.Fatalf("seed %d change %d: %v", seed, i, err)
			}
			if !reflect.DeepEqual(got, c) {
				t.Fatalf("seed %d change %d: differs\n got %#v\nwant %#v", seed, i, got, c)
			}
		}
	}
}

func TestStreamLostFrameIsDetected(t *testing.T) {
	g := newGen(3)
	w, r := NewChangeWriter(), NewChangeReader()
	first, second, third := w.Encode(g.change()), w.Encode(g.change()), w.Encode(g.change())
	if _, err := r.Decode(first); err != nil {
		t.Fatal(err)
	}
	_ = second // lost on the way
	if _, err := r.Decode(third); !errors.Is(err, ErrChecksum) {
		t.Fatalf("skipped frame: got %v, want ErrChecksum", err)
	}
	if _, err := r.Decode(second); !errors.Is(err, ErrStreamBroken) {
		t.Fatalf("after a failure: got %v, want ErrStreamBroken", err)
	}
}

func TestStreamShortFrame(t *testing.T) {
	if _, err := NewChangeReader().Decode([]byte{1, 2}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("got %v", err)
	}
}

// keystrokes returns a text being typed one character per change, a second
// apart, by one actor, after a first change that made the text object.
func keystrokes(n int) []*crdt.Change {
	actor := causal.ActorID{0x6b, 0x65, 0x79, 9: 1}
	const t0 = 1_700_000_000_000
	text := causal.OpID{Counter: 1, Actor: actor}
	cs := []*crdt.Change{{Actor: actor, Seq: 1, StartOp: 1, Time: t0,
		Ops: []crdt.Op{{Action: crdt.ActPut, Key: "body", Value: crdt.NewText()}}}}
	prev := causal.OpID{}
	for i := 0; i < n; i++ {
		id := causal.OpID{Counter: uint64(2 + i), Actor: actor}
		cs = append(cs, &crdt.Change{Actor: actor, Seq: uint64(2 + i), StartOp: id.Counter, Time: t0 + int64(1000*(i+1)),
			Ops: []crdt.Op{{Action: crdt.ActInsertText, Obj: text, Left: prev, Text: "x"}}})
		prev = id
	}
	return cs
}

// The sync target: one keystroke on the wire in under 30 bytes.
func TestKeystrokeSize(t *testing.T) {
	cs := keystrokes(50)
	w := NewChangeWriter()
	var last []byte
	for _, c := range cs {
		last = w.Encode(c)
	}
	alone := EncodeChange(cs[len(cs)-1])
	t.Logf("single keystroke: stream %d bytes, standalone %d bytes", len(last), len(alone))
	if len(last) >= 30 {
		t.Errorf("stream keystroke is %d bytes, want < 30", len(last))
	}
}
