package encoding

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode/utf8"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// Derived text (version 2, text mode 1). Every character a chunk's history
// inserted is either still visible, and then it is in the chunk's state, or
// deleted by a deleteText op of the same chunk. So the history need not
// store the visible characters at all, nor say which ones are deleted: a
// decoder knows from the ops. It only needs, for each visible character,
// where in the dictionary (the state's texts) it is, and that is nearly
// always right after the character it was typed after (its left origin):
// the history stores the difference from that prediction, mostly zero. The
// deleted characters are stored literally, at the end of the state section,
// where they compress together with the visible text they were typed into.
//
// The rules, for the characters of the chunk's insertText ops in op order:
//
//   - left(x): the previous character of the same op; for an op's first
//     character its left origin, if that is a character of an earlier
//     insertText op of the chunk; otherwise none.
//   - A(x), the anchor after x: for a visible x, the dictionary offset just
//     past its bytes; for a deleted x, its prediction P(x).
//   - P(x) = A(left(x)), or 0 if x has no left.
//   - a deleted x takes the next character of the literal stream; a visible
//     x takes the next delta d from the textSeg column and is the character
//     at dictionary offset P(x) + d.

// textPiece is a stretch of characters inserted by one actor with
// consecutive counters, each after the one before (typing): the writer
// keeps one per stretch instead of one per op.
type textPiece struct {
	actor     int32
	ascii     bool        // one byte per character
	cont      bool        // its first op typed on from the op before it
	leftByte  int32       // last byte of the first character's left origin, -1 none
	right     causal.OpID // right origin of the piece's last op
	ctr       uint64      // counter of the first character
	nChars    uint32
	byteStart uint32 // in the text column
	nBytes    uint32
	charStart uint32 // index of the first character among all of the chunk's
}

// textTrack is what a writer records of its chunk's characters to write
// them in text mode 1.
type textTrack struct {
	pieces  []textPiece
	byActor [][]int32 // indices of each actor's pieces, in counter order
	deleted []uint64  // bit per character: deleted by an op of the chunk
	nChars  uint32
	widths  uintCol // the textLen column of mode 1: characters per op
	bad     bool    // mode 1 impossible: an actor's counters going back, sizes past 32 bits
	// Deletes that may name characters inserted after them (never in a
	// valid history, whose deletes follow what they delete): marked again
	// when the text is written.
	pending []pendingDel
	// markLo is where, in its actor's pieces, the last markRange began:
	// deletes come in runs (backspacing or deleting forward through older
	// text), so the next one usually begins in the same piece, found then
	// without a search. Any index is a safe guess: it is checked.
	markLo int

	// For predicting right origins: the first character of the latest
	// insertText op after each element (by its left origin, or by its
	// object for the start) that does not continue the op before it, both
	// packed (kidKey).
	kids    map[uint64]uint64
	prevIns struct {
		actor      int
		own, width uint64
	}
}

type pendingDel struct {
	actor  int
	ctr, n uint64
}

// An element in kids is its actor's index and its counter in 64 bits (an
// 8-byte key hashes and compares faster than a 16-byte actor and a
// counter, and a run of keystrokes jumping elsewhere asks twice); the
// start of an object is its ID so packed, with kidStart set. An element
// past the limits (an actor index of 2^23, a counter of 2^40) sends the
// text to mode 0, as other sizes past what mode 1 holds do.
const (
	kidCtrBits = 40
	kidStart   = 1 << 63
)

// kidKey packs an element of the actor of index a, or reports that it
// cannot.
func kidKey(a int, ctr uint64) (uint64, bool) {
	if a < 0 || a >= 1<<(63-kidCtrBits) || ctr >= 1<<kidCtrBits {
		return 0, false
	}
	return uint64(a)<<kidCtrBits | ctr, true
}

// kidID unpacks an element of kids.
func kidID(k uint64, actors *actorTable) causal.OpID {
	return causal.OpID{Counter: k & (1<<kidCtrBits - 1), Actor: actors.ids[k>>kidCtrBits]}
}

func (t *textTrack) pieceOf(actor int, ctr uint64) (int, bool) {
	if actor < 0 || actor >= len(t.byActor) {
		return 0, false
	}
	ps := t.byActor[actor]
	// The last piece is the usual answer (typing, backspacing).
	if n := len(ps); n > 0 {
		if p := &t.pieces[ps[n-1]]; ctr >= p.ctr && ctr-p.ctr < uint64(p.nChars) {
			return int(ps[n-1]), true
		}
	}
	lo, hi := 0, len(ps)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.pieces[ps[m]].ctr <= ctr {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0, false
	}
	i := int(ps[lo-1])
	p := &t.pieces[i]
	if ctr-p.ctr >= uint64(p.nChars) {
		return 0, false
	}
	return i, true
}

