package encoding

// Columns hold one field of many rows. Integer columns are run-length
// encoded: a sequence of groups, each starting with a varint header h.
// If h is even, h/2 copies of the single varint value that follows;
// if h is odd, h/2 literal varint values follow. h/2 is never zero.
// Histories repeat themselves (the same object, the same action, a counter
// that grows by one), so most columns collapse to a few runs.

// uintCol writes an integer column. Pending literals are kept already
// encoded (not as []uint64), so a column that never repeats itself costs
// its encoded size in memory, not eight bytes a value: a long-lived
// History keeps its columns open for the life of a document.
type uintCol struct {
	buf   []byte
	lits  []byte // literals waiting for their group header, as uvarints
	nLits uint64
	val   uint64 // value of the open run
	n     uint64 // length of the open run
}

func (c *uintCol) add(v uint64) {
	if c.n > 0 && v == c.val {
		c.n++
		return
	}
	c.closeRun()
	c.val, c.n = v, 1
}

// addRun adds n copies of v.
func (c *uintCol) addRun(v, n uint64) {
	if n == 0 {
		return
	}
	if c.n > 0 && v == c.val {
		c.n += n
		return
	}
	c.closeRun()
	c.val, c.n = v, n
}

// closeRun writes a run of two or more as a run; a single value joins the
// pending literals, because a run of one costs a header of its own.
func (c *uintCol) closeRun() {
	switch c.n {
	case 0:
		return
	case 1:
		c.lits = appendUvarint(room(c.lits, maxVarint), c.val)
		c.nLits++
	default:
		c.flushLits()
		c.buf = appendUvarint(room(c.buf, 2*maxVarint), c.n<<1)
		c.buf = appendUvarint(c.buf, c.val)
	}
	c.n = 0
}

func (c *uintCol) flushLits() {
	if c.nLits == 0 {
		return
	}
	c.buf = appendUvarint(room(c.buf, maxVarint+len(c.lits)), c.nLits<<1|1)
	c.buf = append(c.buf, c.lits...)
	c.lits, c.nLits = c.lits[:0], 0
}

// bytes returns the column as written so far, without closing it: more
// values may be added afterwards, and bytes then returns the column as if
// they had all been added before the first call.
func (c *uintCol) bytes() []byte { return c.appendTo(nil) }

// appendTo appends the column's bytes to b, leaving the column open.
func (c *uintCol) appendTo(b []byte) []byte {
	return c.appendPending(append(b, c.buf...))
}

// appendPending appends what appendTo adds after the written bytes: the
// pending literals and the open run.
func (c *uintCol) appendPending(b []byte) []byte {
	nLits, withVal := c.nLits, c.n == 1
	if withVal {
		nLits++
	}
	if nLits > 0 {
		b = appendUvarint(b, nLits<<1|1)
		b = append(b, c.lits...)
		if withVal {
			b = appendUvarint(b, c.val)
		}
	}
	if c.n >= 2 {
		b = appendUvarint(b, c.n<<1)
		b = appendUvarint(b, c.val)
	}
	return b
}

// intCol writes signed integers, zigzag-mapped.
type intCol struct{ uintCol }

func (c *intCol) add(v int64) { c.uintCol.add(zigzag(v)) }

// deltaCol writes each value as its difference (mod 2^64) from the previous
// one in the column, the first from zero; a counter that grows steadily
// becomes one run.
type deltaCol struct {
	uintCol
	prev uint64
}

func (c *deltaCol) add(v uint64) {
	c.uintCol.add(zigzag(int64(v - c.prev)))
	c.prev = v
}

// uintIter reads an integer column.
type uintIter struct {
	r    reader
	left uint64 // values left in the current group
	lit  bool
	val  uint64
}

func newUintIter(b []byte, section, column string) *uintIter {
	return &uintIter{r: reader{b: b, section: section, column: column}}
}

func (it *uintIter) next() (uint64, error) {
	if it.left == 0 {
		h, err := it.r.uvarint()
		if err != nil {
			return 0, err
		}
		if h>>1 == 0 {
			return 0, it.r.fail(ErrMalformed, "empty run")
		}
		it.left, it.lit = h>>1, h&1 == 1
		if !it.lit {
			if it.val, err = it.r.uvarint(); err != nil {
				return 0, err
			}
		}
	}
	it.left--
	if it.lit {
		return it.r.uvarint()
	}
	return it.val, nil
}

// end reports an error unless the column was read exactly to its end:
// extra values mean the column and the row count disagree.
func (it *uintIter) end() error {
	if it.left != 0 || !it.r.done() {
		return it.r.fail(ErrMalformed, "column holds more values than rows")
	}
	return nil
}

func (it *uintIter) nextInt() (int64, error) {
	u, err := it.next()
	return unzigzag(u), err
}

// deltaIter reads a deltaCol.
type deltaIter struct {
	uintIter
	prev uint64
}

func newDeltaIter(b []byte, section, column string) *deltaIter {
	return &deltaIter{uintIter: uintIter{r: reader{b: b, section: section, column: column}}}
}

func (it *deltaIter) next() (uint64, error) {
	d, err := it.uintIter.nextInt()
	it.prev += uint64(d)
	return it.prev, err
}
