package causal

import (
	"errors"
	"testing"
)

func TestOpIDOrderAndParse(t *testing.T) {
	a, b := ActorID{1}, ActorID{2}
	ids := []OpID{{1, b}, {2, a}, {2, b}, {10, a}}
	for i := 1; i < len(ids); i++ {
		if !ids[i-1].Less(ids[i]) || ids[i].Less(ids[i-1]) {
			t.Fatalf("%v should sort before %v", ids[i-1], ids[i])
		}
	}
	for _, id := range append(ids, OpID{}) {
		got, err := ParseOpID(id.String())
		if err != nil || got != id {
			t.Fatalf("round trip %v: %v %v", id, got, err)
		}
	}
	for _, bad := range []string{"", "x@y", "0@" + a.String(), "5@abc", "5"} {
		if _, err := ParseOpID(bad); !errors.Is(err, ErrBadOpID) {
			t.Errorf("ParseOpID(%q) = %v", bad, err)
		}
	}
	if x, y := NewActorID(), NewActorID(); x == y || x.IsZero() {
		t.Fatal("actor IDs are not random")
	}
}

func TestVersionVectorCompare(t *testing.T) {
	a, b := ActorID{1}, ActorID{2}
	v := VersionVector{a: 2}
	w := VersionVector{a: 2, b: 1}
	cases := []struct {
		x, y VersionVector
		want Ordering
	}{
		{v, v, Equal},
		{v, w, Before},
		{w, v, After},
		{VersionVector{a: 3}, w, Concurrent},
		{nil, VersionVector{a: 0}, Equal},
	}
	for _, c := range cases {
		if got := c.x.Compare(c.y); got != c.want {
			t.Errorf("%v vs %v: %v, want %v", c.x, c.y, got, c.want)
		}
	}
	if !w.Contains(v) || v.Contains(w) || !w.Includes(ChangeID{b, 1}) || w.Includes(ChangeID{b, 2}) {
		t.Fatal("containment")
	}
	m := v.Clone()
	m.Merge(VersionVector{b: 4})
	m.Observe(ChangeID{a, 1})
	if m[a] != 2 || m[b] != 4 || v[b] != 0 || m.Total() != 6 {
		t.Fatalf("merge: %v (original %v)", m, v)
	}
}