// lastByte returns the text-column offset of the last byte of character k
// of piece p.
func (t *textTrack) lastByte(text []byte, p *textPiece, k uint64) int32 {
	if p.ascii {
		return int32(uint64(p.byteStart) + k)
	}
	s := text[p.byteStart : p.byteStart+p.nBytes]
	o := 0
	for ; k > 0; k-- {
		_, n := utf8.DecodeRune(s[o:])
		o += n
	}
	_, n := utf8.DecodeRune(s[o:])
	return int32(int(p.byteStart) + o + n - 1)
}

// predictRight returns the element a new insert after left (in obj)
// would have as its right origin if nothing happened concurrently: the
// latest op inserted after left, else the character after left if it was
// typed after left, else left's own right origin. ok is false if left is
// not a character of the chunk's insertText ops.
func (t *textTrack) predictRight(obj, left *causal.OpID, actors *actorTable) (causal.OpID, bool) {
	if t.bad {
		return causal.OpID{}, false
	}
	if left.IsZero() {
		oa, ok := actors.lookup(obj.Actor)
		if !ok {
			return causal.OpID{}, false
		}
		key, ok := kidKey(oa, obj.Counter)
		if !ok {
			return causal.OpID{}, false
		}
		k, ok := t.kids[key|kidStart]
		if !ok {
			return causal.OpID{}, false
		}
		return kidID(k, actors), true
	}
	a, ok := actors.lookup(left.Actor)
	// Typing on: left is the last character of the latest insert, so no
	// op was inserted after it yet, and nothing follows it in its actor's
	// pieces: the answer is that op's right origin, found without a hash.
	pi := &t.prevIns
	typingOn := ok && len(t.pieces) > 0 && a == pi.actor && left.Counter == pi.own+pi.width-1
	if !typingOn && ok {
		if key, ok := kidKey(a, left.Counter); ok {
			if k, ok := t.kids[key]; ok {
				return kidID(k, actors), true
			}
		}
	}
	if !ok {
		return causal.OpID{}, false
	}
	i, ok := t.pieceOf(a, left.Counter)
	if !ok {
		return causal.OpID{}, false
	}
	next := causal.OpID{Counter: left.Counter + 1, Actor: left.Actor}
	if p := &t.pieces[i]; left.Counter+1-p.ctr < uint64(p.nChars) {
		return next, true
	}
	if typingOn {
		return t.pieces[i].right, true
	}
	if j, ok := t.pieceOf(a, left.Counter+1); ok && t.pieces[j].ctr == left.Counter+1 && t.pieces[j].cont {
		return next, true
	}
	return t.pieces[i].right, true
}

// insert records an insertText op whose text starts at byteStart in text
// (already appended).
func (t *textTrack) insert(text []byte, actor int, own uint64, obj, left causal.OpID, objActor, leftActor int, right causal.OpID, s string, byteStart int) {
	w := uint64(utf8.RuneCountInString(s))
	t.widths.add(w)
	if w == 0 {
		return
	}
	// An op typed on from the op before it (same actor, next counter, left
	// origin the last character of that op) is found by counter; any other
	// is the latest op after its left origin.
	pi := t.prevIns
	cont := len(t.pieces) > 0 && pi.actor == actor && own == pi.own+pi.width && leftActor == actor && left.Counter == own-1
	t.prevIns.actor, t.prevIns.own, t.prevIns.width = actor, own, w
	if !cont {
		var key uint64
		var ok bool
		if left.IsZero() {
			key, ok = kidKey(objActor, obj.Counter)
			key |= kidStart
		} else {
			key, ok = kidKey(leftActor, left.Counter)
		}
		kid, ok2 := kidKey(actor, own)
		if !ok || !ok2 {
			t.bad = true
			return
		}
		if t.kids == nil {
			t.kids = map[uint64]uint64{}
		}
		t.kids[key] = kid
	}
	if uint64(t.nChars)+w > 1<<31 || byteStart+len(s) > 1<<31 {
		t.bad = true
		return
	}
	ascii := uint64(len(s)) == w
	if n := len(t.pieces); n > 0 {
		p := &t.pieces[n-1]
		end := p.ctr + uint64(p.nChars)
		if p.actor == int32(actor) && p.ascii && ascii && own == end && leftActor == actor && left.Counter == end-1 {
			p.nChars += uint32(w)
			p.nBytes += uint32(len(s))
			p.right = right
			t.nChars += uint32(w)
			t.grow()
			return
		}
	}
	lb := int32(-1)
	if i, ok := t.pieceOf(leftActor, left.Counter); ok && !left.IsZero() {
		p := &t.pieces[i]
		lb = t.lastByte(text, p, left.Counter-p.ctr)
	}
	for len(t.byActor) <= actor {
		t.byActor = append(t.byActor, nil)
	}
	if ps := t.byActor[actor]; len(ps) > 0 {
		if p := &t.pieces[ps[len(ps)-1]]; own < p.ctr+uint64(p.nChars) {
			t.bad = true // lookups need each actor's pieces in counter order
		}
	}
	t.byActor[actor] = append(grow2(t.byActor[actor]), int32(len(t.pieces)))
	t.pieces = append(grow2(t.pieces), textPiece{actor: int32(actor), ascii: ascii, cont: cont, leftByte: lb, right: right, ctr: own,
		nChars: uint32(w), byteStart: uint32(byteStart), nBytes: uint32(len(s)), charStart: t.nChars})
	t.nChars += uint32(w)
	t.grow()
}

