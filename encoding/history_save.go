package encoding

import (
	"slices"

	"github.com/converge-sync/converge/causal"
)

// Saving a History. A saved document is canonical: the same changes give
// the same bytes whatever order they were applied in, because
// EncodeDocument sorts them into the canonical order and numbers the
// actors by their sorted bytes. A History that received its changes in
// exactly that order (a single writer, or a replica that happened to apply
// in canonical order) has already written the history section's columns
// the way EncodeDocument would: its continuous writer. Saving copies those
// columns, renumbers the actors in the eight actor columns if they were
// first mentioned out of sorted order, and matches the text against the
// new state, instead of decoding every change and encoding it again. At the
// first change out of canonical order the writer is dropped and save
// declines.
//
// Renumbering is exact because every other column is independent of the
// numbering (seqs are kept per actor, not per index), and because a
// one-to-one renumbering keeps equal neighbours equal and different ones
// different, so every run and literal group keeps its shape.
//
// That both ways give the same bytes is checked by the twin property test
// in crdt and by TestHistorySaveMatchesEncodeDocument.

// saving is what a save of a History settles before it reads the
// document's state: the saved chunk's actor table, and the state worker if
// the save runs on two goroutines.
type saving struct {
	tab      *actorTable
	renumber []uint64 // History index → tab's, nil if the same
	sw       *stateWorker
}

// startSave settles a save of h (see saving), starting its state worker
// (see save_parallel.go) before the caller reads the state. The caller
// holds h.mu (settle) until save returns.
func (h *History) startSave(opt Options) (s saving) {
	if h == nil || h.whole == nil {
		return s
	}
	h.whole.settle() // before the state worker may read the columns
	// The state's containers were created by ops of the history, so its
	// actors are already in the table.
	s.tab, s.renumber = h.savedActors()
	if goesParallel(h.whole, opt) {
		s.sw = startStateWorker(h.whole, s.renumber)
	}
	return s
}

// save encodes st and the history as EncodeDocument would. ok is false if
// the continuous writer was dropped.
func (h *History) save(st *State, places *textPlaces, s saving, opt Options) (b []byte, ok bool, err error) {
	if h.whole == nil {
		s.sw.abandon()
		return nil, false, nil
	}
	if err := checkState(st); err != nil {
		s.sw.abandon()
		return nil, true, err
	}
	return appendChunkWith(nil, s.tab, st, opt, h.whole, s.renumber, places, s.sw), true, nil
}

// savedActors returns the actor table of a saved chunk (sorted) and the
// map from the History's indices to it (nil if they are the same).
func (h *History) savedActors() (tab *actorTable, renumber []uint64) {
	sorted := slices.SortedFunc(slices.Values(h.actors.ids), causal.ActorID.Compare)
	tab = newActorTable(sorted)
	if !slices.Equal(sorted, h.actors.ids) {
		renumber = make([]uint64, len(sorted))
		for i, a := range h.actors.ids {
			renumber[i] = uint64(tab.index[a])
		}
	}
	return tab, renumber
}

// actorCols are the columns holding actor indices: plain for the first
// two, nullable (index + 1, 0 for none) for the others.
var actorCols = map[int]bool{
	colChActor: false, colDepActor: false,
	colOpObjActor: true, colTgtActor: true, colPredActor: true, colLeftActor: true, colRightActor: true, colDelActor: true,
}

// renumberColumn rewrites the actor indices of an RLE column written by
// this package (so well formed) through m.
func renumberColumn(col []byte, m []uint64, nullable bool) []byte {
	out := make([]byte, 0, len(col)+8)
	r := reader{b: col}
	next := func() uint64 {
		v, _ := r.uvarint()
		if nullable && v == 0 {
			return 0
		}
		if nullable {
			return m[v-1] + 1
		}
		return m[v]
	}
	for !r.done() {
		h, _ := r.uvarint()
		out = appendUvarint(out, h)
		n := h >> 1
		if h&1 == 0 {
			n = 1
		}
		for ; n > 0; n-- {
			out = appendUvarint(out, next())
		}
	}
	return out
}
