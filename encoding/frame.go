package encoding

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
)

// Every object starts with the magic number, the format version and a type
// byte, in that order and never anything else, so that any future version
// can still be recognised and refused by this decoder.
var magic = [4]byte{0x83, 'C', 'V', 'G'}

// Version is the format version this package writes for documents. It
// reads every version listed in SupportedVersions.
//
// Version 2 changed only the document: its history section and the
// compression of its sections. A change (and the stream form) is the same
// in both versions and is still written with version byte 1
// (ChangeVersion), so that replicas running a v1 decoder keep reading the
// changes they are sent.
const Version = 2

// ChangeVersion is the version byte of a standalone change.
const ChangeVersion = 1

// SupportedVersions are the format versions this package can read: for a
// document chunk, every one; for a change, version 1 (which is also what
// version 2 writes).
var SupportedVersions = []byte{1, 2}

// versionFor is the version byte this package writes for an object type.
func versionFor(typ byte) byte {
	if typ == typeChange {
		return ChangeVersion
	}
	return Version
}

// supported reports whether this package reads version v of type typ.
func supported(typ, v byte) bool {
	if typ == typeChange {
		return v == ChangeVersion
	}
	return bytes.IndexByte(SupportedVersions, v) >= 0
}

// Object types (the byte after the version).
const (
	typeChange   = 'c'
	typeDocument = 'd'
)

// Flags of a framed body: flagDeflate marks a body stored compressed with
// DEFLATE (RFC 1951); flagZstd (version 2 on) one stored as a Zstandard
// frame (RFC 8878). At most one is set.
const (
	flagDeflate = 1
	flagZstd    = 2
)