// reserve sizes the pieces and the right-origin records for changes,
// about to be recorded in this order: it counts the insertText ops that
// do not type on from the op before them, each of which starts a piece
// and a record, by the rule insert uses. Grown by doubling, they were a
// third of what a save of a concurrent history allocated
// (concurrent-friendsforever: 5.5 of 16 MB).
func (t *textTrack) reserve(changes []*crdt.Change) {
	n := 0
	var prevActor causal.ActorID
	var prevEnd uint64 // the counter after the previous insertText op's
	for _, c := range changes {
		own := c.StartOp
		for i := range c.Ops {
			op := &c.Ops[i]
			width := op.Width()
			if op.Action == crdt.ActInsertText && width > 0 {
				if !(n > 0 && c.Actor == prevActor && own == prevEnd && op.Left.Actor == c.Actor && op.Left.Counter == own-1) {
					n++
				}
				prevActor, prevEnd = c.Actor, own+width
			}
			own += width
		}
	}
	t.pieces = make([]textPiece, 0, n)
	t.kids = make(map[uint64]uint64, n)
}

func (t *textTrack) grow() {
	for len(t.deleted)*64 < int(t.nChars) {
		t.deleted = append(grow2(t.deleted), 0)
	}
}

// delete records a deleteText op of n elements from (actor, ctr): it marks
// the characters of the actor's pieces that overlap the range.
func (t *textTrack) delete(actor int, ctr, n uint64) {
	to := ctr + n
	if to < ctr {
		to = ^uint64(0)
	}
	if actor < 0 || actor >= len(t.byActor) || len(t.byActor[actor]) == 0 {
		t.pending = append(t.pending, pendingDel{actor, ctr, n})
		return
	}
	ps := t.byActor[actor]
	if p := &t.pieces[ps[len(ps)-1]]; to > p.ctr+uint64(p.nChars) {
		t.pending = append(t.pending, pendingDel{actor, ctr, n})
	}
	t.markRange(actor, ctr, n)
}

func (t *textTrack) markRange(actor int, ctr, n uint64) {
	ps := t.byActor[actor]
	to := ctr + n
	if to < ctr {
		to = ^uint64(0)
	}
	lo, hi := 0, len(ps)
	if k := len(ps); k > 0 && t.pieces[ps[k-1]].ctr <= ctr {
		lo = k - 1 // backspacing in the last piece
	} else if g := t.markLo; g < k {
		if p := &t.pieces[ps[g]]; p.ctr <= ctr && ctr-p.ctr < uint64(p.nChars) {
			lo, hi = g, g // the first piece that ends after ctr: no search
		}
	}
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if p := &t.pieces[ps[m]]; p.ctr+uint64(p.nChars) <= ctr {
			lo = m + 1
		} else {
			hi = m
		}
	}
	t.markLo = lo
	for _, i := range ps[lo:] {
		p := &t.pieces[i]
		if p.ctr >= to {
			break
		}
		a, b := max(ctr, p.ctr), min(to, p.ctr+uint64(p.nChars))
		if a < b {
			setBits(t.deleted, uint64(p.charStart)+a-p.ctr, b-a)
		}
	}
}

