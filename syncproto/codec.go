package syncproto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/converge-sync/converge/causal"
)

// Limits bound what Decode accepts, so that no frame can make a peer
// allocate without bound. Every length is checked against the bytes left
// before anything is allocated.
type Limits struct {
	MaxFrame     int // bytes in one frame
	MaxDocID     int // bytes in a document ID
	MaxString    int // bytes in a name or error message
	MaxVector    int // entries in a version vector
	MaxChanges   int // changes in one Changes message
	MaxPresence  int // bytes of presence state
	MaxChangeLen int // bytes of one encoded change
}

// DefaultLimits are generous for real use and small enough for a server
// facing the internet.
var DefaultLimits = Limits{
	MaxFrame:     16 << 20,
	MaxDocID:     1024,
	MaxString:    4096,
	MaxVector:    100_000,
	MaxChanges:   100_000,
	MaxPresence:  64 << 10,
	MaxChangeLen: 8 << 20,
}

// Errors returned by Decode, wrapped in a *FrameError.
var (
	ErrMalformed   = errors.New("syncproto: malformed frame")
	ErrUnknownType = errors.New("syncproto: unknown message type")
	ErrTooLarge    = errors.New("syncproto: frame exceeds limits")
)

// FrameError says what in a frame was wrong and where.
type FrameError struct {
	Type   Type
	Field  string
	Offset int
	Err    error
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("%v: %s message, field %s, at byte %d", e.Err, e.Type, e.Field, e.Offset)
}

func (e *FrameError) Unwrap() error { return e.Err }

// Code is the protocol error code to answer this error with.
func (e *FrameError) Code() Code {
	if errors.Is(e.Err, ErrTooLarge) {
		return CodeFrameTooLarge
	}
	return CodeMalformed
}

// Append appends the frame of m to b.
func Append(b []byte, m Message) []byte {
	b = append(b, byte(m.Type()))
	switch m := m.(type) {
	case *Hello:
		b = binary.AppendUvarint(b, m.Version)
		b = append(b, m.Peer[:]...)
		b = append(b, byte(m.Role))
		b = appendString(b, m.Name)
		b = binary.AppendUvarint(b, m.MaxFrame)
		b = binary.AppendUvarint(b, m.MaxChanges)
	case *Welcome:
		b = binary.AppendUvarint(b, m.Version)
		b = append(b, m.Peer[:]...)
		b = append(b, byte(m.Role))
		b = binary.AppendUvarint(b, m.MaxFrame)
		b = binary.AppendUvarint(b, m.HeartbeatMs)
		b = binary.AppendUvarint(b, m.MaxChanges)
	case *Error:
		b = binary.AppendUvarint(b, uint64(m.Code))
		b = append(b, boolByte(m.Fatal))
		b = appendString(b, m.Doc)
		b = appendString(b, m.Message)
	case *Batch:
		b = binary.AppendUvarint(b, uint64(len(m.Frames)))
		for _, f := range m.Frames {
			b = binary.AppendUvarint(b, uint64(len(f)))
			b = append(b, f...)
		}
	case *Subscribe:
		b = appendString(b, m.Doc)
		b = appendVector(b, m.Have)
	case *Unsubscribe:
		b = appendString(b, m.Doc)
	case *Have:
		b = appendString(b, m.Doc)
		b = appendVector(b, m.Have)
	case *Changes:
		b = appendChanges(b, m.Doc, m.Changes)
	case *Relay:
		b = appendChanges(b, m.Doc, m.Changes)
	case *Ack:
		b = appendString(b, m.Doc)
		b = appendVector(b, m.Durable)
	case *Presence:
		b = appendString(b, m.Doc)
		b = append(b, m.Peer[:]...)
		b = binary.AppendUvarint(b, m.TTLMs)
		b = appendString(b, string(m.State))
	case *Leave:
		b = appendString(b, m.Doc)
		b = append(b, m.Peer[:]...)
	case *Ping:
		b = binary.AppendUvarint(b, m.Nonce)
	case *Pong:
		b = binary.AppendUvarint(b, m.Nonce)
	}
	return b
}

// Encode returns the frame of m. The frame of a Relay made by NewRelay is
// the one it holds, shared: it must not be modified.
func Encode(m Message) []byte {
	if r, ok := m.(*Relay); ok && r.frame != nil {
		return r.frame
	}
	return Append(nil, m)
}