// Decoder limits: a raw (uncompressed) length may exceed the stored length
// by at most DEFLATE's worst-case ratio, or for Zstandard by maxZstdRatio
// (a writer uses Zstandard only within that ratio).
const (
	maxDeflateRatio = 1032
	maxZstdRatio    = 4096
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func appendHeader(b []byte, typ byte) []byte {
	b = append(b, magic[:]...)
	return append(b, versionFor(typ), typ)
}

// readHeader checks magic, version and type, in that order.
func readHeader(r *reader, typ byte) error {
	_, err := readHeaderVersion(r, typ)
	return err
}

// readHeaderVersion is readHeader returning the version.
func readHeaderVersion(r *reader, typ byte) (byte, error) {
	m, err := r.bytes(4)
	if err != nil {
		if len(r.b) > 0 && !bytes.HasPrefix(magic[:], r.b) {
			return 0, r.fail(ErrBadMagic, "")
		}
		return 0, err
	}
	if !bytes.Equal(m, magic[:]) {
		r.off = 0
		return 0, r.fail(ErrBadMagic, "starts with % x", m)
	}
	v, err := r.byte()
	if err != nil {
		return 0, err
	}
	if bytes.IndexByte(SupportedVersions, v) < 0 {
		return 0, r.fail(ErrUnsupportedVersion, "version %d; this decoder reads %v", v, SupportedVersions)
	}
	t, err := r.byte()
	if err != nil {
		return 0, err
	}
	if t != typ {
		return 0, r.fail(ErrBadMagic, "object type %q, expected %q", t, typ)
	}
	if !supported(typ, v) {
		return 0, r.fail(ErrUnsupportedVersion, "version %d of object type %q; this decoder reads version %d", v, t, ChangeVersion)
	}
	return v, nil
}

// Codecs a writer may ask appendBody for. The writer stores the body
// compressed only if that makes it smaller.
const (
	codecNone = iota
	codecDeflate
	codecZstd
)

// appendBody writes flags, lengths, the body (compressed with codec if
// that pays) and a CRC-32C of everything from start.
func appendBody(b []byte, start int, raw []byte, codec int) []byte {
	k := takeKit()
	defer k.release()
	return k.appendBody(b, start, raw, codec)
}

func (k *kit) appendBody(b []byte, start int, raw []byte, codec int) []byte {
	stored, flags := k.compress(raw, codec)
	b = append(b, flags)
	b = appendUvarint(b, uint64(len(stored)))
	if flags != 0 {
		b = appendUvarint(b, uint64(len(raw)))
	}
	b = append(b, stored...)
	return binary.LittleEndian.AppendUint32(b, checksum(b[start:]))
}

// framed is a body whose checksum has been verified but which may still be
// compressed: a document's history stays like this until someone asks.
type framed struct {
	stored []byte
	flags  byte
	rawLen int
	what   string
}

// readFramed reads what appendBody wrote and verifies the checksum over
// r.b[start:]. allowed is the set of flags the object's version knows.
func readFramed(r *reader, start int, what string, allowed byte) (framed, error) {
	f := framed{what: what}
	flags, err := r.byte()
	if err != nil {
		return f, err
	}
	if flags&^allowed != 0 || flags == flagDeflate|flagZstd {
		return f, r.fail(ErrMalformed, "unknown flags %#x", flags)
	}
	f.flags = flags
	n, err := r.uvarint()
	if err != nil {
		return f, err
	}
	var rawLen uint64
	if flags != 0 {
		if rawLen, err = r.uvarint(); err != nil {
			return f, err
		}
	}
	if f.stored, err = r.bytes(n); err != nil {
		return f, err
	}
	end := r.off
	sum, err := r.uint32le()
	if err != nil {
		return f, err
	}
	if got := checksum(r.b[start:end]); got != sum {
		return f, formatErr(ErrChecksum, what, "", start, "stored %08x, computed %08x", sum, got)
	}
	if err := checkRawLen(flags, rawLen, len(f.stored)); err != nil {
		return f, formatErr(ErrMalformed, what, "", start, "%s", err.Detail)
	}
	f.rawLen = int(rawLen)
	return f, nil
}

// checkRawLen refuses a raw length the codec cannot reach from stored
// bytes.
func checkRawLen(flags byte, rawLen uint64, stored int) *FormatError {
	ratio := uint64(maxDeflateRatio)
	if flags == flagZstd {
		ratio = maxZstdRatio
	}
	if flags != 0 && rawLen > uint64(stored)*ratio+64 {
		return formatErr(ErrMalformed, "", "", 0, "raw length %d impossible for %d compressed bytes", rawLen, stored)
	}
	return nil
}

// open returns the uncompressed body.
func (f framed) open() ([]byte, error) {
	return decompress(f.stored, f.flags, f.rawLen, f.what, "")
}

func decompress(stored []byte, flags byte, rawLen int, section, column string) ([]byte, error) {
	switch flags {
	case flagDeflate:
		return inflate(stored, rawLen, section, column)
	case flagZstd:
		return zstdDecompress(stored, rawLen, section, column)
	}
	return stored, nil
}

// readBody is readFramed followed by open.
func readBody(r *reader, start int, what string, allowed byte) ([]byte, error) {
	f, err := readFramed(r, start, what, allowed)
	if err != nil {
		return nil, err
	}
	return f.open()
}

func inflate(stored []byte, rawLen int, section, column string) ([]byte, error) {
	zr := flate.NewReader(bytes.NewReader(stored))
	out := make([]byte, rawLen)
	if _, err := io.ReadFull(zr, out); err != nil {
		return nil, formatErr(ErrMalformed, section, column, 0, "inflating: %v", err)
	}
	// The stream must end exactly at the announced length.
	var one [1]byte
	if n, err := zr.Read(one[:]); n != 0 || err != io.EOF {
		return nil, formatErr(ErrMalformed, section, column, 0, "compressed data longer than announced")
	}
	return out, nil
}

// maxZstdWindow bounds the window a frame may ask a decoder for.
const maxZstdWindow = 1 << 23

var zstdDecoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(maxZstdWindow))
	if err != nil {
		panic(err)
	}
	return d
}}

// zstdDecompress decodes Zstandard data that must hold exactly rawLen
// bytes. It reads at most rawLen+1 bytes, so a forged frame cannot make it
// allocate more than the caller already accepted.
func zstdDecompress(stored []byte, rawLen int, section, column string) ([]byte, error) {
	d := zstdDecoders.Get().(*zstd.Decoder)
	defer zstdDecoders.Put(d)
	if err := d.Reset(bytes.NewReader(stored)); err != nil {
		return nil, formatErr(ErrMalformed, section, column, 0, "Zstandard: %v", err)
	}
	out := make([]byte, rawLen)
	if _, err := io.ReadFull(d, out); err != nil {
		return nil, formatErr(ErrMalformed, section, column, 0, "Zstandard: %v", err)
	}
	var one [1]byte
	if n, err := d.Read(one[:]); n != 0 || err != io.EOF {
		return nil, formatErr(ErrMalformed, section, column, 0, "compressed data longer than announced")
	}
	return out, nil
}

func crcUpdate(sum uint32, b []byte) uint32 { return crc32.Update(sum, castagnoli, b) }