func setBits(b []uint64, from, n uint64) {
	for ; n > 0 && from%64 != 0; from, n = from+1, n-1 {
		b[from/64] |= 1 << (from % 64)
	}
	for ; n >= 64; from, n = from+64, n-64 {
		b[from/64] = ^uint64(0)
	}
	for ; n > 0; from, n = from+1, n-1 {
		b[from/64] |= 1 << (from % 64)
	}
}

func bitAt(b []uint64, i uint64) bool { return b[i/64]>>(i%64)&1 != 0 }

// runOf returns how many bits from i on, up to n, equal bit i.
func runOf(b []uint64, i, n uint64) uint64 {
	want := bitAt(b, i)
	k := uint64(0)
	for k < n {
		w := b[(i+k)/64] >> ((i + k) % 64)
		if want {
			w = ^w
		}
		avail := 64 - (i+k)%64
		z := uint64(bits.TrailingZeros64(w))
		if z < avail {
			return min(k+z, n)
		}
		k += avail
	}
	return n
}

// settle marks again the deletes recorded before what they delete (see
// pending); marking is idempotent, so every save may do it.
func (t *textTrack) settle() {
	for _, d := range t.pending {
		if d.actor >= 0 && d.actor < len(t.byActor) && len(t.byActor[d.actor]) > 0 {
			t.markRange(d.actor, d.ctr, d.n)
		}
	}
}

// canDerive reports whether mode 1 can express text against dict at all.
func (t *textTrack) canDerive(text, dict []byte) bool {
	return !t.bad && len(dict) > 0 && len(dict) < 1<<31 && utf8.Valid(text)
}

// identity reports whether every character of the text column is one
// byte and character i is byte i: the case of an ASCII history.
func (t *textTrack) identity() bool {
	for i := range t.pieces {
		p := &t.pieces[i]
		if !p.ascii || p.byteStart != p.charStart {
			return false
		}
	}
	return true
}

// deletedText returns the literal stream of mode 1: the chunk's deleted
// characters in op order. It needs no dictionary, so the state section
// that carries it can be compressed while derive runs.
func (t *textTrack) deletedText(text []byte) []byte {
	deleted := 0 // characters; their bytes when all are ASCII
	for _, w := range t.deleted {
		deleted += bits.OnesCount64(w)
	}
	if deleted == 0 {
		return nil
	}
	lit := make([]byte, 0, deleted)
	if t.identity() {
		return t.appendDeletedBytes(lit, text)
	}
	return t.appendDeletedByPiece(lit, text)
}

// appendDeletedBytes appends the deleted characters of a text whose
// character i is byte i: the stretches of set bits, a word at a time.
func (t *textTrack) appendDeletedBytes(lit, text []byte) []byte {
	for wi, w := range t.deleted {
		base := wi * 64
		for w != 0 {
			from := bits.TrailingZeros64(w)
			n := min(bits.TrailingZeros64(^(w >> from)), 64-from) // 64: the rest is all set
			w &^= (^uint64(0) >> (64 - n)) << from
			end := min(base+from+n, len(text))
			if base+from >= end {
				return lit // bits past the text: none in a valid track
			}
			lit = append(lit, text[base+from:end]...)
		}
	}
	return lit
}

// appendDeletedByPiece appends the deleted characters, piece by piece.
func (t *textTrack) appendDeletedByPiece(lit, text []byte) []byte {
	for pi := range t.pieces {
		p := &t.pieces[pi]
		o, end := int(p.byteStart), int(p.byteStart+p.nBytes)
		ci := uint64(p.charStart)
		for o < end {
			run, nb := 1, 0
			if p.ascii {
				run = int(runOf(t.deleted, ci, uint64(end-o)))
				nb = run
			} else {
				nb = utf8RuneLen(text[o:])
			}
			if bitAt(t.deleted, ci) {
				lit = append(lit, text[o:o+nb]...)
			}
			o, ci = o+nb, ci+uint64(run)
		}
	}
	return lit
}

