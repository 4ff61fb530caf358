package encoding

import (
	"encoding/binary"
	"errors"

	"github.com/converge-sync/converge/crdt"
)

// The stream form is for one document on one sync connection. A
// ChangeWriter on one side and a ChangeReader on the other keep the same
// rowState: an actor is sent in full once and then by its index, and seq,
// start op and time are sent as differences from what came before, so a
// keystroke costs a few bytes. Each frame ends with a CRC-32C over the frame
// number and the frame's bytes: a damaged, lost, repeated or reordered frame
// is detected instead of silently decoding against the wrong state.
//
// Frames carry no magic or version; the sync protocol agrees on the stream
// version when the connection opens (StreamVersion) and delimits frames.

// StreamVersion is the version of the stream form.
const StreamVersion = 1

// ErrStreamBroken is returned by a ChangeReader that failed once: its state
// may differ from the writer's, so the stream must be restarted with a new
// writer and reader pair.
var ErrStreamBroken = errors.New("encoding: change stream broken by an earlier error")

// ChangeWriter encodes changes for one stream. It is not safe for
// concurrent use.
type ChangeWriter struct {
	st     *rowState
	frames uint64
}

// NewChangeWriter starts a stream.
func NewChangeWriter() *ChangeWriter { return &ChangeWriter{st: newRowState()} }

// Encode returns the frame for c. Every frame must reach the reader, in
// order.
func (w *ChangeWriter) Encode(c *crdt.Change) []byte {
	b := w.st.appendChange(nil, c)
	b = binary.LittleEndian.AppendUint32(b, frameSum(w.frames, b))
	w.frames++
	return b
}

// ChangeReader decodes the frames of one ChangeWriter.
type ChangeReader struct {
	st     *rowState
	frames uint64
	broken error
}

// NewChangeReader starts reading a stream.
func NewChangeReader() *ChangeReader { return &ChangeReader{st: newRowState()} }

// Decode decodes the next frame. After any error the reader is broken and
// returns ErrStreamBroken (wrapping the first error) from then on.
func (rd *ChangeReader) Decode(frame []byte) (*crdt.Change, error) {
	if rd.broken != nil {
		return nil, rd.broken
	}
	c, err := rd.decode(frame)
	if err != nil {
		rd.broken = errors.Join(ErrStreamBroken, err)
		return nil, err
	}
	return c, nil
}

func (rd *ChangeReader) decode(frame []byte) (*crdt.Change, error) {
	section := "stream frame"
	if len(frame) < 4 {
		return nil, formatErr(ErrTruncated, section, "", len(frame), "frame shorter than its checksum")
	}
	body := frame[:len(frame)-4]
	if got, want := frameSum(rd.frames, body), binary.LittleEndian.Uint32(frame[len(body):]); got != want {
		return nil, formatErr(ErrChecksum, section, "", len(body), "frame %d: stored %08x, computed %08x (damaged, lost or reordered frame)", rd.frames, want, got)
	}
	r := newReader(body, section)
	c, err := rd.st.readChange(r)
	if err != nil {
		return nil, err
	}
	if !r.done() {
		return nil, r.fail(ErrMalformed, "%d bytes after the last op", r.rest())
	}
	rd.frames++
	return c, nil
}

func frameSum(n uint64, body []byte) uint32 {
	var pre [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(pre[:], n)
	sum := checksum(pre[:k])
	return crcUpdate(sum, body)
}
