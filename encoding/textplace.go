package encoding

import (
	"unicode/utf8"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// textPlaces says where in a chunk's dictionary (the state's texts, see
// stateDict) each visible character is, by its ID: what derive needs when
// its prediction misses. Saving a live document reads it from the
// document's sequences, which know every character's place, instead of
// searching the dictionary for the character's bytes. It is built the
// first time derive asks, and not at all if nothing misses.
type textPlaces struct {
	build   func(t *textTrack, scratch *placeScratch) placeIndex
	scratch *placeScratch
	index   placeIndex
	built   bool
	asker   *placeAsker // nil if the index is the only way
}

// placeAsker asks the document for one character's place at a time: a
// lookup in its sequence, where building the index walks every run of the
// texts and places every character. A save whose predictions rarely miss
// (typing, mostly) asks a few thousand places (automerge-paper: 2,263 of
// 182,000 characters). Past a budget proportional to the history's
// characters, the index is built instead.
type placeAsker struct {
	d      *crdt.Doc
	ids    []causal.ActorID // the writer's actors, by index
	texts  []placedText
	last   int // the text that answered last
	asked  int
	budget int // -1 until the first question
}

// placedText is one of the state's texts: its container and where its
// characters start in the dictionary.
type placedText struct {
	obj  crdt.ObjID
	base int
}

// placeIndex is, per actor of the writer's table, the dictionary offset
// plus one of the character with counter base[a]+i at off[a][i], if bit
// start[a]+i of set is 1. The bits, not the offsets, are cleared before
// the index is filled: a thirty-second of the memory to zero.
type placeIndex struct {
	base  []uint64
	start []int
	off   [][]int32
	set   []uint64
}

// placeScratch is the memory an index is built in, kept between saves
// (see kit).
type placeScratch struct {
	off []int32
	set []uint64
}

// placesOf returns the places of st's characters, read from d, for a
// writer whose actors are actors; nil if d is nil.
func placesOf(d *crdt.Doc, st *State, actors *actorTable) *textPlaces {
	if d == nil || st == nil {
		return nil
	}
	p := &textPlaces{build: func(t *textTrack, scratch *placeScratch) placeIndex {
		return indexPlaces(d, st, actors, t, scratch)
	}}
	p.asker = &placeAsker{d: d, ids: actors.ids, budget: -1}
	off := 0
	for _, n := range stateTexts(st) {
		p.asker.texts = append(p.asker.texts, placedText{n.Obj, off})
		off += len(n.Text)
	}
	return p
}

// useScratch has the index, when it is built, take its memory from
// *scratch.
func (p *textPlaces) useScratch(scratch *placeScratch) {
	if p != nil {
		p.scratch = scratch
	}
}

// at returns the dictionary offset of the character (actor, ctr), actor
// being an index in the writer's table; t is the writer's text.
func (p *textPlaces) at(t *textTrack, actor int, ctr uint64) (int, bool) {
	if p == nil {
		return 0, false
	}
	if !p.built && p.asker != nil {
		if at, ok, asked := p.asker.ask(t, actor, ctr); asked {
			return at, ok
		}
	}
	if !p.built {
		if p.scratch == nil {
			p.scratch = new(placeScratch)
		}
		p.index, p.built = p.build(t, p.scratch), true
	}
	x := &p.index
	if actor < 0 || actor >= len(x.off) || ctr < x.base[actor] || ctr-x.base[actor] >= uint64(len(x.off[actor])) {
		return 0, false
	}
	i := ctr - x.base[actor]
	if !bitAt(x.set, uint64(x.start[actor])+i) {
		return 0, false
	}
	return int(x.off[actor][i]) - 1, true
}

// ask returns the place of (actor, ctr) as the document says, unless the
// budget is spent (asked false). The text that answered last is asked
// first.
func (a *placeAsker) ask(t *textTrack, actor int, ctr uint64) (at int, ok, asked bool) {
	if a.budget < 0 {
		a.budget = askBudget(t)
	}
	if a.asked >= a.budget {
		return 0, false, false
	}
	if actor < 0 || actor >= len(a.ids) {
		return 0, false, true
	}
	id := causal.OpID{Counter: ctr, Actor: a.ids[actor]}
	for k := range a.texts {
		if a.asked >= a.budget {
			return 0, false, false
		}
		a.asked++ // each text asked counts
		i := (a.last + k) % len(a.texts)
		x := a.texts[i]
		if index, visible, found := a.d.ElemIndex(x.obj, id); found {
			a.last = i
			return x.base + index, visible, true
		}
	}
	return 0, false, true
}

// askBudget is how many places a save of t may ask of the document before
// it builds the index instead: none unless every character is one byte
// (the document counts characters, the dictionary bytes; the state's texts
// hold the history's characters).
func askBudget(t *textTrack) int {
	if !t.identity() {
		return 0
	}
	return int(t.nChars)/askPerChars + askMin
}

// A question costs about as much as placing askPerChars characters in the
// index (automerge-paper: 0.13 µs a question, 0.45 ms to index 182,000
// characters).
const (
	askPerChars = 64
	askMin      = 64
)

// maxPlaceSlack bounds the index's memory: the counters an actor's
// characters span, summed over actors, may be at most this many times the
// number of characters (plus a little), else there is no index and derive
// searches by content. Counters are shared by all of a document's actors,
// so one actor's characters are sparse in a document many people wrote.
const maxPlaceSlack = 4

// eachPlacedRun calls fn for each run of visible characters of st's texts,
// read from d: the run's actor (an index in actors), first counter, number
// of characters, dictionary offset, and its text onwards if that text is
// not all ASCII (else ""). It stops early, leaving the rest out, where d
// and st disagree.
func eachPlacedRun(d *crdt.Doc, st *State, actors *actorTable, fn func(actor int, ctr uint64, n, off int, rest string)) (dictLen int) {
	off := 0
	for _, n := range stateTexts(st) {
		text := n.Text
		ascii := isASCII(text)
		pos := 0 // byte in text
		lastActor, lastIndex := causal.ActorID{}, -1
		d.TextRuns(n.Obj, func(first causal.OpID, k int) {
			if first.Actor != lastActor || lastIndex < 0 {
				a, ok := actors.index[first.Actor]
				if !ok {
					a = -1
				}
				lastActor, lastIndex = first.Actor, a
			}
			if lastIndex < 0 || pos >= len(text) {
				pos = len(text) // the text and its runs disagree: leave the rest out
				return
			}
			if ascii {
				fn(lastIndex, first.Counter, k, off+pos, "")
				pos += k
				return
			}
			fn(lastIndex, first.Counter, k, off+pos, text[pos:])
			for ; k > 0 && pos < len(text); k-- {
				_, w := utf8.DecodeRuneInString(text[pos:])
				pos += w
			}
		})
		off += len(text)
	}
	return off
}

// indexPlaces walks the document's texts once. Each actor's slice spans
// the counters of the characters t says the actor inserted (its pieces
// are in counter order), so it is sized before the walk.
func indexPlaces(d *crdt.Doc, st *State, actors *actorTable, t *textTrack, scratch *placeScratch) placeIndex {
	n := min(len(actors.ids), len(t.byActor))
	x := placeIndex{base: make([]uint64, len(actors.ids)), start: make([]int, len(actors.ids)),
		off: make([][]int32, len(actors.ids))}
	span := uint64(0)
	for a, ps := range t.byActor[:n] {
		if len(ps) == 0 {
			continue
		}
		first, last := &t.pieces[ps[0]], &t.pieces[ps[len(ps)-1]]
		x.base[a] = first.ctr
		span += last.ctr + uint64(last.nChars) - first.ctr
	}
	if span > uint64(maxPlaceSlack)*uint64(t.nChars)+1024 {
		return placeIndex{}
	}
	all := int32s(&scratch.off, int(span)) // as the last save left it
	if words := (int(span) + 63) / 64; cap(scratch.set) < words {
		scratch.set = make([]uint64, words)
	} else {
		scratch.set = scratch.set[:words]
		clear(scratch.set) // no character placed yet
	}
	x.set = scratch.set
	at := 0
	for a, ps := range t.byActor[:n] {
		if len(ps) > 0 {
			last := &t.pieces[ps[len(ps)-1]]
			k := int(last.ctr + uint64(last.nChars) - x.base[a])
			x.start[a], x.off[a], all = at, all[:k:k], all[k:]
			at += k
		}
	}
	dictLen := eachPlacedRun(d, st, actors, func(a int, ctr uint64, n, off int, rest string) {
		if ctr < x.base[a] || ctr-x.base[a] >= uint64(len(x.off[a])) {
			return // not a character of the chunk
		}
		o := x.off[a][ctr-x.base[a]:]
		n = min(n, len(o))
		if rest != "" {
			// Characters past the text's end are left unplaced.
			at, k := 0, 0
			for ; k < n && at < len(rest); k++ {
				o[k] = int32(off + at + 1)
				_, w := utf8.DecodeRuneInString(rest[at:])
				at += w
			}
			n = k
		} else {
			for k := 0; k < n; k++ {
				o[k] = int32(off + k + 1)
			}
		}
		setBits(x.set, uint64(x.start[a])+(ctr-x.base[a]), uint64(n))
	})
	if dictLen >= 1<<31-1 {
		return placeIndex{}
	}
	return x
}

// isASCII reports whether s is all ASCII, 32 bytes at a time.
func isASCII(s string) bool {
	word := func(i int) uint64 {
		return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
	}
	i := 0
	for ; i+32 <= len(s); i += 32 {
		if (word(i)|word(i+8)|word(i+16)|word(i+24))&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i+8 <= len(s); i += 8 {
		if word(i)&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