// derive writes the delta column of the chunk's text in mode 1 against
// dict (the literal stream is deletedText's). ok is false when mode 1
// cannot express the text (a visible character missing from dict): the
// writer then uses mode 0. settle and canDerive come first.
func (t *textTrack) derive(text, dict []byte, places *textPlaces, k *kit) (deltas []byte, ok bool) {
	// Every anchor is written before it is read (a piece's left origin
	// comes before it), so reused memory need not be cleared.
	anchor := int32s(&k.anchors, len(text))
	places.useScratch(&k.places)
	var d uintCol
	var finder dictFinder
	for pi := range t.pieces {
		p := &t.pieces[pi]
		prevLast := p.leftByte
		o, end := int(p.byteStart), int(p.byteStart+p.nBytes)
		ci := uint64(p.charStart)
		for o < end {
			P := int32(0)
			if prevLast >= 0 {
				P = anchor[prevLast]
			}
			// The stretch of characters from o with the same visibility.
			var run, nb int
			if p.ascii {
				run = int(runOf(t.deleted, ci, uint64(end-o)))
				nb = run
			} else {
				run, nb = 1, utf8RuneLen(text[o:])
			}
			if bitAt(t.deleted, ci) {
				for j := o; j < o+nb; j++ {
					anchor[j] = P
				}
				prevLast = int32(o + nb - 1)
				o, ci = o+nb, ci+uint64(run)
				continue
			}
			// Visible: copy as much as matches at the prediction, else
			// find the stretch in the dictionary.
			D := int(P)
			m := 0
			if D < len(dict) {
				m = commonPrefix(text[o:o+nb], dict[D:])
			}
			if !p.ascii && m < nb {
				m = 0
			}
			if m == 0 {
				// Missed: where the document says the character is, else
				// where its bytes are found.
				at, ok := places.at(t, int(p.actor), p.ctr+(ci-uint64(p.charStart)))
				if ok && at < len(dict) && commonPrefix(text[o:o+nb], dict[at:]) > 0 {
					D = at
				} else if D = finder.find(dict, text[o:o+nb], int(P)); D < 0 {
					return nil, false
				}
				m = commonPrefix(text[o:o+nb], dict[D:])
				if !p.ascii && m < nb {
					return nil, false
				}
			}
			chars := m
			if !p.ascii {
				chars = 1
			}
			d.add(zigzag(int64(D) - int64(P)))
			d.addRun(0, uint64(chars-1))
			for j := 0; j < m; j++ {
				anchor[o+j] = int32(D + j + 1)
			}
			prevLast = int32(o + m - 1)
			o, ci = o+m, ci+uint64(chars)
		}
	}
	return d.bytes(), true
}

func utf8RuneLen(b []byte) int {
	_, n := utf8.DecodeRune(b)
	return n
}

// dictFinder finds a stretch of text in the dictionary: first just after
// the prediction, then anywhere (through a table of 8-byte grams, built
// the first time it is needed).
type dictFinder struct {
	table []int32
}

const (
	finderWindow = 512
	finderNear   = 64
	finderStride = 4
	finderBits   = 16
)

func finderHash(b []byte) uint32 {
	return uint32((binary.LittleEndian.Uint64(b) * 0x9E3779B97F4A7C15) >> (64 - finderBits))
}

func (f *dictFinder) find(dict, s []byte, from int) int {
	if len(s) > 32 {
		s = s[:32]
	}
	// Near the prediction first, the longest match (what follows in the op
	// may have been split off by later typing); then anywhere. A match of
	// the first k bytes is what counts near the prediction, so the window
	// is searched for those bytes, not for every occurrence of the first.
	k := min(4, len(s))
	best, bestLen := -1, 0
	var w []byte
	if from < len(dict) {
		// A stretch the gram table can find is looked for only just after
		// the prediction (most are found within a few dozen bytes); the
		// rest, in a wider window. Scanning the wide window for stretches
		// that are far away was most of the time a save took here.
		win := finderWindow
		if len(s) >= gram+finderStride-1 {
			win = finderNear
		}
		w = dict[from:min(len(dict), from+win)]
		for i := 0; i < len(w); i++ {
			j := bytes.Index(w[i:], s[:k])
			if j < 0 {
				break
			}
			i += j
			if m := commonPrefix(s, w[i:]); m > bestLen {
				best, bestLen = from+i, m
				if m == len(s) {
					break
				}
			}
		}
	}
	if bestLen >= k {
		return best
	}
	if len(s) >= gram && len(dict) >= gram {
		// Every fourth dictionary position is indexed by its 8-byte gram,
		// so a stretch of at least 11 bytes is found by one of its first
		// four grams.
		if f.table == nil {
			f.table = make([]int32, 1<<finderBits)
			for i := 0; i+gram <= len(dict); i += finderStride {
				if h := finderHash(dict[i:]); f.table[h] == 0 {
					f.table[h] = int32(i + 1)
				}
			}
		}
		for k := 0; k < finderStride && k+gram <= len(s); k++ {
			q := int(f.table[finderHash(s[k:])]) - 1
			if q >= k && bytes.HasPrefix(dict[q-k:], s[:k+gram]) {
				return q - k
			}
		}
	}
	// Nothing of k bytes anywhere: the longest shorter match near the
	// prediction, else the first byte anywhere.
	for i := 0; i < len(w); i++ {
		j := bytes.IndexByte(w[i:], s[0])
		if j < 0 {
			break
		}
		i += j
		if m := commonPrefix(s, w[i:]); m > bestLen {
			best, bestLen = from+i, m
		}
	}
	if bestLen > 0 {
		return best
	}
	if i := bytes.Index(dict, s[:1]); i >= 0 {
		return i
	}
	return -1
}

