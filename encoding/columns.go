package encoding

import (
	"sync"
	"sync/atomic"
)

// Columns of a version 2 history section are each stored on their own:
// uvarint stored length, and if it is not zero a flags byte (0 stored,
// flagDeflate, flagZstd), the raw length if compressed, and the bytes.
// Writers compress raw text with Zstandard, and integer columns with
// Huffman-only DEFLATE and with Zstandard's fastest level, keeping the
// smaller (Huffman codes suit most integer columns; repetitive ones, such
// as the times of many authors, need string matching); each only when
// that pays.
const minCompressColumn = 32

var textCols = [numCols]bool{colChMsg: true, colKey: true, colValStr: true, colText: true}

// The kinds of compression task: each column that may be compressed is
// one task of each kind it tries.
const (
	taskHuffman = iota
	taskZstd
)

// columnSet encodes some of a section's columns. One goroutine or two run
// its tasks; each task is taken by one of them. In a two-goroutine save the
// state worker takes Huffman tasks while it waits for the state, then,
// after the state, the Zstandard ones first; the other goroutine takes
// the Huffman ones first once it has placed the text.
type columnSet struct {
	raw   [numCols][]byte
	added [numCols]bool
	tried [numCols][2]compressedColumn
	tasks [2][]int8 // by kind: the columns
	next  [2]atomic.Int32
	left  sync.WaitGroup // tasks not done
}

type compressedColumn struct {
	b     []byte
	flags byte
}

// columns returns the set of w's columns but the text ones, their actor
// indices mapped through renumber unless it is nil.
func (w *historyWriter) columns(renumber []uint64, compress bool) *columnSet {
	s := new(columnSet)
	for i := range numCols {
		if isTextColumn(i) {
			continue
		}
		col := w.column(i)
		if nullable, ok := actorCols[i]; ok && renumber != nil {
			col = renumberColumn(col, renumber, nullable)
		}
		s.add(i, col, compress)
	}
	return s
}

// addText adds the text columns.
func (s *columnSet) addText(text sectionText, compress bool) {
	s.add(colTextLen, text.textLen, compress)
	s.add(colTextSeg, text.seg, compress)
	s.add(colText, text.lit, compress)
}

func (s *columnSet) add(i int, col []byte, compress bool) {
	s.raw[i], s.added[i] = col, true
	if !compress || len(col) < minCompressColumn {
		return
	}
	if !textCols[i] {
		s.tasks[taskHuffman] = append(s.tasks[taskHuffman], int8(i))
		s.left.Add(1)
	}
	s.tasks[taskZstd] = append(s.tasks[taskZstd], int8(i))
	s.left.Add(1)
}

// run does the set's tasks with k, those of kind first first, until none
// is left to take.
func (s *columnSet) run(k *kit, first int) {
	for _, kind := range [2]int{first, 1 - first} {
		for s.runOne(k, kind) {
		}
	}
}

// do tries the codec of the given kind on column i.
func (s *columnSet) do(k *kit, kind, i int) {
	codec := codecHuffman
	if kind == taskZstd {
		codec = codecZstdFast
		if textCols[i] {
			codec = codecZstd
		}
	}
	b, flags := k.compress(s.raw[i], codec)
	s.tried[i][kind] = compressedColumn{b, flags}
	s.left.Done()
}

// runOne does one task of the given kind with k, if one is left to take.
func (s *columnSet) runOne(k *kit, kind int) bool {
	n := int(s.next[kind].Add(1)) - 1
	if n >= len(s.tasks[kind]) {
		return false
	}
	s.do(k, kind, int(s.tasks[kind][n]))
	return true
}

// wait returns once every task is done, by whichever goroutine took it.
func (s *columnSet) wait() { s.left.Wait() }

// encode writes each column of the set into out, as stored: the smallest
// of what was tried, or raw. Every task must be done.
func (s *columnSet) encode(out *[numCols][]byte) {
	for i := range numCols {
		if !s.added[i] {
			continue
		}
		best := compressedColumn{b: s.raw[i]}
		for _, c := range s.tried[i] {
			if c.b != nil && len(c.b) < len(best.b) {
				best = c
			}
		}
		out[i] = appendStoredColumn(nil, s.raw[i], best)
	}
}

func appendStoredColumn(b, raw []byte, c compressedColumn) []byte {
	if len(c.b) == 0 {
		return append(b, 0)
	}
	b = appendUvarint(b, uint64(len(c.b)))
	b = append(b, c.flags)
	if c.flags != 0 {
		b = appendUvarint(b, uint64(len(raw)))
	}
	return append(b, c.b...)
}
