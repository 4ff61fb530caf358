package encoding

import (
	"encoding/binary"
	"unsafe"

	"github.com/converge-sync/converge/crdt"
)

// Most characters a text history ever inserted are still visible, so they
// are already in the chunk's state. The history's text content is therefore
// written as segments: literal bytes, or copies of a stretch of the
// dictionary, which is the texts of the chunk's state (every text node's
// string, depth first, concatenated). A chunk without a state has an empty
// dictionary and only literals.
//
// The textSeg column is a sequence of varints, one group per segment: a
// header h; if h is even, h/2 bytes come from the text column (literals);
// if h is odd, h/2 bytes are copied from the dictionary, starting at the end
// of the previous copy (0 for the first) plus the signed varint that
// follows. How the writer finds copies is not part of the format.

// stateDict returns the dictionary of a state. It is only ever read: a
// state with a single text shares that text's bytes rather than copy them
// (a large document's text is most of what a save reads).
func stateDict(st *State) []byte {
	if st == nil {
		return nil
	}
	texts := stateTexts(st)
	switch len(texts) {
	case 0:
		return nil
	case 1:
		return unsafe.Slice(unsafe.StringData(texts[0].Text), len(texts[0].Text))
	}
	n := 0
	for _, t := range texts {
		n += len(t.Text)
	}
	out := make([]byte, 0, n)
	for _, t := range texts {
		out = append(out, t.Text...)
	}
	return out
}

// stateTexts returns the text nodes of a state in dictionary order (depth
// first).
func stateTexts(st *State) []*Node {
	var texts []*Node
	var walk func(n *Node)
	walk = func(n *Node) {
		if n.Kind == crdt.KindText {
			texts = append(texts, n)
		}
		for _, it := range n.Items {
			walk(it)
		}
	}
	walk(st.Root)
	return texts
}

// Matching thresholds: continuing the previous copy pays from a few bytes,
// jumping elsewhere in the dictionary only for longer stretches (a copy
// costs a header and an offset, a literal byte compresses to well under
// a byte).
const (
	minContinue = 4
	minJump     = 12
	gram        = 8
	hashBits    = 17
)

func gramHash(b []byte) uint32 {
	return uint32((binary.LittleEndian.Uint64(b) * 0x9E3779B97F4A7C15) >> (64 - hashBits))
}

// matchText splits text into segments against dict, greedily: continue the
// previous copy if it matches, else jump to the first dictionary position
// with the same leading bytes, else emit a literal byte.
func matchText(text, dict []byte) (seg, lit []byte) {
	var table []int32
	if len(dict) >= gram {
		table = make([]int32, 1<<hashBits)
		for i := 0; i+gram <= len(dict); i++ {
			if h := gramHash(dict[i:]); table[h] == 0 {
				table[h] = int32(i + 1)
			}
		}
	}
	prevEnd := 0
	litStart := 0
	flushLit := func(end int) {
		if end > litStart {
			seg = appendUvarint(seg, uint64(end-litStart)<<1)
			lit = append(lit, text[litStart:end]...)
		}
	}
	for p := 0; p < len(text); {
		at, n := prevEnd, commonPrefix(text[p:], dict[prevEnd:])
		if n < minContinue {
			n = 0
			if table != nil && p+gram <= len(text) {
				if q := table[gramHash(text[p:])]; q != 0 {
					if m := commonPrefix(text[p:], dict[q-1:]); m >= minJump {
						at, n = int(q-1), m
					}
				}
			}
		}
		if n == 0 {
			p++
			continue
		}
		flushLit(p)
		seg = appendUvarint(seg, uint64(n)<<1|1)
		seg = appendSvarint(seg, int64(at-prevEnd))
		prevEnd = at + n
		p += n
		litStart = p
	}
	flushLit(len(text))
	return seg, lit
}

func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i+8 <= n && binary.LittleEndian.Uint64(a[i:]) == binary.LittleEndian.Uint64(b[i:]) {
		i += 8
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// expandText rebuilds the text content from its segments. The result may
// not exceed limit bytes (a decoder limit: copies let a few bytes stand for
// many).
func expandText(seg, lit, dict []byte, limit int) ([]byte, error) {
	r := reader{b: seg, section: "history", column: "textSeg"}
	lr := reader{b: lit, section: "history", column: "text"}
	var out []byte
	prevEnd := 0
	for !r.done() {
		h, err := r.uvarint()
		if err != nil {
			return nil, err
		}
		n := h >> 1
		if n == 0 {
			return nil, r.fail(ErrMalformed, "empty segment")
		}
		if n > uint64(limit-len(out)) {
			return nil, r.fail(ErrMalformed, "text content exceeds the decoder limit of %d bytes", limit)
		}
		if h&1 == 0 {
			b, err := lr.bytes(n)
			if err != nil {
				return nil, err
			}
			out = append(out, b...)
			continue
		}
		d, err := r.svarint()
		if err != nil {
			return nil, err
		}
		at := int64(prevEnd) + d
		if at < 0 || at > int64(len(dict)) || n > uint64(int64(len(dict))-at) {
			return nil, r.fail(ErrMalformed, "copy of %d bytes at %d outside the %d-byte dictionary", n, at, len(dict))
		}
		out = append(out, dict[at:at+int64(n)]...)
		prevEnd = int(at) + int(n)
	}
	if !lr.done() {
		return nil, lr.fail(ErrMalformed, "%d literal bytes not used", lr.rest())
	}
	return out, nil
}