// deriveReader rebuilds the texts of mode 1 on the decoding side. A whole
// section is decoded first and its texts rebuilt at the end (rebuild),
// because which characters are deleted is known only once every op is.
// LoadDoc, which must not hold every change of a long history at once,
// learns the deleted characters in a first pass (markAll) and then places
// each op's text as it reads it, batch after batch.
//
// What the reader keeps of the ops is a table of pieces, as the writer's
// textTrack does: a piece is a stretch of ops typed on one after the other
// (each op continuing the one before it), so a history of typing is a few
// pieces per line, not an entry per keystroke.
type deriveReader struct {
	pieces  []derivedPiece
	byActor map[causal.ActorID][]int32 // indices into pieces, in counter order
	nChars  uint64
	dels    [][]derivedDel // the deleteText ops, in blocks of delBlock
	prev    int            // index of the piece of the last op with characters, -1 none

	kids   map[causal.OpID]causal.OpID // as textTrack's
	noKids bool                        // the first pass predicts no right origins

	// The insertText ops whose texts are still to be set.
	waiting []waitingOp

	// Placing texts: the characters known deleted, the texts so far, and
	// for each of their bytes the dictionary offset the next character's
	// prediction starts from.
	placing bool
	deleted []uint64
	text    []byte
	anchor  []int32
	tr      reader // the deleted characters (the state section's tail)
	dict    []byte
	deltas  *uintIter // the textSeg column: offsets from the predictions
}

type derivedPiece struct {
	own        uint64 // counter of its first character
	first      uint64 // index of its first character among all
	width      uint64
	actor      causal.ActorID
	right      causal.OpID // right origin of its last op, for predictRight
	start, end int         // its bytes in the rebuilt text, when placed
}

type derivedDel struct {
	actor  causal.ActorID
	ctr, n uint64
}

type waitingOp struct {
	op         *crdt.Op
	own, width uint64
	actor      causal.ActorID
	start, end int // its bytes in the rebuilt text, when placed
}

func (r *deriveReader) init() {
	if r.byActor == nil {
		r.byActor = map[causal.ActorID][]int32{}
		r.prev = -1
	}
	if r.kids == nil {
		r.kids = map[causal.OpID]causal.OpID{}
	}
}

// insert records an insertText op of width characters, placing its text
// first if r is placing.
func (r *deriveReader) insert(op *crdt.Op, own uint64, actor causal.ActorID, width uint64) error {
	r.init()
	w := waitingOp{op: op, own: own, width: width, actor: actor, start: len(r.text), end: len(r.text)}
	if width > 0 {
		cont := false
		if r.prev >= 0 {
			p := &r.pieces[r.prev]
			cont = p.actor == actor && own == p.own+p.width && op.Left.Actor == actor && op.Left.Counter == own-1
		}
		if !cont && !r.noKids {
			key := op.Left
			if key.IsZero() {
				key = op.Obj
			}
			r.kids[key] = causal.OpID{Counter: own, Actor: actor}
		}
		if r.placing {
			var err error
			if w.start, w.end, err = r.place(op.Left, r.nChars, width); err != nil {
				return err
			}
		}
		if cont {
			p := &r.pieces[r.prev]
			p.width += width
			p.right = op.Right
			p.end = w.end
		} else {
			r.prev = len(r.pieces)
			r.byActor[actor] = append(grow2(r.byActor[actor]), int32(len(r.pieces)))
			r.pieces = append(grow2(r.pieces), derivedPiece{own: own, first: r.nChars, width: width, actor: actor,
				right: op.Right, start: w.start, end: w.end})
		}
	}
	r.waiting = append(r.waiting, w)
	r.nChars += width
	return nil
}

