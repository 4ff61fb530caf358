package seq

import (
	"testing"

	"github.com/converge-sync/converge/causal"
)

func actor(b byte) causal.ActorID { return causal.ActorID{b} }

// typeAt inserts text at visible index i as one local run.
func typeAt(t *testing.T, s Sequence, id ID, i int, text string) {
	t.Helper()
	l, r, err := s.Origins(i)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Insert(id, len([]rune(text)), l, r, text); err != nil {
		t.Fatal(err)
	}
}

func TestSimpleLocalEditing(t *testing.T) {
	s := NewSimple()
	a := actor(1)
	typeAt(t, s, ID{Counter: 1, Actor: a}, 0, "hello")
	typeAt(t, s, ID{Counter: 6, Actor: a}, 5, " world")
	typeAt(t, s, ID{Counter: 12, Actor: a}, 0, ">")
	if got := s.Text(); got != ">hello world" {
		t.Fatalf("text %q", got)
	}
	runs, err := s.SetVisible(ID{Counter: 2, Actor: a}, 3, false) // "ell"
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Index != 2 || runs[0].Len != 3 {
		t.Fatalf("runs %+v", runs)
	}
	if got := s.Text(); got != ">ho world" {
		t.Fatalf("text %q", got)
	}
	// Deleting again changes nothing.
	if runs, _ := s.SetVisible(ID{Counter: 2, Actor: a}, 3, false); len(runs) != 0 {
		t.Fatalf("second delete changed %+v", runs)
	}
	if idx, vis, ok := s.Index(ID{Counter: 3, Actor: a}); !ok || vis || idx != 2 {
		t.Fatalf("index of deleted: %d %v %v", idx, vis, ok)
	}
	if err := s.Remove(ID{Counter: 12, Actor: a}, 1); err != nil {
		t.Fatal(err)
	}
	if got := s.Text(); got != "ho world" {
		t.Fatalf("text after remove %q", got)
	}
}

// Two actors type concurrently at the same place: the runs never interleave,
// and the order does not depend on which arrives first.
func TestSimpleConcurrentRunsDoNotInterleave(t *testing.T) {
	a, b := actor(1), actor(2)
	base := func() *Simple {
		s := NewSimple()
		typeAt(t, s, ID{Counter: 1, Actor: a}, 0, "[]")
		return s
	}
	// Both insert between '[' and ']'.
	left, right := ID{Counter: 1, Actor: a}, ID{Counter: 2, Actor: a}
	insA := func(s *Simple) {
		if _, err := s.Insert(ID{Counter: 3, Actor: a}, 3, left, right, "abc"); err != nil {
			t.Fatal(err)
		}
	}
	insB := func(s *Simple) {
		if _, err := s.Insert(ID{Counter: 3, Actor: b}, 3, left, right, "xyz"); err != nil {
			t.Fatal(err)
		}
	}
	s1, s2 := base(), base()
	insA(s1)
	insB(s1)
	insB(s2)
	insA(s2)
	if s1.Text() != s2.Text() {
		t.Fatalf("diverged: %q vs %q", s1.Text(), s2.Text())
	}
	if got := s1.Text(); got != "[abcxyz]" {
		t.Fatalf("text %q", got)
	}
}
