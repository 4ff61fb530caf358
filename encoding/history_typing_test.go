package encoding

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// typist edits one text as a person does: mostly typing on at a cursor,
// sometimes jumping, backspacing, typing a non-ASCII character, adding a
// message, or writing a map key, while another replica's changes arrive
// now and then (late ones too, which put the history out of canonical
// order). Its history is kept twice: compact, where runs of keystrokes take
// the quick way, and as a slice.
type typist struct {
	r        *rand.Rand
	d, twin  *crdt.Doc
	other    *crdt.Doc
	held     []*crdt.Change // the other replica's changes not yet delivered
	text     crdt.ObjID
	cursor   int
	mode     int
	time     int64
	lateOnly bool
}

func newTypist(t *testing.T, seed uint64) *typist {
	setup := crdt.NewDoc(causal.ActorID{0xff})
	c, _, err := setup.Change(crdt.ChangeOptions{Time: 5}, func(tx *crdt.Txn) error {
		_, err := tx.Put(crdt.Root, "text", crdt.NewText())
		return err
	})
	must(t, err)
	ty := &typist{
		r:     rand.New(rand.NewPCG(seed, 7)),
		d:     crdt.NewDoc(causal.ActorID{0x01}, crdt.WithHistory(NewHistory())),
		twin:  crdt.NewDoc(causal.ActorID{0x01}),
		other: crdt.NewDoc(causal.ActorID{0x02}),
		text:  causal.OpID{Counter: c.StartOp, Actor: c.Actor},
	}
	for _, d := range []*crdt.Doc{ty.d, ty.twin, ty.other} {
		_, err := d.Apply(c)
		must(t, err)
	}
	return ty
}

func (ty *typist) step(t *testing.T) {
	r := ty.r
	ty.time += []int64{1000, 1000, 1000, 37, 1}[r.IntN(5)]
	n := ty.d.Len(ty.text)
	ty.cursor = min(ty.cursor, n)
	opts := crdt.ChangeOptions{Time: ty.time}
	if r.IntN(40) == 0 {
		opts.Message = "m"
	}
	// People keep doing what they were doing: typing on, backspacing,
	// deleting forward; now and then they do something else.
	if r.IntN(8) == 0 {
		ty.mode = r.IntN(10)
	}
	k, j, moveTo := r.IntN(100), r.IntN(4), r.IntN(n+1)
	switch {
	case ty.mode < 6:
		k = 0 // type
	case ty.mode < 8:
		k = 75 // backspace
	case ty.mode < 9:
		k = 94 // delete forward
	}
	nonASCII := r.IntN(30) == 0
	cursor := ty.cursor
	fn := func(tx *crdt.Txn) error {
		ty.cursor = cursor
		switch {
		case k < 70:
			ch := "abc "[j : j+1]
			if nonASCII {
				ch = "é"
			}
			ty.cursor++
			return tx.Splice(ty.text, ty.cursor-1, 0, ch)
		case k < 80 && ty.cursor > 0:
			ty.cursor--
			return tx.Splice(ty.text, ty.cursor, 1, "")
		case k < 88:
			ty.cursor = moveTo
		case k < 92:
			_, err := tx.Put(crdt.Root, "k", crdt.Int(int64(k)))
			return err
		case k < 94:
			ty.cursor += 2
			return tx.Splice(ty.text, ty.cursor-2, 0, "xy")
		case ty.cursor < n:
			return tx.Splice(ty.text, ty.cursor, 1, "")
		}
		return nil
	}
	// The same edit, made on the twin the usual way, is what the compact
	// history must give back.
	want, _, err := ty.twin.Change(opts, fn)
	must(t, err)
	seq, _, err := ty.d.Edit(opts, fn)
	must(t, err)
	if (want == nil) != (seq == 0) {
		t.Fatalf("Edit made change %d, Change %v", seq, want)
	}
	if want != nil {
		id := causal.ChangeID{Actor: ty.d.Actor(), Seq: seq}
		c, ok := ty.d.ChangeByID(id)
		if !ok || !bytes.Equal(EncodeChange(c), EncodeChange(want)) {
			t.Fatalf("Edit's change %v, read back, is not Change's", id)
		}
		_, err = ty.other.Apply(want)
		must(t, err)
	}
	// The other replica types now and then; its changes arrive later,
	// sometimes after more of its own or of ours.
	if r.IntN(15) == 0 {
		m := ty.other.Len(ty.text)
		c, _, err := ty.other.Change(crdt.ChangeOptions{Time: ty.time}, func(tx *crdt.Txn) error {
			return tx.Splice(ty.text, r.IntN(m+1), 0, "Z")
		})
		must(t, err)
		ty.held = append(ty.held, c)
	}
	if len(ty.held) > 0 && (!ty.lateOnly || r.IntN(20) == 0) && r.IntN(4) == 0 {
		_, err := ty.d.Apply(ty.held...)
		must(t, err)
		_, err = ty.twin.Apply(ty.held...)
		must(t, err)
		ty.held = nil
	}
}