// deleteText records a deleteText op with an element.
func (r *deriveReader) deleteText(op *crdt.Op) {
	if r.placing {
		return // the deleted characters are known already (startPlacing)
	}
	if n := len(r.dels); n == 0 || len(r.dels[n-1]) == cap(r.dels[n-1]) {
		r.dels = append(r.dels, make([]derivedDel, 0, delBlock))
	}
	last := &r.dels[len(r.dels)-1]
	*last = append(*last, derivedDel{actor: op.Elem.Actor, ctr: op.Elem.Counter, n: op.Len})
}

// delBlock is how many deletes a block of deriveReader.dels holds: blocks,
// not one slice, so that millions of deletes are never copied to grow.
const delBlock = 1 << 12

// predictRight is textTrack.predictRight on the decoding side, over the
// ops read so far. Within a piece the character after left is the next
// one typed; past a piece's end it is the right origin of the piece's last
// op, since an op typed on from there would have joined the piece.
func (r *deriveReader) predictRight(obj, left causal.OpID) (causal.OpID, bool) {
	r.init()
	// Typing on from the latest insert: no op was inserted after its last
	// character yet (as in textTrack.predictRight), so no hash lookup.
	if r.prev >= 0 && !left.IsZero() {
		if p := &r.pieces[r.prev]; p.actor == left.Actor && left.Counter == p.own+p.width-1 {
			return p.right, true
		}
	}
	key := left
	if left.IsZero() {
		key = obj
	}
	if k, ok := r.kids[key]; ok {
		return k, true
	}
	if left.IsZero() {
		return causal.OpID{}, false
	}
	j, k, ok := r.find(left.Actor, left.Counter)
	if !ok {
		return causal.OpID{}, false
	}
	if k+1 < r.pieces[j].width {
		return causal.OpID{Counter: left.Counter + 1, Actor: left.Actor}, true
	}
	return r.pieces[j].right, true
}

// find returns the piece holding character (actor, ctr), and the
// character's index in it.
func (r *deriveReader) find(actor causal.ActorID, ctr uint64) (int, uint64, bool) {
	ps := r.byActor[actor]
	lo, hi := 0, len(ps)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.pieces[ps[m]].own <= ctr {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0, 0, false
	}
	i := int(ps[lo-1])
	p := &r.pieces[i]
	if ctr-p.own >= p.width {
		return 0, 0, false
	}
	return i, ctr - p.own, true
}

