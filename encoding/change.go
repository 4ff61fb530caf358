package encoding

import "github.com/converge-sync/converge/crdt"

// A standalone change is self-describing: header (magic, version, type 'c'),
// then the row form of the change written from an empty rowState (so every
// actor appears in full, once), framed by appendBody with its checksum.

// compressChangeOver is the body size from which a change is stored
// compressed (when that is smaller): below it, DEFLATE rarely pays.
const compressChangeOver = 256

// EncodeChange returns the standalone encoding of c.
func EncodeChange(c *crdt.Change) []byte {
	raw := newRowState().appendChange(nil, c)
	b := appendHeader(make([]byte, 0, len(raw)+16), typeChange)
	codec := codecNone
	if len(raw) >= compressChangeOver {
		codec = codecDeflate
	}
	return appendBody(b, 0, raw, codec)
}

// DecodeChange decodes a standalone change. The input must be exactly one
// change: trailing bytes are an error.
func DecodeChange(b []byte) (*crdt.Change, error) {
	r := newReader(b, "")
	if err := readHeader(r, typeChange); err != nil {
		return nil, err
	}
	body, err := readBody(r, 0, "change", flagDeflate)
	if err != nil {
		return nil, err
	}
	if !r.done() {
		return nil, r.fail(ErrMalformed, "%d bytes after the change", r.rest())
	}
	br := newReader(body, "change")
	c, err := newRowState().readChange(br)
	if err != nil {
		return nil, err
	}
	if !br.done() {
		return nil, br.fail(ErrMalformed, "%d bytes after the last op", br.rest())
	}
	return c, nil
}
