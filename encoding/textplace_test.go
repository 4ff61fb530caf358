package encoding

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// editedReplicas makes three replicas that type, delete and replace texts
// (ASCII and not) concurrently, merging now and then, and finally merges
// everything into the first.
func editedReplicas(t *testing.T, seed uint64) *crdt.Doc {
	t.Helper()
	return editedReplicasTyping(t, seed, []string{"x", "yz", "hello ", "ü", "€ and ", "日本語", "q"})
}

// editedReplicasTyping is editedReplicas typing the given pieces.
func editedReplicasTyping(t *testing.T, seed uint64, pieces []string) *crdt.Doc {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 11))
	docs := []*crdt.Doc{
		crdt.NewDoc(causal.ActorID{0xa}, crdt.WithHistory(NewHistory())),
		crdt.NewDoc(causal.ActorID{0xb}, crdt.WithHistory(NewHistory())),
		crdt.NewDoc(causal.ActorID{0xc}, crdt.WithHistory(NewHistory())),
	}
	keys := []string{"a", "b", "c"}
	change := func(d *crdt.Doc, fn func(*crdt.Txn) error) {
		t.Helper()
		if _, _, err := d.Change(crdt.ChangeOptions{Time: 1}, fn); err != nil {
			t.Fatal(err)
		}
	}
	change(docs[0], func(tx *crdt.Txn) error {
		for _, k := range keys {
			if _, err := tx.Put(crdt.Root, k, crdt.NewText()); err != nil {
				return err
			}
		}
		return nil
	})
	for _, d := range docs[1:] {
		if _, err := d.Apply(docs[0].Changes()...); err != nil {
			t.Fatal(err)
		}
	}
	for step := 0; step < 300; step++ {
		d := docs[r.IntN(len(docs))]
		key := keys[r.IntN(len(keys))]
		v, _ := d.Get(crdt.Root, key)
		text := v.Obj()
		n := d.Len(text)
		switch k := r.IntN(20); {
		case k == 0:
			change(d, func(tx *crdt.Txn) error { _, err := tx.Put(crdt.Root, key, crdt.NewText()); return err })
		case k < 6 && n > 0:
			pos := r.IntN(n)
			change(d, func(tx *crdt.Txn) error { return tx.Splice(text, pos, 1+r.IntN(min(4, n-pos)), "") })
		case k < 8:
			other := docs[r.IntN(len(docs))]
			if _, err := d.Apply(other.Changes()...); err != nil {
				t.Fatal(err)
			}
		default:
			s := pieces[r.IntN(len(pieces))]
			pos := r.IntN(n + 1)
			change(d, func(tx *crdt.Txn) error { return tx.Splice(text, pos, 0, s) })
		}
	}
	for _, d := range docs[1:] {
		if _, err := docs[0].Apply(d.Changes()...); err != nil {
			t.Fatal(err)
		}
	}
	return docs[0]
}

// Every visible character's place, as the document tells it, holds that
// character in the dictionary.
func TestTextPlacesHoldTheirCharacters(t *testing.T) {
	for seed := uint64(0); seed < 10; seed++ {
		d := editedReplicas(t, seed)
		st := StateOf(d)
		dict := stateDict(st)
		tab, track := trackOf(d)
		places := placesOf(d, st, tab)
		checked := 0
		for _, key := range d.Keys(crdt.Root) {
			v, _ := d.Get(crdt.Root, key)
			text := d.Text(v.Obj())
			i := 0 // byte in text
			d.TextRuns(v.Obj(), func(first causal.OpID, n int) {
				for k := 0; k < n; k++ {
					r, w := utf8.DecodeRuneInString(text[i:])
					at, ok := places.at(track, tab.index[first.Actor], first.Counter+uint64(k))
					if !ok {
						t.Fatalf("seed %d: no place for %v+%d", seed, first, k)
					}
					if got, _ := utf8.DecodeRune(dict[at:]); got != r {
						t.Fatalf("seed %d: %v+%d is %q, its place holds %q", seed, first, k, r, got)
					}
					i += w
					checked++
				}
			})
		}
		if checked == 0 {
			t.Fatalf("seed %d: no characters left to check", seed)
		}
		if _, ok := places.at(track, tab.index[causal.ActorID{0xa}], 1<<40); ok {
			t.Fatal("a counter no character has was placed")
		}
	}
}