// markDeleted sets the bits of the characters a deleteText op names: the
// pieces of its actor whose counters overlap its range.
func (r *deriveReader) markDeleted(bits []uint64, del derivedDel) {
	ps := r.byActor[del.actor]
	from := del.ctr
	to := from + del.n // exclusive; a range that wraps names nothing past 2^64
	if to < from {
		to = ^uint64(0)
	}
	// The first piece that ends after from.
	lo, hi := 0, len(ps)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if p := &r.pieces[ps[m]]; p.own+p.width <= from {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for _, i := range ps[lo:] {
		p := &r.pieces[i]
		if p.own >= to {
			break
		}
		a, b := max(from, p.own), min(to, p.own+p.width)
		if a < b {
			setBits(bits, p.first+a-p.own, b-a)
		}
	}
}

// markAll returns the bits of every character the deleteText ops read so
// far name.
func (r *deriveReader) markAll() []uint64 {
	r.init()
	deleted := make([]uint64, (r.nChars+63)/64)
	for _, b := range r.dels {
		for _, d := range b {
			r.markDeleted(deleted, d)
		}
	}
	return deleted
}

// lastByte returns the offset in r.text of the last byte of character k of
// piece i (placed), reading from the nearer end of the piece.
func (r *deriveReader) lastByte(i int, k uint64) int {
	p := &r.pieces[i]
	if uint64(p.end-p.start) == p.width {
		return p.start + int(k)
	}
	if back := p.width - 1 - k; back < k {
		e := p.end
		for ; back > 0; back-- {
			_, n := utf8.DecodeLastRune(r.text[p.start:e])
			e -= n
		}
		return e - 1
	}
	o := p.start
	for ; k > 0; k-- {
		_, n := utf8.DecodeRune(r.text[o:p.end])
		o += n
	}
	_, n := utf8.DecodeRune(r.text[o:p.end])
	return o + n - 1
}

// startPlacing makes insert place each op's text as it comes, given the
// deleted characters' bits (which must cover every character the ops will
// have) and tail. It starts over: the pieces read so far are dropped.
func (r *deriveReader) startPlacing(deleted []uint64, dict, tail []byte) {
	r.init()
	r.pieces, r.dels, r.nChars, r.prev = r.pieces[:0], nil, 0, -1
	r.byActor = map[causal.ActorID][]int32{}
	r.placing, r.deleted = true, deleted
	r.tr = reader{b: tail, section: "state", column: "deleted text"}
	est := min(len(dict)+len(tail), 1<<26)
	r.text = make([]byte, 0, est)
	r.anchor = make([]int32, 0, est)
	r.dict = dict
}

// place appends to r.text the bytes of width characters, the first of
// them character number first, whose left origin is left: deleted
// characters from the tail, visible ones from the dictionary at the
// predicted offset plus the next delta.
func (r *deriveReader) place(left causal.OpID, first, width uint64) (start, end int, err error) {
	start = len(r.text)
	prevLast := -1
	if !left.IsZero() {
		if j, k, ok := r.find(left.Actor, left.Counter); ok {
			prevLast = r.lastByte(j, k)
		}
	}
	tr, dict, deltas := &r.tr, r.dict, r.deltas
	for k := uint64(0); k < width; k++ {
		P := int64(0)
		if prevLast >= 0 {
			P = int64(r.anchor[prevLast])
		}
		if first+k >= uint64(len(r.deleted))*64 {
			return 0, 0, deltas.r.fail(ErrMalformed, "more characters than the first pass counted")
		}
		if bitAt(r.deleted, first+k) {
			c, n := utf8.DecodeRune(tr.b[tr.off:])
			if n == 0 {
				return 0, 0, tr.fail(ErrTruncated, "deleted characters run out")
			}
			if c == utf8.RuneError && n == 1 {
				return 0, 0, tr.fail(ErrMalformed, "invalid UTF-8")
			}
			r.text = append(r.text, tr.b[tr.off:tr.off+n]...)
			tr.off += n
			for ; n > 0; n-- {
				r.anchor = append(r.anchor, int32(P))
			}
		} else {
			d, err := deltas.nextInt()
			if err != nil {
				return 0, 0, err
			}
			D := P + d
			if D < 0 || D >= int64(len(dict)) {
				return 0, 0, deltas.r.fail(ErrMalformed, "character at %d outside the %d-byte dictionary", D, len(dict))
			}
			c, n := utf8.DecodeRune(dict[D:])
			if c == utf8.RuneError && n == 1 {
				return 0, 0, deltas.r.fail(ErrMalformed, "invalid UTF-8 in the dictionary at %d", D)
			}
			r.text = append(r.text, dict[D:D+int64(n)]...)
			for j := 1; j <= n; j++ {
				r.anchor = append(r.anchor, int32(D)+int32(j))
			}
		}
		prevLast = len(r.text) - 1
	}
	return start, len(r.text), nil
}

// settle gives the waiting ops, all placed, their texts, cut from one
// string.
func (r *deriveReader) settle() {
	if len(r.waiting) == 0 {
		return
	}
	base := r.waiting[0].start
	s := string(r.text[base:])
	for _, w := range r.waiting {
		w.op.Text = s[w.start-base : w.end-base]
	}
	r.forget()
}

// forget drops the waiting ops (the first pass sets no texts; settle has
// set them).
func (r *deriveReader) forget() {
	clear(r.waiting) // the ops are the caller's
	r.waiting = r.waiting[:0]
}

// endPlacing checks that every deleted character was used.
func (r *deriveReader) endPlacing() error {
	if !r.tr.done() {
		return r.tr.fail(ErrMalformed, "%d bytes of deleted characters not used", r.tr.rest())
	}
	return nil
}

// rebuild gives every insertText op its text, once all are read: it
// learns the deleted characters, then reads the ops again, placing each.
func (r *deriveReader) rebuild(dict, tail []byte, deltas *uintIter) error {
	ops := r.waiting
	r.waiting = ops[:0] // insert appends op i where it was just read from
	r.startPlacing(r.markAll(), dict, tail)
	r.deltas = deltas
	for _, w := range ops {
		if err := r.insert(w.op, w.own, w.actor, w.width); err != nil {
			return err
		}
	}
	if err := r.endPlacing(); err != nil {
		return err
	}
	r.settle()
	return nil
}
