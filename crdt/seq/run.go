package seq

import "unicode/utf8"

// cid is a compact element ID: an index into the engine's actor table and a
// counter. Counters start at 1, so counter 0 names no element (the start of
// the sequence as a left origin, its end as a right origin).
type cid struct {
	ctr uint64
	act uint32
}

// Flags kept in the top bits of run.txt, so that a run stays 48 bytes.
const (
	flagVisible = 1 << 63
	flagASCII   = 1 << 62 // text is all ASCII: element k is byte k
	flagNoText  = 1 << 61 // a list run: every element's character is NUL
	txtMask     = 1<<61 - 1
)

// run is a stretch of elements that one Insert (or typing that extended it)
// created: consecutive IDs by one actor, adjacent in the sequence, with the
// same visibility and right origin. Element k > 0 has element k-1 as its left
// origin, as the FugueMax rule gives a run of typing, so only the first
// element's left origin is stored.
type run struct {
	ctr  uint64 // counter of the first element
	lctr uint64 // left origin of the first element (0: start)
	rctr uint64 // right origin of every element (0: end)
	txt  uint64 // byte offset of the text in the engine's arena, and flags
	n    uint32 // number of elements
	act  uint32 // actor of the elements
	lact uint32
	ract uint32
}

// maxRun bounds run.n; longer inserts are placed as several runs.
const maxRun = 1<<32 - 1

func (r *run) visible() bool  { return r.txt&flagVisible != 0 }
func (r *run) ascii() bool    { return r.txt&flagASCII != 0 }
func (r *run) noText() bool   { return r.txt&flagNoText != 0 }
func (r *run) off() uint64    { return r.txt & txtMask }
func (r *run) len() int       { return int(r.n) }
func (r *run) end() uint64    { return r.ctr + uint64(r.n) }
func (r *run) left() cid      { return cid{r.lctr, r.lact} }
func (r *run) right() cid     { return cid{r.rctr, r.ract} }
func (r *run) at(k int) cid   { return cid{r.ctr + uint64(k), r.act} }
func (r *run) last() cid      { return cid{r.end() - 1, r.act} }
func (r *run) has(c cid) bool { return c.act == r.act && c.ctr-r.ctr < uint64(r.n) }

func (r *run) setVisible(v bool) {
	if v {
		r.txt |= flagVisible
	} else {
		r.txt &^= flagVisible
	}
}

// textBytes is the byte length of the text of elements [0, k) of r.
func (r *run) textBytes(arena []byte, k int) uint64 {
	switch {
	case r.noText():
		return 0
	case r.ascii():
		return uint64(k)
	}
	b := arena[r.off():]
	i := 0
	for ; k > 0; k-- {
		_, w := utf8.DecodeRune(b[i:])
		i += w
	}
	return uint64(i)
}

// split cuts r before element k (0 < k < n) into two runs.
func (r *run) split(arena []byte, k int) (run, run) {
	a, b := *r, *r
	a.n = uint32(k)
	b.ctr += uint64(k)
	b.n -= uint32(k)
	b.lctr, b.lact = b.ctr-1, b.act
	b.txt += r.textBytes(arena, k)
	return a, b
}

// joinable reports whether b can be appended to a as one run: b must come
// directly after a in the sequence (the caller knows), continue its IDs with
// a's last element as its left origin, share its right origin and flags, and
// have its text right after a's in the arena.
func joinable(arena []byte, a, b *run) bool {
	return sameShape(a, b) && (a.noText() || b.off() == a.off()+a.textBytes(arena, a.len()))
}

// sameShape is joinable without the text check.
func sameShape(a, b *run) bool {
	return b.act == a.act && b.ctr == a.end() && b.lact == a.act && b.lctr == b.ctr-1 &&
		b.rctr == a.rctr && b.ract == a.ract && b.txt&^txtMask == a.txt&^txtMask &&
		uint64(a.n)+uint64(b.n) <= maxRun
}