// check compares what the compact history returns and saves with the
// slice twin.
func (ty *typist) check(t *testing.T, what string) {
	a, b := ty.d.Changes(), ty.twin.Changes()
	if len(a) != len(b) {
		t.Fatalf("%s: %d changes, twin %d", what, len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(EncodeChange(a[i]), EncodeChange(b[i])) {
			t.Fatalf("%s: change %d (%v) differs from the twin's (%v)", what, i, a[i].ID(), b[i].ID())
		}
	}
	v := ty.twin.Version()
	v[causal.ActorID{0x01}] /= 2
	since, want := ty.d.ChangesSince(v), ty.twin.ChangesSince(v)
	if len(since) != len(want) {
		t.Fatalf("%s: ChangesSince: %d changes, twin %d", what, len(since), len(want))
	}
	for _, opt := range []Options{{}, {Compress: true}} {
		fast, err := SaveDoc(ty.d, opt)
		must(t, err)
		slow, err := encodeDocument(StateOf(ty.twin), ty.twin.Changes(), opt, ty.twin)
		must(t, err)
		if !bytes.Equal(fast, slow) {
			t.Fatalf("%s: saved compact history (%d bytes) differs from EncodeDocument (%d bytes)", what, len(fast), len(slow))
		}
	}
}

// A history written with keystrokes taking the quick way is the one the
// usual way writes: the same changes come back from it, it saves the same
// bytes, and its checkpoints (every chunkRows changes, some falling inside
// runs of typing) decode.
func TestHistoryTypingMatchesEncodeDocument(t *testing.T) {
	t.Run("quick", typingMatchesEncodeDocument)
	// Every keystroke of every run written one by one (appendKeystroke, as
	// when the text tracking has given up), none the quick way: the same
	// bytes as EncodeDocument writes from the changes.
	t.Run("usual", func(t *testing.T) {
		if testing.Short() {
			t.Skip("the same bytes by the slow way: the full run checks it")
		}
		quickRuns = false
		defer func() { quickRuns = true }()
		typingMatchesEncodeDocument(t)
	})
	// Written by the writer goroutine, a few jobs at a time.
	t.Run("behind", func(t *testing.T) {
		smallBatches(t, 2, 7)
		typingMatchesEncodeDocument(t)
	})
}

func typingMatchesEncodeDocument(t *testing.T) {
	for seed := uint64(0); seed < 12; seed++ {
		ty := newTypist(t, seed)
		ty.lateOnly = seed%3 == 2
		steps := 300 + ty.r.IntN(1500)
		for i := 0; i < steps; i++ {
			ty.step(t)
			if i%97 == 0 {
				ty.check(t, "midway")
			}
		}
		ty.check(t, "at the end")
	}
}

// Deletions that turn back on themselves (a remote replica may delete a
// character already deleted) still read back as they were written: the
// quick way is taken only while the side stays the same.
func TestHistoryDeleteRunsTurning(t *testing.T) {
	a := causal.ActorID{0x01}
	changes, text := textTyped(a, "abcdefghij")
	seq, op := uint64(3), uint64(12)
	for _, e := range []uint64{6, 5, 4, 5, 6, 7, 6, 5, 4, 3, 4, 5, 9, 10, 11, 10, 9} {
		changes = append(changes, &crdt.Change{Actor: a, Seq: seq, StartOp: op, Time: int64(seq),
			Ops: []crdt.Op{{Action: crdt.ActDeleteText, Obj: text, Elem: causal.OpID{Counter: e, Actor: a}, Len: 1}}})
		seq, op = seq+1, op+1
	}
	readsBack(t, changes)
}

// textTyped returns the changes by actor a that create a text at the
// root's key "t" and type s into it, and the text's ID.
func textTyped(a causal.ActorID, s string) ([]*crdt.Change, causal.OpID) {
	text := causal.OpID{Counter: 1, Actor: a}
	return []*crdt.Change{
		{Actor: a, Seq: 1, StartOp: 1, Ops: []crdt.Op{{Action: crdt.ActPut, Key: "t", Value: crdt.NewText()}}},
		{Actor: a, Seq: 2, StartOp: 2, Ops: []crdt.Op{{Action: crdt.ActInsertText, Obj: text, Text: s}}},
	}, text
}

// readsBack appends changes to a new History and checks that All gives
// each of them back as it was.
func readsBack(t *testing.T, changes []*crdt.Change) {
	t.Helper()
	h := NewHistory()
	for _, c := range changes {
		h.Append(c)
	}
	got := h.All()
	for i, c := range changes {
		if !bytes.Equal(EncodeChange(got[i]), EncodeChange(c)) {
			t.Fatalf("change %d reads back as %+v (time %d), not %+v (time %d)", i, got[i].Ops, got[i].Time, c.Ops, c.Time)
		}
	}
}

// Counters past what the right-origin predictions pack (2^40) are legal:
// a document whose ops have them, typed in runs that jump back to where
// others were typed (so that the predictions matter), saves, and loads
// with the same text and history, from its History and from its changes
// alike.
func TestHistoryHugeCounters(t *testing.T) {
	a := causal.ActorID{0x01}
	start := uint64(1) << 41
	text := causal.OpID{Counter: start, Actor: a}
	changes := []*crdt.Change{
		{Actor: a, Seq: 1, StartOp: start, Ops: []crdt.Op{{Action: crdt.ActPut, Key: "t", Value: crdt.NewText()}}},
		{Actor: a, Seq: 2, StartOp: start + 1, Ops: []crdt.Op{{Action: crdt.ActInsertText, Obj: text, Text: "hello"}}},
	}
	typist := crdt.NewDoc(causal.ActorID{0x02})
	if _, err := typist.Apply(changes...); err != nil {
		t.Fatal(err)
	}
	for i, e := range []struct {
		pos, del int
		s        string
	}{{2, 0, "x"}, {3, 0, "y"}, {4, 0, "z"}, {4, 1, ""}, {2, 0, "q"}, {3, 0, "r"}, {0, 0, "a"}, {1, 0, "b"}, {0, 0, "c"}, {5, 2, ""}, {2, 0, "q"},
		{1, 0, "m"}, {1, 1, ""}, {1, 0, "n"}, {9, 0, "s"}, {9, 1, ""}, {9, 0, "t"}} {
		c, _, err := typist.Change(crdt.ChangeOptions{Time: int64(i)}, func(tx *crdt.Txn) error {
			return tx.Splice(text, e.pos, e.del, e.s)
		})
		must(t, err)
		changes = append(changes, c)
	}
	readsBack(t, changes)

	d := crdt.NewDoc(causal.ActorID{0x03}, crdt.WithHistory(NewHistory()))
	if _, err := d.Apply(changes...); err != nil {
		t.Fatal(err)
	}
	want := textAt(t, typist, "t")
	if got := textAt(t, d, "t"); got != want {
		t.Fatalf("text %q, want %q", got, want)
	}
	saved, err := SaveDoc(d, Options{})
	must(t, err)
	loaded, err := LoadDoc(saved, causal.ActorID{0x03})
	must(t, err)
	if got := textAt(t, loaded, "t"); got != want {
		t.Fatalf("loaded text %q, want %q", got, want)
	}
	if got := len(loaded.Changes()); got != len(changes) {
		t.Fatalf("loaded %d changes, want %d", got, len(changes))
	}
	fromChanges, err := EncodeDocument(StateOf(d), changes, Options{})
	must(t, err)
	if !bytes.Equal(saved, fromChanges) {
		t.Fatalf("saved from the History (%d bytes) differs from EncodeDocument (%d bytes)", len(saved), len(fromChanges))
	}
}

// textAt returns the text at key of d's root.
func textAt(t *testing.T, d *crdt.Doc, key string) string {
	t.Helper()
	v, ok := d.Get(crdt.Root, key)
	if !ok {
		t.Fatalf("no %q", key)
	}
	return d.Text(v.Obj())
}
