package encoding

import (
	"errors"
	"reflect"
	"testing"

	"github.com/converge-sync/converge/crdt"
)

func encodeHistoryForTest(cs []*crdt.Change) ([]byte, *actorTable) {
	s := newActorSet()
	s.addChanges(cs)
	t := s.table()
	w := writeHistory(t, cs)
	plan := w.planText(nil) // no dictionary: text mode 0
	return w.appendSectionRenumbered(nil, nil, &plan, nil, false), t
}

func TestHistoryRoundTrip(t *testing.T) {
	for seed := uint64(0); seed < 500; seed++ {
		g := newGen(seed)
		var cs []*crdt.Change
		for i := g.r.IntN(30); i > 0; i-- {
			cs = append(cs, g.change())
		}
		b, tab := encodeHistoryForTest(cs)
		got, err := decodeHistory(b, tab.ids, nil, Version)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if len(cs) == 0 && len(got) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, cs) {
			for i := range cs {
				if !reflect.DeepEqual(got[i], cs[i]) {
					t.Fatalf("seed %d change %d differs\n got %#v\nwant %#v", seed, i, got[i], cs[i])
				}
			}
			t.Fatalf("seed %d differs", seed)
		}
	}
}

func TestHistoryTruncatedEverywhere(t *testing.T) {
	g := newGen(11)
	var cs []*crdt.Change
	for i := 0; i < 10; i++ {
		cs = append(cs, g.change())
	}
	b, tab := encodeHistoryForTest(cs)
	for n := 0; n < len(b); n++ {
		_, err := decodeHistory(b[:n], tab.ids, nil, Version)
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("cut at %d of %d: got %v", n, len(b), err)
		}
	}
}
