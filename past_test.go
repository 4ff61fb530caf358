package converge_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/causal"
)

// seen is the document as a replica showed it at one point of its
// history.
type seen struct {
	change  causal.ChangeID      // the local change just made (zero after a merge)
	version causal.VersionVector // the document's version then
	json    string
}

func mustJSON(t *testing.T, read func(string) ([]byte, error)) string {
	t.Helper()
	b, err := read("")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func change(t *testing.T, d *converge.Doc, fn func(tx *converge.Txn) error) {
	t.Helper()
	if err := d.Change(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// edit makes one random change of a few kinds that conflict, interleave
// and nest, so that past versions differ in every way a document can.
func edit(t *testing.T, d *converge.Doc, rng *rand.Rand, step int) {
	t.Helper()
	change(t, d, func(tx *converge.Txn) error {
		if _, err := tx.Get("/text"); err != nil {
			if err := tx.Set("/text", converge.Text("")); err != nil {
				return err
			}
			if err := tx.Set("/list", []any{}); err != nil {
				return err
			}
		}
		switch rng.Intn(5) {
		case 0:
			return tx.Set("/title", fmt.Sprintf("title %d", step)) // concurrent sets conflict
		case 1:
			v, _ := tx.Get("/text")
			n := len([]rune(v.(string)))
			return tx.Splice("/text", rng.Intn(n+1), 0, fmt.Sprintf("<%d>", step))
		case 2:
			return tx.Insert("/list/-", map[string]any{"step": step})
		case 3:
			if v, _ := tx.Get("/list"); len(v.([]any)) > 0 {
				return tx.Delete("/list/0")
			}
			return tx.Set("/empty", true)
		default:
			return tx.Set(fmt.Sprintf("/k%d", rng.Intn(3)), step)
		}
	})
}

func lastChange(t *testing.T, d *converge.Doc) causal.ChangeID {
	t.Helper()
	h := d.History()
	if len(h) == 0 {
		t.Fatal("no history")
	}
	return h[len(h)-1].ID
}

// Each point of a history, recorded as the document showed it, reads the
// same through At (its version) and, for local changes, AtChange (the
// change): while the replica runs, and after it reopens from a saved copy
// and a log.
func TestPastVersionsReadAsTheyWere(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ra, err := converge.Open(ctx, dir, converge.WithCompactAfter(7))
	if err != nil {
		t.Fatal(err)
	}
	rb := openMem(t)
	a, err := ra.Doc(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	b, err := rb.Doc(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	past := []seen{{version: nil, json: "{}"}}
	for step := 0; step < 60; step++ {
		switch rng.Intn(4) {
		case 0, 1:
			edit(t, a, rng, step)
			past = append(past, seen{change: lastChange(t, a), version: a.Version(), json: mustJSON(t, a.JSON)})
		case 2:
			edit(t, b, rng, step)
		default: // exchange both ways: a sees b's concurrent changes
			if err := a.Merge(ctx, b.ChangesSince(a.Version())...); err != nil {
				t.Fatal(err)
			}
			if err := b.Merge(ctx, a.ChangesSince(b.Version())...); err != nil {
				t.Fatal(err)
			}
			past = append(past, seen{version: a.Version(), json: mustJSON(t, a.JSON)})
		}
	}
	check := func(a *converge.Doc, when string) {
		t.Helper()
		for i, p := range past {
			s, err := a.At(p.version)
			if err != nil {
				t.Fatalf("%s: At(%v): %v", when, p.version, err)
			}
			if got := mustJSON(t, s.JSON); got != p.json {
				t.Fatalf("%s: point %d: At(%v) reads\n%s\nthe document showed\n%s", when, i, p.version, got, p.json)
			}
			if s.Version().Compare(p.version) != causal.Equal || uint64(len(s.History())) != p.version.Total() {
				t.Fatalf("%s: point %d: snapshot version %v with %d changes, want %v", when, i, s.Version(), len(s.History()), p.version)
			}
			if p.change == (causal.ChangeID{}) {
				continue
			}
			s, err = a.AtChange(p.change)
			if err != nil {
				t.Fatalf("%s: AtChange(%v): %v", when, p.change, err)
			}
			if got := mustJSON(t, s.JSON); got != p.json || s.Version().Compare(p.version) != causal.Equal {
				t.Fatalf("%s: point %d: AtChange(%v) reads %v\n%s\nthe document showed %v\n%s", when, i, p.change, s.Version(), got, p.version, p.json)
			}
		}
	}
	check(a, "running")
	if err := ra.Close(); err != nil {
		t.Fatal(err)
	}
	ra, err = converge.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	a, err = ra.Doc(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	check(a, "reopened")
}

// A snapshot keeps the conflicts of its time: those unresolved then are
// listed, those that came later are not.
func TestSnapshotConflicts(t *testing.T) {
	ctx := context.Background()
	a, b := openMem(t), openMem(t)
	da, _ := a.Doc(ctx, "trip")
	db, _ := b.Doc(ctx, "trip")
	change(t, da, func(tx *converge.Txn) error { return tx.Set("/dest", "Porto") })
	change(t, db, func(tx *converge.Txn) error { return tx.Set("/dest", "Lisbon") })
	before := da.Version()
	if err := da.Merge(ctx, db.ChangesSince(da.Version())...); err != nil {
		t.Fatal(err)
	}
	conflicted := da.Version()
	cands, err := da.ConflictsAt("/dest")
	if err != nil || len(cands) != 2 {
		t.Fatalf("ConflictsAt: %v %v", cands, err)
	}
	change(t, da, func(tx *converge.Txn) error { return tx.Resolve("/dest", cands[0].Op) })
	if len(da.Conflicts()) != 0 {
		t.Fatalf("resolved, yet %+v", da.Conflicts())
	}

	s, err := da.At(conflicted)
	if err != nil {
		t.Fatal(err)
	}
	cs := s.Conflicts()
	if len(cs) != 1 || cs[0].Path != "/dest" || len(cs[0].Candidates) != 2 {
		t.Fatalf("conflicts at %v: %+v", conflicted, cs)
	}
	past, err := s.ConflictsAt("/dest")
	if err != nil || len(past) != 2 || past[0].Op != cands[0].Op || past[1].Op != cands[1].Op {
		t.Fatalf("ConflictsAt then: %+v %v; want %+v", past, err, cands)
	}
	if v, err := s.Get("/dest"); err != nil || v != cands[1].Value {
		t.Fatalf("Get then: %v %v; shown was %v", v, err, cands[1].Value)
	}
	s, err = da.At(before)
	if err != nil {
		t.Fatal(err)
	}
	if cs := s.Conflicts(); len(cs) != 0 {
		t.Fatalf("before the merge: %+v", cs)
	}
	if got, err := s.ConflictsAt("/dest"); err != nil || len(got) != 1 || got[0].Value != "Porto" {
		t.Fatalf("before the merge, /dest: %+v %v", got, err)
	}
	// b's change, as b saw it: b's value alone, no conflict.
	s, err = da.AtChange(lastChange(t, db))
	if err != nil {
		t.Fatal(err)
	}
	if got := mustJSON(t, s.JSON); got != `{"dest":"Lisbon"}` || len(s.Conflicts()) != 0 {
		t.Fatalf("as b saw it: %s %+v", got, s.Conflicts())
	}
}

// A snapshot is on its own: later changes do not reach it.
func TestSnapshotStaysInThePast(t *testing.T) {
	ctx := context.Background()
	d, _ := openMem(t).Doc(ctx, "d")
	change(t, d, func(tx *converge.Txn) error { return tx.Set("/n", 1) })
	s, err := d.AtChange(lastChange(t, d))
	if err != nil {
		t.Fatal(err)
	}
	change(t, d, func(tx *converge.Txn) error { return tx.Set("/n", 2) })
	if v, err := s.Get("/n"); err != nil || v != int64(1) {
		t.Fatalf("snapshot reads %v %v after a later change", v, err)
	}
	if _, err := s.Get("/missing"); !errors.Is(err, converge.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
}

// Versions that name changes the replica lacks, or leave out a
// dependency, are typed errors that say which change.
func TestBadPastVersions(t *testing.T) {
	ctx := context.Background()
	ra, rb := openMem(t), openMem(t)
	a, _ := ra.Doc(ctx, "d")
	b, _ := rb.Doc(ctx, "d")
	change(t, a, func(tx *converge.Txn) error { return tx.Set("/x", 1) })
	change(t, a, func(tx *converge.Txn) error { return tx.Set("/x", 2) })
	a2 := lastChange(t, a)
	if err := b.Merge(ctx, a.ChangesSince(nil)...); err != nil {
		t.Fatal(err)
	}
	change(t, b, func(tx *converge.Txn) error { return tx.Set("/y", 1) }) // depends on a's second change
	b1 := lastChange(t, b)
	if err := a.Merge(ctx, b.ChangesSince(a.Version())...); err != nil {
		t.Fatal(err)
	}
	stranger := causal.NewActorID()

	cases := []struct {
		name    string
		version causal.VersionVector
		want    error
		change  causal.ChangeID
	}{
		{"a change past the last held", causal.VersionVector{a2.Actor: 3}, converge.ErrUnknownChange, causal.ChangeID{Actor: a2.Actor, Seq: 3}},
		{"an actor never seen", causal.VersionVector{stranger: 1}, converge.ErrUnknownChange, causal.ChangeID{Actor: stranger, Seq: 1}},
		{"a dependency left out", causal.VersionVector{a2.Actor: 1, b1.Actor: 1}, converge.ErrNotCausallyClosed, a2},
	}
	for _, c := range cases {
		s, err := a.At(c.version)
		var ve *converge.VersionError
		if s != nil || !errors.Is(err, c.want) || !errors.As(err, &ve) || ve.Change != c.change || ve.Doc != "d" {
			t.Errorf("%s: At(%v) = %v, %v; want %v naming %v", c.name, c.version, s, err, c.want, c.change)
		}
	}
	for _, id := range []causal.ChangeID{{Actor: a2.Actor, Seq: 0}, {Actor: a2.Actor, Seq: 9}, {Actor: stranger, Seq: 1}} {
		if s, err := a.AtChange(id); s != nil || !errors.Is(err, converge.ErrUnknownChange) {
			t.Errorf("AtChange(%v) = %v, %v; want ErrUnknownChange", id, s, err)
		}
	}
	// The same version, closed, reads.
	s, err := a.At(causal.VersionVector{a2.Actor: 2, b1.Actor: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustJSON(t, s.JSON); got != `{"x":2,"y":1}` {
		t.Fatalf("closed version: %s", got)
	}
	// An actor named with no change is no change.
	if s, err := a.At(causal.VersionVector{a2.Actor: 1, stranger: 0}); err != nil || mustJSON(t, s.JSON) != `{"x":1}` {
		t.Fatalf("a version with a zero entry: %v", err)
	}
	// A missing document has no past but the empty one.
	empty, _ := ra.Doc(ctx, "nothing")
	if s, err := empty.At(nil); err != nil || mustJSON(t, s.JSON) != "{}" {
		t.Fatalf("empty version of an empty document: %v", err)
	}
	if _, err := empty.At(causal.VersionVector{a2.Actor: 1}); !errors.Is(err, converge.ErrUnknownChange) {
		t.Fatalf("a version of another document: %v", err)
	}
}

// Reading the past while the document changes: each snapshot is the
// document as it was (for the race detector too).
func TestAtWhileChanging(t *testing.T) {
	ctx := context.Background()
	d, _ := openMem(t).Doc(ctx, "d")
	const n = 200
	ids := make(chan causal.ChangeID, n)
	go func() {
		defer close(ids)
		for i := 1; i <= n; i++ {
			if err := d.Change(ctx, func(tx *converge.Txn) error { return tx.Set("/n", i) }); err != nil {
				t.Error(err)
				return
			}
			h := d.History()
			ids <- h[len(h)-1].ID
		}
	}()
	for id := range ids {
		s, err := d.AtChange(id)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := s.Get("/n"); err != nil || v != int64(id.Seq) {
			t.Fatalf("after change %v: /n is %v (%v), want %d", id, v, err, id.Seq)
		}
	}
}