func appendChanges(b []byte, doc string, changes [][]byte) []byte {
	b = appendString(b, doc)
	b = binary.AppendUvarint(b, uint64(len(changes)))
	for _, c := range changes {
		b = binary.AppendUvarint(b, uint64(len(c)))
		b = append(b, c...)
	}
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendVector writes a version vector sorted by actor, so that equal
// vectors give equal bytes.
func appendVector(b []byte, v causal.VersionVector) []byte {
	actors := v.Actors()
	b = binary.AppendUvarint(b, uint64(len(actors)))
	for _, a := range actors {
		b = append(b, a[:]...)
		b = binary.AppendUvarint(b, v[a])
	}
	return b
}

// reader decodes one frame, remembering the first error.
type reader struct {
	b     []byte
	off   int
	typ   Type
	lim   Limits
	err   error
	field string
}

func (r *reader) fail(field string, err error) {
	if r.err == nil {
		r.err, r.field = err, field
	}
}

func (r *reader) uvarint(field string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	// An overlong varint (a final zero byte) would give one message two
	// encodings; only the shortest form is accepted.
	if n <= 0 || (n > 1 && r.b[r.off+n-1] == 0) {
		r.fail(field, ErrMalformed)
		return 0
	}
	r.off += n
	return v
}

func (r *reader) byte(field string) byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail(field, ErrMalformed)
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *reader) actor(field string) (a causal.ActorID) {
	if r.err != nil {
		return a
	}
	if len(r.b)-r.off < len(a) {
		r.fail(field, ErrMalformed)
		return a
	}
	copy(a[:], r.b[r.off:])
	r.off += len(a)
	return a
}

// bytes reads a length-prefixed byte string of at most max bytes.
func (r *reader) bytes(field string, max int) []byte {
	n := r.uvarint(field)
	if r.err != nil {
		return nil
	}
	// A length the frame cannot back is malformed (truncated or garbage),
	// whatever its size; only bytes that are there can be too many.
	if n > uint64(len(r.b)-r.off) {
		r.fail(field, ErrMalformed)
		return nil
	}
	if n > uint64(max) {
		r.fail(field, ErrTooLarge)
		return nil
	}
	out := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return out
}

func (r *reader) string(field string, max int) string {
	b := r.bytes(field, max)
	if r.err == nil && !utf8.Valid(b) {
		r.fail(field, ErrMalformed)
	}
	return string(b)
}

func (r *reader) doc() string {
	s := r.string("doc", r.lim.MaxDocID)
	if r.err == nil && s == "" {
		r.fail("doc", ErrMalformed)
	}
	return s
}

func (r *reader) vector(field string) causal.VersionVector {
	n := r.uvarint(field)
	if r.err != nil {
		return nil
	}
	// Each entry takes at least 17 bytes: bound n by what is left first.
	if n > uint64(len(r.b)-r.off)/17 {
		r.fail(field, ErrMalformed)
		return nil
	}
	if n > uint64(r.lim.MaxVector) {
		r.fail(field, ErrTooLarge)
		return nil
	}
	v := make(causal.VersionVector, n)
	var prev causal.ActorID
	for i := uint64(0); i < n && r.err == nil; i++ {
		a := r.actor(field)
		seq := r.uvarint(field)
		if r.err == nil && (seq == 0 || a.IsZero() || (i > 0 && prev.Compare(a) >= 0)) {
			// Canonical form only: sorted, no repeats, no zero entries.
			r.fail(field, ErrMalformed)
		}
		v[a], prev = seq, a
	}
	return v
}

// changes reads the count and the changes of a Changes or Relay message.
func (r *reader) changes() [][]byte {
	n := r.uvarint("count")
	if r.err == nil && n > uint64(len(r.b)-r.off) { // each change takes at least one byte
		r.fail("count", ErrMalformed)
	}
	if r.err == nil && n > uint64(r.lim.MaxChanges) {
		r.fail("count", ErrTooLarge)
	}
	if r.err != nil {
		return nil
	}
	out := make([][]byte, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		b := r.bytes("change", r.lim.MaxChangeLen)
		if r.err == nil && len(b) == 0 {
			r.fail("change", ErrMalformed)
		}
		out = append(out, b)
	}
	return out
}

