package encoding

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"io"
)

// Every object starts with the magic number, the format version and a type
// byte, in that order and never anything else, so that any future version
// can still be recognised and refused by this decoder.
var magic = [4]byte{0x83, 'C', 'V', 'G'}

// Version is the format version this package writes. It reads every
// version listed in SupportedVersions.
const Version = 1

// SupportedVersions are the format versions this package can read.
var SupportedVersions = []byte{1}

// Object types (the byte after the version).
const (
	typeChange   = 'c'
	typeDocument = 'd'
)

// flagDeflate marks a body stored compressed with DEFLATE (RFC 1951).
const flagDeflate = 1

// Decoder limits: a raw (uncompressed) length may exceed the stored length
// by at most DEFLATE's worst-case ratio.
const maxDeflateRatio = 1032

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func appendHeader(b []byte, typ byte) []byte {
	b = append(b, magic[:]...)
	return append(b, Version, typ)
}

// readHeader checks magic, version and type, in that order.
func readHeader(r *reader, typ byte) error {
	m, err := r.bytes(4)
	if err != nil {
		if len(r.b) > 0 && !bytes.HasPrefix(magic[:], r.b) {
			return r.fail(ErrBadMagic, "")
		}
		return err
	}
	if !bytes.Equal(m, magic[:]) {
		r.off = 0
		return r.fail(ErrBadMagic, "starts with % x", m)
	}
	v, err := r.byte()
	if err != nil {
		return err
	}
	if bytes.IndexByte(SupportedVersions, v) < 0 {
		return r.fail(ErrUnsupportedVersion, "version %d; this decoder reads %v", v, SupportedVersions)
	}
	t, err := r.byte()
	if err != nil {
		return err
	}
	if t != typ {
		return r.fail(ErrBadMagic, "object type %q, expected %q", t, typ)
	}
	return nil
}

// appendBody writes flags, lengths, the body (compressed if asked and if it
// pays) and a CRC-32C of everything from start.
func appendBody(b []byte, start int, raw []byte, compress bool) []byte {
	stored, flags := raw, byte(0)
	if compress {
		if z := deflate(raw); len(z) < len(raw) {
			stored, flags = z, flagDeflate
		}
	}
	b = append(b, flags)
	b = appendUvarint(b, uint64(len(stored)))
	if flags&flagDeflate != 0 {
		b = appendUvarint(b, uint64(len(raw)))
	}
	b = append(b, stored...)
	return binary.LittleEndian.AppendUint32(b, checksum(b[start:]))
}

// framed is a body whose checksum has been verified but which may still be
// compressed: a document's history stays like this until someone asks.
type framed struct {
	stored   []byte
	deflated bool
	rawLen   int
	what     string
}

// readFramed reads what appendBody wrote and verifies the checksum over
// r.b[start:].
func readFramed(r *reader, start int, what string) (framed, error) {
	f := framed{what: what}
	flags, err := r.byte()
	if err != nil {
		return f, err
	}
	if flags&^flagDeflate != 0 {
		return f, r.fail(ErrMalformed, "unknown flags %#x", flags)
	}
	f.deflated = flags&flagDeflate != 0
	n, err := r.uvarint()
	if err != nil {
		return f, err
	}
	var rawLen uint64
	if f.deflated {
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
	if f.deflated && rawLen > uint64(len(f.stored))*maxDeflateRatio+64 {
		return f, formatErr(ErrMalformed, what, "", start, "raw length %d impossible for %d compressed bytes", rawLen, len(f.stored))
	}
	f.rawLen = int(rawLen)
	return f, nil
}

// open returns the uncompressed body.
func (f framed) open() ([]byte, error) {
	if !f.deflated {
		return f.stored, nil
	}
	return inflate(f.stored, f.rawLen, f.what)
}

// readBody is readFramed followed by open.
func readBody(r *reader, start int, what string) ([]byte, error) {
	f, err := readFramed(r, start, what)
	if err != nil {
		return nil, err
	}
	return f.open()
}

// The level is fixed: the same input must always give the same bytes.
const deflateLevel = flate.DefaultCompression

func deflate(raw []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, deflateLevel)
	w.Write(raw)
	w.Close()
	return buf.Bytes()
}

func inflate(stored []byte, rawLen int, what string) ([]byte, error) {
	zr := flate.NewReader(bytes.NewReader(stored))
	out := make([]byte, rawLen)
	if _, err := io.ReadFull(zr, out); err != nil {
		return nil, formatErr(ErrMalformed, what, "", 0, "inflating: %v", err)
	}
	// The stream must end exactly at the announced length.
	var one [1]byte
	if n, err := zr.Read(one[:]); n != 0 || err != io.EOF {
		return nil, formatErr(ErrMalformed, what, "", 0, "compressed data longer than announced")
	}
	return out, nil
}

func crcUpdate(sum uint32, b []byte) uint32 { return crc32.Update(sum, castagnoli, b) }