// Documents saved with their text placed by the document load back with
// every change as it was, and two replicas holding the same changes save
// the same bytes.
func TestSaveDocWithPlacesRoundTrips(t *testing.T) {
	for seed := uint64(0); seed < 10; seed++ {
		d := editedReplicas(t, seed)
		other := crdt.NewDoc(causal.ActorID{0xd}, crdt.WithHistory(NewHistory()))
		if _, err := other.Apply(d.Changes()...); err != nil {
			t.Fatal(err)
		}
		for _, opt := range []Options{{}, {Compress: true}} {
			b := savesAlike(t, opt, d, other)
			if !holdsHistoryOf(t, b, d) {
				t.Fatalf("seed %d compress=%v: decoded changes differ", seed, opt.Compress)
			}
			dec, _ := decodedChanges(t, b)
			if !reflect.DeepEqual(dec.State(), StateOf(d)) {
				t.Fatalf("seed %d: saved state differs", seed)
			}
		}
	}
}

func TestIsASCII(t *testing.T) {
	for _, c := range []struct {
		s    string
		want bool
	}{
		{"", true}, {"abc", true}, {"abcdefgh", true}, {"abcdefghijklmnopq", true},
		{"abcdefghü", false}, {"üabcdefgh", false}, {"abcdefg\x80", false}, {"abcdefgh\xff", false},
	} {
		if got := isASCII(c.s); got != c.want {
			t.Errorf("isASCII(%q) = %v", c.s, got)
		}
	}
}

// writerOf writes d's history as a save would and returns its actor table
// and writer.
func writerOf(d *crdt.Doc) (*actorTable, *historyWriter) {
	set := newActorSet()
	set.addChanges(d.Changes())
	tab := set.table()
	return tab, writeHistory(tab, d.Changes())
}

// trackOf is writerOf's table and text track.
func trackOf(d *crdt.Doc) (*actorTable, *textTrack) {
	tab, w := writerOf(d)
	return tab, w.text
}

// eachInsertedChar calls fn with the ID of every character the changes'
// insertText ops insert.
func eachInsertedChar(cs []*crdt.Change, fn func(ch causal.OpID)) {
	for _, c := range cs {
		ctr := c.StartOp
		for i := range c.Ops {
			op := &c.Ops[i]
			id := causal.OpID{Actor: c.Actor, Counter: ctr}
			ctr += op.Width()
			if op.Action != crdt.ActInsertText {
				continue
			}
			for k := range uint64(utf8.RuneCountInString(op.Text)) {
				fn(id.Add(k))
			}
		}
	}
}

// A character the text no longer shows has no place, even when the index
// is built in memory a larger save left full of offsets and set bits.
func TestUnplacedCharactersHaveNoPlace(t *testing.T) {
	d := typedDoc(t, 3, 400)
	st := StateOf(d)
	tab, track := trackOf(d)
	scratch := &placeScratch{off: make([]int32, 1<<16), set: make([]uint64, 1<<10)}
	for i := range scratch.off {
		scratch.off[i] = 7
	}
	for i := range scratch.set {
		scratch.set[i] = ^uint64(0)
	}
	places := placesOf(d, st, tab)
	places.useScratch(scratch)
	v, _ := d.Get(crdt.Root, "t")
	shown := map[causal.OpID]bool{}
	d.TextRuns(v.Obj(), func(first causal.OpID, n int) {
		for k := 0; k < n; k++ {
			shown[first.Add(uint64(k))] = true
		}
	})
	hidden := 0
	eachInsertedChar(d.Changes(), func(ch causal.OpID) {
		_, placed := places.at(track, tab.index[ch.Actor], ch.Counter)
		if placed != shown[ch] {
			t.Fatalf("%v: placed %v, shown %v", ch, placed, shown[ch])
		}
		if !placed {
			hidden++
		}
	})
	if hidden == 0 {
		t.Fatal("no deleted character to check")
	}
}

