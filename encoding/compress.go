package encoding

import (
	"bytes"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
)

// The levels are fixed: the same input must always give the same bytes
// (with the same compressor version).
const (
	deflateLevel = flate.DefaultCompression
	zstdLevel    = zstd.SpeedDefault // for text
)

// liveStateCodec compresses the state section of a live document's save
// (SaveDoc): Zstandard at its fastest level. A document is saved now and
// then, with cold caches, where the default level's bigger match tables
// made saving automerge-paper about a quarter slower (2.8 against 2.15 ms)
// and friendsforever_flat 1.1 against 0.77 ms; the state comes out about
// 4% larger (4.4 KB and 0.46 KB). EncodeDocument and Compact, which write
// for keeps, use the default level.
const liveStateCodec = codecZstdFast

// codecHuffman asks for DEFLATE without string matching (Huffman codes
// only): nearly all a column of small integers gains, many times faster.
// codecZstdFast is Zstandard at its fastest level.
const (
	codecHuffman = 3 + iota
	codecZstdFast
)

// kit is what one goroutine of a save works with: compressors
// (Zstandard at the default and the fastest level, Huffman-only DEFLATE,
// each made on first use) and scratch memory for placing the text. A
// goroutine takes a kit and gives it back (takeKit, release), so that a
// save's work runs on tables already in the CPU's cache: the state worker
// of a two-goroutine save compresses the columns that want Zstandard right
// after the state, with encoders of the same kit (see columnSet).
type kit struct {
	zstd    [2]*zstd.Encoder // default, fastest
	huffman *flate.Writer
	anchors []int32      // derive's
	places  placeScratch // the place index's
}

// kits keeps idle kits, at most two (one per goroutine of a save; more
// at once are made and dropped). Unlike a sync.Pool's, they survive
// garbage collections: a document is saved now and then, and a kit made
// anew (compressors, then scratch memory the system must zero and map)
// made a save of automerge-paper's Huffman-only columns 30 µs to 140 µs,
// and its text placing 0.17 ms longer.
var kits = make(chan *kit, 2)

// maxKeptScratch is the most scratch memory (in int32s, per buffer) a
// kit keeps between saves: 4 MB, what a history of a million characters
// needs, a small part of such a document's own memory. A larger save
// allocates its own.
const maxKeptScratch = 1 << 20

func takeKit() *kit {
	select {
	case k := <-kits:
		return k
	default:
		return new(kit)
	}
}

func (k *kit) release() {
	if cap(k.anchors) > maxKeptScratch {
		k.anchors = nil
	}
	if cap(k.places.off) > maxKeptScratch {
		k.places = placeScratch{}
	}
	select {
	case kits <- k:
	default:
	}
}

// int32s returns n int32s from *buf, growing it if needed; they hold
// whatever they held.
func int32s(buf *[]int32, n int) []int32 {
	if cap(*buf) < n {
		*buf = make([]int32, n)
	}
	return (*buf)[:n]
}

func (k *kit) compress(raw []byte, codec int) ([]byte, byte) {
	switch codec {
	case codecDeflate:
		if z := deflate(raw); len(z) < len(raw) {
			return z, flagDeflate
		}
	case codecHuffman:
		if z := k.huffmanOnly(raw); len(z) < len(raw) {
			return z, flagDeflate
		}
	case codecZstd, codecZstdFast:
		if z := k.zstdCompress(raw, codec == codecZstdFast); len(z) < len(raw) && uint64(len(raw)) <= uint64(len(z))*maxZstdRatio {
			return z, flagZstd
		}
	}
	return raw, 0
}

// deflaters keeps DEFLATE writers at the default level, which only large
// single changes use (about 1 MB each).
var deflaters = sync.Pool{New: func() any { w, _ := flate.NewWriter(nil, deflateLevel); return w }}

func deflate(raw []byte) []byte {
	w := deflaters.Get().(*flate.Writer)
	defer deflaters.Put(w)
	return deflateWith(w, raw)
}

func (k *kit) huffmanOnly(raw []byte) []byte {
	if k.huffman == nil {
		k.huffman, _ = flate.NewWriter(nil, flate.HuffmanOnly)
	}
	return deflateWith(k.huffman, raw)
}

func deflateWith(w *flate.Writer, raw []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(raw)/2 + 64)
	w.Reset(&buf)
	w.Write(raw)
	w.Close()
	return buf.Bytes()
}

// zstdCompress writes one Zstandard frame with its content size and
// without a checksum (the section has its CRC).
func (k *kit) zstdCompress(raw []byte, fast bool) []byte {
	i, level := 0, zstdLevel
	if fast {
		i, level = 1, zstd.SpeedFastest
	}
	if k.zstd[i] == nil {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(false), zstd.WithWindowSize(1<<20))
		if err != nil {
			panic(err) // the options are constants
		}
		k.zstd[i] = e
	}
	return k.zstd[i].EncodeAll(raw, make([]byte, 0, len(raw)/2+64))
}
