package encoding

import (
	"encoding/binary"
	"math"
)

// Integers are LEB128 varints (encoding/binary's Uvarint); signed integers
// are zigzag-mapped first (binary's Varint), so small negative numbers stay
// small. Differences of counters are taken modulo 2^64 and read back the
// same way, so a delta is exact even where a value wrapped.

// maxVarint is the most bytes a varint takes.
const maxVarint = binary.MaxVarintLen64

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
func appendSvarint(b []byte, v int64) []byte  { return binary.AppendVarint(b, v) }

func appendString(b []byte, s string) []byte {
	b = appendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// reader reads primitives from one byte slice and turns every failure into a
// *FormatError naming the section, column and offset.
type reader struct {
	b       []byte
	off     int
	section string
	column  string
}

func newReader(b []byte, section string) *reader { return &reader{b: b, section: section} }

func (r *reader) rest() int  { return len(r.b) - r.off }
func (r *reader) done() bool { return r.off >= len(r.b) }

func (r *reader) fail(kind error, format string, args ...any) error {
	return formatErr(kind, r.section, r.column, r.off, format, args...)
}

func (r *reader) uvarint() (uint64, error) {
	v, n := binary.Uvarint(r.b[r.off:])
	if n == 0 {
		return 0, r.fail(ErrTruncated, "varint runs past the end")
	}
	if n < 0 {
		return 0, r.fail(ErrMalformed, "varint overflows 64 bits")
	}
	r.off += n
	return v, nil
}

func (r *reader) svarint() (int64, error) {
	u, err := r.uvarint()
	return unzigzag(u), err
}

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, r.fail(ErrTruncated, "expected a byte")
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

// bytes returns the next n bytes without copying.
func (r *reader) bytes(n uint64) ([]byte, error) {
	if n > uint64(r.rest()) {
		return nil, r.fail(ErrTruncated, "%d bytes announced, %d left", n, r.rest())
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

func (r *reader) string() (string, error) {
	n, err := r.uvarint()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(n)
	return string(b), err
}

// count reads an element count and checks that the remaining input could
// hold that many elements of at least minSize bytes each, so that a forged
// count cannot make the decoder allocate more than the input justifies.
func (r *reader) count(minSize int) (int, error) {
	n, err := r.uvarint()
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt32 || int(n)*minSize > r.rest() {
		return 0, r.fail(ErrTruncated, "count %d does not fit in the %d bytes left", n, r.rest())
	}
	return int(n), nil
}

func (r *reader) uint32le() (uint32, error) {
	b, err := r.bytes(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (r *reader) uint64le() (uint64, error) {
	b, err := r.bytes(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}