// A save asks the document for the places of an ASCII history's
// characters, one at a time, before it builds the index: both give every
// character of the history the same place (none for the characters its
// texts no longer show, including those of a text that was replaced).
func TestAskedPlacesMatchTheIndex(t *testing.T) {
	for seed := uint64(0); seed < 10; seed++ {
		d := editedReplicasTyping(t, seed, []string{"x", "yz", "hello ", "q", "and so on"})
		st := StateOf(d)
		tab, track := trackOf(d)
		if askBudget(track) == 0 {
			t.Fatalf("seed %d: an ASCII history asks no places", seed)
		}
		indexed := placesOf(d, st, tab)
		indexed.asker = nil
		asked := placesOf(d, st, tab)
		asked.asker.budget = 1 << 30
		placed, unplaced := 0, 0
		eachInsertedChar(d.Changes(), func(ch causal.OpID) {
			wantAt, want := indexed.at(track, tab.index[ch.Actor], ch.Counter)
			gotAt, got := asked.at(track, tab.index[ch.Actor], ch.Counter)
			if got != want || (want && gotAt != wantAt) {
				t.Fatalf("seed %d: %v asked %d,%v, indexed %d,%v", seed, ch, gotAt, got, wantAt, want)
			}
			if want {
				placed++
			} else {
				unplaced++
			}
		})
		if asked.built || !indexed.built {
			t.Fatalf("seed %d: built asked=%v indexed=%v", seed, asked.built, indexed.built)
		}
		if placed == 0 || unplaced == 0 {
			t.Fatalf("seed %d: %d characters placed, %d not: nothing to compare", seed, placed, unplaced)
		}
	}
}

// A history with a character of more than one byte asks nothing: the
// document counts characters, the dictionary bytes.
func TestNonASCIIHistoryBuildsTheIndex(t *testing.T) {
	d := editedReplicas(t, 1)
	st := StateOf(d)
	tab, track := trackOf(d)
	places := placesOf(d, st, tab)
	v, _ := d.Get(crdt.Root, "a")
	var first causal.OpID
	d.TextRuns(v.Obj(), func(id causal.OpID, n int) {
		if first.IsZero() {
			first = id
		}
	})
	if first.IsZero() {
		t.Fatal("text a is empty")
	}
	if _, ok := places.at(track, tab.index[first.Actor], first.Counter); !ok {
		t.Fatalf("%v has no place", first)
	}
	if !places.built || places.asker.asked != 0 {
		t.Fatalf("built %v after %d questions", places.built, places.asker.asked)
	}
}

// The deleted text of an ASCII history, taken a word of bits at a time, is
// the one taken piece by piece.
func TestDeletedBytesMatchPieces(t *testing.T) {
	for seed := uint64(0); seed < 10; seed++ {
		d := editedReplicasTyping(t, seed, []string{"x", "yz", "hello ", "q", "and so on, at some length"})
		_, w := writerOf(d)
		track, text := w.text, w.raw[colText]
		if !track.identity() {
			t.Fatalf("seed %d: an ASCII history's characters are not its bytes", seed)
		}
		got := track.appendDeletedBytes(nil, text)
		want := track.appendDeletedByPiece(nil, text)
		if len(want) == 0 || string(got) != string(want) {
			t.Fatalf("seed %d: %d deleted bytes by words, %d by pieces\n%q\n%q", seed, len(got), len(want), got, want)
		}
	}
	if _, track := trackOf(editedReplicas(t, 1)); track.identity() {
		t.Fatal("a history with multi-byte characters taken as one byte each")
	}
}
