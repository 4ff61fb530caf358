package encoding

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

func mustEncode(t *testing.T, st *State, cs []*crdt.Change, opt Options) []byte {
	t.Helper()
	b, err := EncodeDocument(st, cs, opt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDocumentRoundTrip(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		g := newGen(seed)
		cs := g.history(g.r.IntN(40))
		st := g.state(3)
		for _, opt := range []Options{{}, {Compress: true}} {
			b := mustEncode(t, st, cs, opt)
			d, err := DecodeDocument(b)
			if err != nil {
				t.Fatalf("seed %d %+v: %v", seed, opt, err)
			}
			if !reflect.DeepEqual(d.State(), st) {
				t.Fatalf("seed %d: state differs", seed)
			}
			got, err := d.Changes()
			if err != nil {
				t.Fatalf("seed %d: changes: %v", seed, err)
			}
			want, _ := canonicalOrder(cs)
			if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
				t.Fatalf("seed %d: history differs", seed)
			}
			if !d.StateIsCurrent() || d.Chunks() != 1 {
				t.Fatalf("seed %d: one chunk with its state expected", seed)
			}
		}
	}
}

// The same set of changes in any order saves to the same bytes.
func TestDocumentCanonical(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		g := newGen(seed)
		cs := g.history(30)
		st := g.state(2)
		first := mustEncode(t, st, cs, Options{Compress: true})
		g.r.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
		if again := mustEncode(t, st, cs, Options{Compress: true}); !bytes.Equal(first, again) {
			t.Fatalf("seed %d: shuffled history encodes differently", seed)
		}
	}
}

// Empty changes can tie with what they depend on; the canonical order must
// still put dependencies first.
func TestCanonicalOrderEmptyChangeTie(t *testing.T) {
	a := causal.ActorID{0xaa}
	b := causal.ActorID{0x11} // sorts before a
	ca := &crdt.Change{Actor: a, Seq: 1, StartOp: 5}
	cb := &crdt.Change{Actor: b, Seq: 1, StartOp: 5, Deps: []causal.ChangeID{ca.ID()}}
	ca2 := &crdt.Change{Actor: a, Seq: 2, StartOp: 5}
	for _, in := range [][]*crdt.Change{{ca, cb, ca2}, {cb, ca2, ca}, {ca2, cb, ca}} {
		got, err := canonicalOrder(in)
		if err != nil {
			t.Fatal(err)
		}
		// cb and ca2 become ready together; cb's actor sorts first.
		want := []*crdt.Change{ca, cb, ca2}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("order %v, want %v", ids(got), ids(want))
		}
	}
}

func ids(cs []*crdt.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID().String())
	}
	return out
}

func TestEncodeDocumentRefusesBrokenHistory(t *testing.T) {
	cs := newGen(5).history(10)
	first := -1 // a first change that others follow
	for _, c := range cs {
		if c.Seq == 2 {
			for j, f := range cs {
				if f.Actor == c.Actor && f.Seq == 1 {
					first = j
				}
			}
		}
	}
	cases := map[string][]*crdt.Change{
		"missing change": append(cs[:first:first], cs[first+1:]...),
		"duplicate":      append(append([]*crdt.Change{}, cs...), cs[2]),
		"seq zero":       {{Actor: causal.ActorID{1}, Seq: 0, StartOp: 1}},
	}
	for name, in := range cases {
		if _, err := EncodeDocument(NewState(), in, Options{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	bad := &State{Root: &Node{Kind: crdt.KindMap, Keys: []string{"b", "a"}, Items: []*Node{{}, {}}}}
	if _, err := EncodeDocument(bad, nil, Options{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unsorted keys: got %v", err)
	}
}

func TestAppendAndCompact(t *testing.T) {
	g := newGen(9)
	cs := g.history(60)
	base, later := cs[:40], cs[40:]
	st := g.state(2)
	saved := mustEncode(t, st, base, Options{Compress: true})
	grown, err := AppendChanges(bytes.Clone(saved), later[:10]...)
	if err != nil {
		t.Fatal(err)
	}
	grown, err = AppendChanges(grown, later[10:]...)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(grown, saved) {
		t.Fatal("appending rewrote the saved prefix")
	}
	d, err := DecodeDocument(grown)
	if err != nil {
		t.Fatal(err)
	}
	if d.Chunks() != 3 || d.StateIsCurrent() || !reflect.DeepEqual(d.State(), st) {
		t.Fatalf("chunks %d, current %v", d.Chunks(), d.StateIsCurrent())
	}
	all, err := d.Changes()
	if err != nil || len(all) != len(cs) {
		t.Fatalf("changes: %d, %v", len(all), err)
	}
	after, err := d.ChangesAfterState()
	if err != nil || len(after) != len(later) {
		t.Fatalf("after state: %d, %v", len(after), err)
	}
	if _, err := Compact(grown, nil, Options{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("compacting a random (unreplayable) history with a stale state: %v", err)
	}
	st2 := g.state(2)
	compact, err := Compact(grown, st2, Options{Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := mustEncode(t, st2, cs, Options{Compress: true}); !bytes.Equal(compact, want) {
		t.Fatal("compacted document differs from encoding the whole history at once")
	}
	// A state appended later becomes the current one.
	withState, err := AppendState(grown, st2, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d, err = DecodeDocument(withState); err != nil || !d.StateIsCurrent() || !reflect.DeepEqual(d.State(), st2) {
		t.Fatalf("appended state: %v", err)
	}
	// Appending a change twice keeps it once.
	twice, _ := AppendChanges(grown, later[0])
	if d, err = DecodeDocument(twice); err != nil {
		t.Fatal(err)
	}
	if all, _ := d.Changes(); len(all) != len(cs) {
		t.Fatalf("duplicate kept: %d changes", len(all))
	}
	if _, err := AppendChanges([]byte("not a document"), later[0]); !errors.Is(err, ErrBadMagic) {
		t.Fatalf("appending to garbage: %v", err)
	}
}

// Every single damaged byte and every truncation is reported, never
// misread.
func TestDocumentDamageDetected(t *testing.T) {
	g := newGen(4)
	for _, opt := range []Options{{}, {Compress: true}} {
		good := mustEncode(t, g.state(2), g.history(8), opt)
		for i := range good {
			for _, x := range []byte{0x01, 0x80, 0xff} {
				b := bytes.Clone(good)
				b[i] ^= x
				if _, err := DecodeDocument(b); err == nil {
					t.Fatalf("%+v: byte %d ^ %#x not detected", opt, i, x)
				} else if !isSentinel(err) {
					t.Fatalf("byte %d: untyped error %v", i, err)
				}
			}
		}
		for n := 0; n < len(good); n++ {
			if _, err := DecodeDocument(good[:n]); !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrBadMagic) {
				t.Fatalf("cut at %d: %v", n, err)
			}
		}
	}
}

func isSentinel(err error) bool {
	for _, s := range []error{ErrBadMagic, ErrUnsupportedVersion, ErrChecksum, ErrTruncated, ErrMalformed} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func TestDocumentFutureVersion(t *testing.T) {
	b := mustEncode(t, NewState(), nil, Options{})
	b[4] = Version + 1
	_, err := DecodeDocument(b)
	var fe *FormatError
	if !errors.Is(err, ErrUnsupportedVersion) || !errors.As(err, &fe) {
		t.Fatalf("got %v", err)
	}
}
