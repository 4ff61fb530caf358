package seq

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

// Edge cases with known answers, run on both engines (Fast also with tiny
// nodes, so that every case crosses leaf boundaries).
var engines = []struct {
	name string
	mk   func() Sequence
}{
	{"Simple", func() Sequence { return NewSimple() }},
	{"Fast", func() Sequence { return NewFast() }},
	{"FastTiny", func() Sequence { return newFast(4, 3) }},
}

func forEngines(t *testing.T, fn func(t *testing.T, s Sequence)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			s := e.mk()
			fn(t, s)
			if f, ok := s.(*Fast); ok {
				if err := f.check(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func id(c uint64, a byte) ID { return ID{Counter: c, Actor: actor(a)} }

func insert(t *testing.T, s Sequence, at ID, n int, left, right ID, text string) int {
	t.Helper()
	i, err := s.Insert(at, n, left, right, text)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func wantText(t *testing.T, s Sequence, want string) {
	t.Helper()
	if got := s.Text(); got != want {
		t.Fatalf("text %q, want %q", got, want)
	}
}

// A remote insert into the middle of a typed run splits it; the halves
// keep their IDs, and Spans reports them as two runs around the newcomer.
func TestRunSplitByConcurrentInsert(t *testing.T) {
	forEngines(t, func(t *testing.T, s Sequence) {
		typeAt(t, s, id(1, 1), 0, "abcdef")
		if i := insert(t, s, id(7, 2), 2, id(3, 1), id(4, 1), "XY"); i != 3 {
			t.Fatalf("inserted at %d, want 3", i)
		}
		wantText(t, s, "abcXYdef")
		got, err := s.Spans(0, 8)
		if err != nil {
			t.Fatal(err)
		}
		want := []Run{{0, id(1, 1), 3}, {3, id(7, 2), 2}, {5, id(4, 1), 3}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("spans %v, want %v", got, want)
		}
		if i, vis, ok := s.Index(id(4, 1)); i != 5 || !vis || !ok {
			t.Fatalf("Index(4) = %d %v %v", i, vis, ok)
		}
		// Typing after 'c' again (origins c and X) goes before X only if
		// its actor sorts first; actor 1 < actor 2.
		if i := insert(t, s, id(9, 1), 1, id(3, 1), id(4, 1), "!"); i != 3 {
			t.Fatalf("concurrent insert at %d, want 3", i)
		}
		wantText(t, s, "abc!XYdef")
	})
}

// Hiding a range that spans internal runs which continue each other is
// reported as one run; with a tombstone between them, as two.
func TestSetVisibleAcrossRuns(t *testing.T) {
	forEngines(t, func(t *testing.T, s Sequence) {
		typeAt(t, s, id(1, 1), 0, "abc")
		// 4..6 typed later at the end: consecutive IDs, a separate insert.
		insert(t, s, id(4, 1), 3, id(3, 1), ID{}, "def")
		runs, err := s.SetVisible(id(2, 1), 4, false) // "bcde"
		if err != nil {
			t.Fatal(err)
		}
		if want := []Run{{1, id(2, 1), 4}}; !reflect.DeepEqual(runs, want) {
			t.Fatalf("runs %v, want %v", runs, want)
		}
		wantText(t, s, "af")
		// Show 'c' and 'e' again: 'd' between them is still hidden.
		if _, err := s.SetVisible(id(3, 1), 1, true); err != nil {
			t.Fatal(err)
		}
		runs, err = s.SetVisible(id(2, 1), 5, true)
		if err != nil {
			t.Fatal(err)
		}
		if want := []Run{{1, id(2, 1), 1}, {3, id(4, 1), 2}}; !reflect.DeepEqual(runs, want) {
			t.Fatalf("runs %v, want %v", runs, want)
		}
		wantText(t, s, "abcdef")
	})
}

// IDs of one range can lie anywhere in the sequence: SetVisible reports
// them in sequence order, each index read after the runs before it.
func TestSetVisibleOutOfOrderIDs(t *testing.T) {
	forEngines(t, func(t *testing.T, s Sequence) {
		typeAt(t, s, id(1, 1), 0, "ab")
		typeAt(t, s, id(3, 1), 0, "cd") // "cdab": IDs 3,4 then 1,2
		runs, err := s.SetVisible(id(1, 1), 4, false)
		if err != nil {
			t.Fatal(err)
		}
		if want := []Run{{0, id(3, 1), 2}, {0, id(1, 1), 2}}; !reflect.DeepEqual(runs, want) {
			t.Fatalf("runs %v, want %v", runs, want)
		}
		if s.Len() != 0 {
			t.Fatalf("len %d", s.Len())
		}
	})
}

// Remove of part of a run that a concurrent insert split earlier.
func TestRemoveAfterSplit(t *testing.T) {
	forEngines(t, func(t *testing.T, s Sequence) {
		typeAt(t, s, id(1, 1), 0, "abcdef")
		insert(t, s, id(7, 2), 1, id(3, 1), id(4, 1), "X")
		if err := s.Remove(id(7, 2), 1); err != nil {
			t.Fatal(err)
		}
		wantText(t, s, "abcdef")
		if err := s.Remove(id(2, 1), 4); err != nil { // "bcde"
			t.Fatal(err)
		}
		wantText(t, s, "af")
		if s.Has(id(3, 1), 1) || !s.Has(id(6, 1), 1) {
			t.Fatal("Has after Remove")
		}
		if i, _, ok := s.Index(id(6, 1)); !ok || i != 1 {
			t.Fatalf("Index(6) = %d %v", i, ok)
		}
		// The removed IDs can be inserted again (a redone change).
		insert(t, s, id(2, 1), 1, id(1, 1), id(6, 1), "B")
		wantText(t, s, "aBf")
	})
}

// Typing right after an Insert and then an insert with both origins zero:
// the latter must not take the place that typing would.
func TestInsertWithZeroOriginsAfterTyping(t *testing.T) {
	forEngines(t, func(t *testing.T, s Sequence) {
		typeAt(t, s, id(1, 2), 0, "abc")
		if i := insert(t, s, id(5, 1), 1, ID{}, ID{}, "Z"); i != 0 {
			t.Fatalf("inserted at %d, want 0 (actor 1 sorts first)", i)
		}
		if i := insert(t, s, id(6, 3), 1, ID{}, ID{}, "Q"); i != 4 {
			t.Fatalf("inserted at %d, want 4", i)
		}
		wantText(t, s, "ZabcQ")
	})
}

func TestBadInput(t *testing.T) {
	forEngines(t, func(t *testing.T, s Sequence) {
		typeAt(t, s, id(1, 1), 0, "abc")
		is := func(err, target error) {
			t.Helper()
			if !errors.Is(err, target) {
				t.Fatalf("error %v, want %v", err, target)
			}
		}
		_, err := s.Insert(id(2, 1), 1, ID{}, ID{}, "x")
		is(err, ErrDuplicate)
		_, err = s.Insert(id(9, 1), 1, id(8, 1), ID{}, "x")
		is(err, ErrUnknownElement)
		_, err = s.Insert(id(9, 1), 1, ID{}, id(8, 2), "x")
		is(err, ErrUnknownElement)
		if _, err = s.Insert(id(9, 1), 1, id(3, 1), id(1, 1), "x"); err == nil {
			t.Fatal("right origin before left accepted")
		}
		if _, err = s.Insert(id(9, 1), 2, ID{}, ID{}, "x"); err == nil {
			t.Fatal("count and text disagree, accepted")
		}
		_, err = s.Insert(id(0, 1), 1, ID{}, ID{}, "x")
		is(err, ErrOutOfRange)
		_, err = s.Insert(id(math.MaxUint64, 1), 1, ID{}, ID{}, "x")
		is(err, ErrOutOfRange)
		_, err = s.SetVisible(id(3, 1), 2, false)
		is(err, ErrUnknownElement)
		_, err = s.SetVisible(id(1, 1), -1, false)
		is(err, ErrOutOfRange)
		is(s.Remove(id(2, 1), 3), ErrUnknownElement)
		is(s.Remove(id(2, 1), -1), ErrOutOfRange)
		_, err = s.Spans(1, math.MaxInt)
		is(err, ErrOutOfRange)
		_, err = s.Slice(2, math.MaxInt)
		is(err, ErrOutOfRange)
		_, err = s.IDAt(3)
		is(err, ErrOutOfRange)
		_, _, err = s.Origins(-1)
		is(err, ErrOutOfRange)
		if s.Has(id(math.MaxUint64, 1), 2) {
			t.Fatal("Has of a wrapping range")
		}
		// Nothing above changed the sequence: a failed Remove is atomic.
		wantText(t, s, "abc")
	})
}

// Invalid UTF-8 is stored as Simple stores it: U+FFFD per bad byte.
func TestInvalidUTF8(t *testing.T) {
	forEngines(t, func(t *testing.T, s Sequence) {
		insert(t, s, id(1, 1), 3, ID{}, ID{}, "a\xffb")
		typeAt(t, s, id(4, 1), 3, "é")
		wantText(t, s, "a\uFFFDbé")
		if got, _ := s.Slice(1, 3); got != "\uFFFDbé" {
			t.Fatalf("slice %q", got)
		}
	})
}