// frames reads the frames of a Batch: a count, then each frame with its
// length. Only their framing is checked here (the receiver decodes each as
// it comes); a frame that is empty, a handshake or itself a batch is
// malformed, so a batch never nests.
func (r *reader) frames() [][]byte {
	n := r.uvarint("count")
	if r.err == nil && (n == 0 || n > uint64(len(r.b)-r.off)/2) { // each frame takes two bytes at least
		r.fail("count", ErrMalformed)
	}
	if r.err != nil {
		return nil
	}
	out := make([][]byte, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		f := r.bytes("frame", r.lim.MaxFrame)
		if r.err != nil {
			break
		}
		if len(f) == 0 {
			r.fail("frame", ErrMalformed)
			break
		}
		switch Type(f[0]) {
		case TypeBatch, TypeHello, TypeWelcome:
			r.fail("frame", ErrMalformed)
		}
		out = append(out, f)
	}
	return out
}

// Decode decodes one frame. Any bytes give either a message or a
// *FrameError; nothing panics and nothing is allocated beyond the limits.
// The returned message may share memory with frame.
func Decode(frame []byte, lim Limits) (Message, error) {
	if len(frame) > lim.MaxFrame {
		return nil, &FrameError{Field: "frame", Err: ErrTooLarge}
	}
	if len(frame) == 0 {
		return nil, &FrameError{Field: "type", Err: ErrMalformed}
	}
	r := &reader{b: frame, off: 1, typ: Type(frame[0]), lim: lim}
	var m Message
	switch r.typ {
	case TypeHello:
		m = &Hello{Version: r.uvarint("version"), Peer: r.actor("peer"), Role: Role(r.byte("role")), Name: r.string("name", lim.MaxString),
			MaxFrame: r.uvarint("maxFrame"), MaxChanges: r.uvarint("maxChanges")}
	case TypeWelcome:
		m = &Welcome{Version: r.uvarint("version"), Peer: r.actor("peer"), Role: Role(r.byte("role")),
			MaxFrame: r.uvarint("maxFrame"), HeartbeatMs: r.uvarint("heartbeatMs"), MaxChanges: r.uvarint("maxChanges")}
	case TypeError:
		code := r.uvarint("code")
		if code > 0xffff {
			r.fail("code", ErrMalformed)
		}
		fatal := r.byte("fatal")
		if fatal > 1 {
			r.fail("fatal", ErrMalformed)
		}
		m = &Error{Code: Code(code), Fatal: fatal == 1, Doc: r.string("doc", lim.MaxDocID), Message: r.string("message", lim.MaxString)}
	case TypeBatch:
		m = &Batch{Frames: r.frames()}
	case TypeSubscribe:
		m = &Subscribe{Doc: r.doc(), Have: r.vector("have")}
	case TypeUnsubscribe:
		m = &Unsubscribe{Doc: r.doc()}
	case TypeHave:
		m = &Have{Doc: r.doc(), Have: r.vector("have")}
	case TypeChanges:
		doc := r.doc()
		m = &Changes{Doc: doc, Changes: r.changes()}
	case TypeRelay:
		doc := r.doc()
		m = &Relay{Doc: doc, Changes: r.changes()}
	case TypeAck:
		m = &Ack{Doc: r.doc(), Durable: r.vector("durable")}
	case TypePresence:
		m = &Presence{Doc: r.doc(), Peer: r.actor("peer"), TTLMs: r.uvarint("ttlMs"), State: slices.Clone(r.bytes("state", lim.MaxPresence))}
	case TypeLeave:
		m = &Leave{Doc: r.doc(), Peer: r.actor("peer")}
	case TypePing:
		m = &Ping{Nonce: r.uvarint("nonce")}
	case TypePong:
		m = &Pong{Nonce: r.uvarint("nonce")}
	default:
		return nil, &FrameError{Type: r.typ, Field: "type", Err: ErrUnknownType}
	}
	if r.err == nil && r.off != len(frame) {
		r.fail("end", ErrMalformed) // trailing bytes: not a frame this version wrote
	}
	if r.err != nil {
		return nil, &FrameError{Type: r.typ, Field: r.field, Offset: r.off, Err: r.err}
	}
	return m, nil
}
