package syncproto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/encoding"
)

// Config describes this side of a session.
type Config struct {
	Actor causal.ActorID
	Role  Role
	Name  string
	// Dial is true on the side that opened the connection: it speaks first
	// (Hello). The other side answers Welcome.
	Dial bool
	// Limits bound what this side accepts (DefaultLimits if zero). The
	// side that accepts a connection announces Limits.MaxFrame in Welcome,
	// and both sides keep their frames within the smaller of the two.
	Limits Limits
	// Heartbeat is how often a side that has sent nothing sends a Ping; a
	// side that hears nothing for three heartbeats ends the session. The
	// accepting side's value is the one used (announced in Welcome).
	// Default 15s.
	Heartbeat time.Duration
	// MaxDocs bounds the documents one connection may have streams for
	// (default 10,000). A Subscribe past it is refused with too_many_docs.
	MaxDocs int
	// Version is the newest protocol version this side speaks, from
	// MinVersion to Version (Version if zero): a program that must reach
	// servers older than itself may offer less.
	Version uint64
}

// DefaultHeartbeat is the heartbeat when Config.Heartbeat is zero.
const DefaultHeartbeat = 15 * time.Second

// Session is one side of a sync conversation over one connection, as a pure
// state machine in the manner of etcd's raft: the caller feeds it frames
// (Receive), the time (Tick) and what the application wants (Subscribe,
// Answer, Push, Ack, presence), and collects what to send and what happened
// from Ready. It does no I/O, starts no goroutines and reads no clock, so
// the same code runs in a server, a replica, a browser and a deterministic
// simulation. It is not safe for concurrent use.
//
// The session encodes and decodes changes in the per-document stream form
// (encoding.ChangeWriter). A stream lives as long as the connection, across
// unsubscribe and subscribe, so the two sides can never disagree on its
// state; a stream that fails to decode ends the connection.
type Session struct {
	cfg     Config
	lim     Limits // what this side accepts
	peerMax int    // the largest frame the peer accepts (from Hello or Welcome); MaxFrame until known
	// the most changes in one Changes message the peer accepts (from Hello
	// or Welcome); MaxChanges until known
	peerMaxChanges int

	state     sessionState
	peer      Hello // the peer's identity, once known
	heartbeat time.Duration
	lastHeard time.Time
	lastSent  time.Time
	nonce     uint64

	docs   map[string]*docState
	outbox []Message
	events []Event
	closed error
}

type sessionState int

const (
	stateHandshake sessionState = iota // Hello sent or awaited
	stateOpen                          // Hello and Welcome exchanged
	stateClosed                        // a fatal error was sent or received
)

// docState is what one connection knows about one document.
type docState struct {
	w *encoding.ChangeWriter
	r *encoding.ChangeReader

	subscribed bool // this side sent Subscribe and has not unsubscribed
	live       bool // new changes flow to the peer (the exchange is done)
	peerHas    causal.VersionVector
	peerAcked  causal.VersionVector
	changesMsg *Changes // the Changes message still open in the outbox, to append to
	changesLen int      // its encoded size so far
	relayMsg   *Relay   // the Relay message last in the outbox, to add to
	relayLen   int      // its encoded size (at most)
	ackMsg     *Ack     // the Ack still in the outbox, to update in place
}

// NewSession starts a session at time now. A dialing session has its Hello
// ready at once.
func NewSession(cfg Config, now time.Time) *Session {
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.MaxDocs <= 0 {
		cfg.MaxDocs = 10_000
	}
	if cfg.Version == 0 || cfg.Version > Version {
		cfg.Version = Version
	}
	cfg.Version = max(cfg.Version, MinVersion)
	s := &Session{cfg: cfg, lim: cfg.Limits, peerMax: cfg.Limits.MaxFrame, peerMaxChanges: cfg.Limits.MaxChanges, heartbeat: cfg.Heartbeat,
		lastHeard: now, lastSent: now, docs: make(map[string]*docState)}
	if cfg.Dial {
		s.send(&Hello{Version: cfg.Version, Peer: cfg.Actor, Role: cfg.Role, Name: cfg.Name,
			MaxFrame: uint64(cfg.Limits.MaxFrame), MaxChanges: uint64(cfg.Limits.MaxChanges)})
	}
	return s
}

// Event is something the application must act on, returned by Ready.
type Event interface{ isEvent() }

// Connected: the handshake is done.
type Connected struct {
	Peer causal.ActorID
	Role Role
	Name string
}

// SubscribeRequest: the peer subscribed to Doc holding Have. Answer with
// Answer (or Refuse).
type SubscribeRequest struct {
	Doc  string
	Have causal.VersionVector
}

// HaveReceived: the peer answered this side's Subscribe; it holds Have.
// Push the changes it lacks. From now on the document is live.
type HaveReceived struct {
	Doc  string
	Have causal.VersionVector
	Role Role // the peer's role: a server's Have is durable (an acknowledgement)
}

// ChangesReceived: changes of Doc from the peer, decoded, in the order
// sent. Apply them; once they are durable, call Ack.
type ChangesReceived struct {
	Doc     string
	Changes []*crdt.Change
}

// AckReceived: the peer holds Durable durably.
type AckReceived struct {
	Doc     string
	Durable causal.VersionVector
}

// PresenceReceived: a peer's presence in a document (relayed or its own).
type PresenceReceived struct{ Presence }

// LeaveReceived: a peer's presence in a document is gone.
type LeaveReceived struct{ Leave }

// Unsubscribed: the peer ended the live stream of Doc.
type Unsubscribed struct{ Doc string }

// ErrorReceived: the peer refused something (not fatal). When the error
// names a document, that document is no longer live on this connection.
type ErrorReceived struct{ Error }

// ChangeTooLarge: a change of Doc is not sent because its encoding alone
// (Size bytes) is over the largest frame the peer accepts (Limit). What
// follows it in the document cannot be sent without it, so the document
// stops syncing on this connection, both ways: the peer is told, with a
// non-fatal frame_too_large Error naming the document. The other
// documents go on.
type ChangeTooLarge struct {
	Doc         string
	Change      causal.ChangeID
	Size, Limit int
}

// Closed: the session is over; send the remaining frames and close the
// connection. Err says why (a *PeerError when the peer ended it, a
// *LocalError when this side did; nil for a clean close).
type Closed struct{ Err error }

func (Connected) isEvent()        {}
func (SubscribeRequest) isEvent() {}
func (HaveReceived) isEvent()     {}
func (ChangesReceived) isEvent()  {}
func (AckReceived) isEvent()      {}
func (PresenceReceived) isEvent() {}
func (LeaveReceived) isEvent()    {}
func (Unsubscribed) isEvent()     {}
func (ErrorReceived) isEvent()    {}
func (ChangeTooLarge) isEvent()   {}
func (Closed) isEvent()           {}

// PeerError is a fatal Error the peer sent.
type PeerError struct {
	Code    Code
	Message string
}

func (e *PeerError) Error() string {
	return fmt.Sprintf("syncproto: peer ended the session: %s: %s", e.Code, e.Message)
}

// LocalError is why this side ended the session; the peer was sent Code.
type LocalError struct {
	Code Code
	Err  error
}

func (e *LocalError) Error() string { return fmt.Sprintf("syncproto: %s: %v", e.Code, e.Err) }
func (e *LocalError) Unwrap() error { return e.Err }

// ErrSessionClosed is returned by methods called after the session ended.
var ErrSessionClosed = errors.New("syncproto: session closed")

// Peer returns the peer's Hello (or Welcome) once the handshake is done.
func (s *Session) Peer() (Hello, bool) { return s.peer, s.state == stateOpen }

// PeerRole returns the peer's role (0 before the handshake).
func (s *Session) PeerRole() Role { return s.peer.Role }

// Err returns why the session ended, or nil while it is open.
func (s *Session) Err() error { return s.closed }

// Ready returns the frames to send, in order, and the events that happened
// since the last call; both belong to the caller.
//
// With a peer that speaks version 3 or later, frames that are ready
// together go as Batch frames, each within the peer's frame limit: a busy
// connection then writes once for many messages, and an idle one, with a
// single frame ready, sends it as it is, with no delay and no extra byte.
func (s *Session) Ready() (frames [][]byte, events []Event) {
	for _, m := range s.outbox {
		frames = append(frames, Encode(m))
	}
	if len(frames) > 1 && s.peer.Version >= 3 {
		frames = s.batch(frames)
	}
	for _, d := range s.docs {
		d.changesMsg, d.ackMsg, d.relayMsg = nil, nil, nil
	}
	s.outbox = s.outbox[:0]
	events, s.events = s.events, nil
	return frames, events
}

// batch packs frames, in order, into Batch frames within the peer's frame
// limit. A frame that fits in no batch with another (or is a Welcome, which
// the peer must read before it knows it may get batches) goes as it is; so
// does a batch of one.
func (s *Session) batch(frames [][]byte) [][]byte {
	out := make([][]byte, 0, 1)
	group, size := 0, 0 // frames in the batch being made, and their bytes with their lengths
	// Bytes of the batch's type and count, bounded by the most it may count.
	header := 1 + uvarintLen(len(frames))
	flush := func(end int) {
		switch group {
		case 0:
		case 1:
			out = append(out, frames[end-1])
		default:
			b := make([]byte, 0, header+size)
			b = append(b, byte(TypeBatch))
			b = binary.AppendUvarint(b, uint64(group))
			for _, f := range frames[end-group : end] {
				b = binary.AppendUvarint(b, uint64(len(f)))
				b = append(b, f...)
			}
			out = append(out, b)
		}
		group, size = 0, 0
	}
	for i, f := range frames {
		n := uvarintLen(len(f)) + len(f)
		if Type(f[0]) == TypeWelcome || Type(f[0]) == TypeHello || header+n > s.peerMax {
			flush(i)
			out = append(out, f)
			continue
		}
		if header+size+n > s.peerMax {
			flush(i)
		}
		group++
		size += n
	}
	flush(len(frames))
	return out
}

// Receive handles one frame from the peer at time now.
func (s *Session) Receive(frame []byte, now time.Time) {
	if s.state == stateClosed {
		return
	}
	s.lastHeard = now
	m, ok := s.decode(frame)
	if !ok {
		return
	}
	b, ok := m.(*Batch)
	if !ok {
		s.handle(m)
		return
	}
	if s.state != stateOpen || s.peer.Version < 3 {
		s.fail(CodeProtocol, fmt.Errorf("batch in a version %d session, or before the handshake", s.peer.Version))
		return
	}
	// Each frame as if it had come alone, until one ends the session.
	for _, f := range b.Frames {
		if m, ok := s.decode(f); ok {
			s.handle(m)
		}
		if s.state == stateClosed {
			return
		}
	}
}

// decode decodes one frame from the peer; a frame that does not decode
// ends the session.
func (s *Session) decode(frame []byte) (Message, bool) {
	m, err := Decode(frame, s.lim)
	if err != nil {
		var fe *FrameError
		code := CodeMalformed
		if errors.As(err, &fe) {
			code = fe.Code()
		}
		s.fail(code, err)
		return nil, false
	}
	return m, true
}

// handle acts on one message from the peer (not a Batch: Receive opens
// those, and Decode allows none inside one).
func (s *Session) handle(m Message) {
	if s.state == stateHandshake {
		s.handshake(m)
		return
	}
	switch m := m.(type) {
	case *Hello, *Welcome, *Batch:
		s.fail(CodeProtocol, fmt.Errorf("%s after the handshake", m.Type()))
	case *Error:
		s.peerError(m)
	case *Subscribe:
		s.onSubscribe(m)
	case *Unsubscribe:
		if d := s.docs[m.Doc]; d != nil && (d.live || d.subscribed) {
			d.live, d.subscribed = false, false
			s.events = append(s.events, Unsubscribed{Doc: m.Doc})
		}
	case *Have:
		s.onHave(m)
	case *Changes:
		s.onChanges(m)
	case *Relay:
		if s.peer.Version < 2 {
			s.fail(CodeProtocol, fmt.Errorf("relay in a version %d session", s.peer.Version))
			return
		}
		s.onRelay(m)
	case *Ack:
		d := s.docs[m.Doc]
		if d == nil {
			s.fail(CodeNotSubscribed, fmt.Errorf("ack for %q, which has no stream", m.Doc))
			return
		}
		d.peerAcked = merged(d.peerAcked, m.Durable)
		s.events = append(s.events, AckReceived{Doc: m.Doc, Durable: m.Durable})
	case *Presence:
		if d := s.docs[m.Doc]; d == nil || !(d.live || d.subscribed) {
			s.docError(CodeNotSubscribed, m.Doc, "presence for a document not subscribed")
			return
		}
		s.events = append(s.events, PresenceReceived{*m})
	case *Leave:
		if d := s.docs[m.Doc]; d != nil {
			s.events = append(s.events, LeaveReceived{*m})
		}
	case *Ping:
		s.send(&Pong{Nonce: m.Nonce})
	case *Pong:
		// lastHeard is updated for every frame; nothing more to do.
	}
}

func (s *Session) handshake(m Message) {
	switch m := m.(type) {
	case *Hello:
		if s.cfg.Dial {
			s.fail(CodeProtocol, errors.New("hello from the side that was dialled"))
			return
		}
		if m.Version < MinVersion {
			s.fail(CodeProtocolVersion, fmt.Errorf("peer speaks version %d; this side speaks versions %d to %d", m.Version, MinVersion, s.cfg.Version))
			return
		}
		// The session speaks the newest version both sides speak: the
		// Hello's, or this side's newest if the peer is newer (a peer
		// speaks every version from MinVersion to the one it offers).
		s.peer = *m
		s.peer.Version = min(m.Version, s.cfg.Version)
		s.peerLimits(m.MaxFrame, m.MaxChanges)
		s.send(&Welcome{Version: s.peer.Version, Peer: s.cfg.Actor, Role: s.cfg.Role,
			MaxFrame: uint64(s.lim.MaxFrame), HeartbeatMs: uint64(s.heartbeat / time.Millisecond),
			MaxChanges: uint64(s.lim.MaxChanges)})
	case *Welcome:
		if !s.cfg.Dial {
			s.fail(CodeProtocol, errors.New("welcome before hello"))
			return
		}
		if m.Version < MinVersion || m.Version > s.cfg.Version {
			s.fail(CodeProtocolVersion, fmt.Errorf("peer answered in version %d; this side speaks versions %d to %d", m.Version, MinVersion, s.cfg.Version))
			return
		}
		s.peer = Hello{Version: m.Version, Peer: m.Peer, Role: m.Role}
		s.peerLimits(m.MaxFrame, m.MaxChanges)
		if m.HeartbeatMs > 0 {
			s.heartbeat = time.Duration(m.HeartbeatMs) * time.Millisecond
		}
	case *Error:
		s.peerError(m)
		return
	default:
		s.fail(CodeProtocol, fmt.Errorf("%s before the handshake", m.Type()))
		return
	}
	s.state = stateOpen
	s.events = append(s.events, Connected{Peer: s.peer.Peer, Role: s.peer.Role, Name: s.peer.Name})
}

func (s *Session) peerError(m *Error) {
	if m.Fatal {
		s.closeWith(&PeerError{Code: m.Code, Message: m.Message})
		return
	}
	if d := s.docs[m.Doc]; d != nil {
		// The peer refused the document: what was sent to it since the
		// last exchange may not have been kept (its store may have failed
		// to take it), so nothing is taken as its any more. A later
		// Subscribe learns again what it has.
		d.live, d.subscribed, d.peerHas = false, false, nil
	}
	s.events = append(s.events, ErrorReceived{*m})
}

// stream returns the document's stream state, making it if the connection
// may have one more; nil (with too_many_docs sent) if not.
func (s *Session) stream(doc string) *docState {
	if d := s.docs[doc]; d != nil {
		return d
	}
	if len(s.docs) >= s.cfg.MaxDocs {
		return nil
	}
	d := &docState{w: encoding.NewChangeWriter(), r: encoding.NewChangeReader()}
	s.docs[doc] = d
	return d
}

func (s *Session) onSubscribe(m *Subscribe) {
	d := s.stream(m.Doc)
	if d == nil {
		s.docError(CodeTooManyDocs, m.Doc, fmt.Sprintf("at most %d documents per connection", s.cfg.MaxDocs))
		return
	}
	d.peerHas = merged(d.peerHas, m.Have)
	s.events = append(s.events, SubscribeRequest{Doc: m.Doc, Have: m.Have})
}

func (s *Session) onHave(m *Have) {
	d := s.docs[m.Doc]
	if d == nil || !d.subscribed {
		return // an answer to a subscription since ended: nothing to do
	}
	d.peerHas = merged(d.peerHas, m.Have)
	d.live = true
	s.events = append(s.events, HaveReceived{Doc: m.Doc, Have: m.Have, Role: s.peer.Role})
}

func (s *Session) onChanges(m *Changes) {
	s.received("changes", m.Doc, m.Changes, func(d *docState, b []byte) (*crdt.Change, error) { return d.r.Decode(b) })
}

// onRelay decodes the standalone changes of a Relay. Like a Changes
// message, it needs the document's stream (a Subscribe on either side), and
// a change that does not decode ends the connection.
func (s *Session) onRelay(m *Relay) {
	s.received("relayed changes", m.Doc, m.Changes, func(_ *docState, b []byte) (*crdt.Change, error) { return encoding.DecodeChange(b) })
}

// received decodes the changes of a Changes or Relay message (what) of
// doc, each with decode, and hands them to the application.
func (s *Session) received(what, doc string, changes [][]byte, decode func(*docState, []byte) (*crdt.Change, error)) {
	d := s.docs[doc]
	if d == nil {
		s.fail(CodeNotSubscribed, fmt.Errorf("%s for %q, which has no stream", what, doc))
		return
	}
	out := make([]*crdt.Change, 0, len(changes))
	for i, b := range changes {
		c, err := decode(d, b)
		if err != nil {
			s.fail(CodeMalformed, fmt.Errorf("document %q, %s: change %d of %d: %w", doc, what, i+1, len(changes), err))
			return
		}
		out = append(out, c)
	}
	if d.peerHas == nil {
		d.peerHas = causal.VersionVector{}
	}
	for _, c := range out {
		d.peerHas.Observe(c.ID())
	}
	s.events = append(s.events, ChangesReceived{Doc: doc, Changes: out})
}

// Tick tells the session the time: it sends a Ping when the connection
// has been quiet for a heartbeat, and ends the session when the peer has
// been silent for three.
func (s *Session) Tick(now time.Time) {
	if s.state == stateClosed {
		return
	}
	if now.Sub(s.lastHeard) >= 3*s.heartbeat {
		s.fail(CodeUnavailable, fmt.Errorf("nothing heard from the peer for %v", now.Sub(s.lastHeard).Round(time.Millisecond)))
		return
	}
	if s.state == stateOpen && now.Sub(s.lastSent) >= s.heartbeat {
		s.nonce++
		s.send(&Ping{Nonce: s.nonce})
		s.lastSent = now
	}
}

// Sent tells the session that frames went out at now (for the heartbeat).
func (s *Session) Sent(now time.Time) { s.lastSent = now }

// Heartbeat returns the heartbeat interval in force.
func (s *Session) Heartbeat() time.Duration { return s.heartbeat }

// Subscribe asks the peer for doc: the changes it holds beyond have, then
// every new one. The peer answers with Have (event HaveReceived).
func (s *Session) Subscribe(doc string, have causal.VersionVector) error {
	if s.state == stateClosed {
		return ErrSessionClosed
	}
	d := s.stream(doc)
	if d == nil {
		return fmt.Errorf("syncproto: at most %d documents per connection", s.cfg.MaxDocs)
	}
	d.subscribed = true
	s.send(&Subscribe{Doc: doc, Have: have.Clone()})
	return nil
}

// Unsubscribe ends doc's live stream in both directions.
func (s *Session) Unsubscribe(doc string) {
	d := s.docs[doc]
	if s.state == stateClosed || d == nil || !(d.live || d.subscribed) {
		return
	}
	d.live, d.subscribed = false, false
	s.send(&Unsubscribe{Doc: doc})
}

// Answer answers a SubscribeRequest: the changes the peer lacks (in an
// order that applies: dependencies first), then this side's version. From
// then on doc is live. It returns how many changes it sent.
func (s *Session) Answer(doc string, changes []*crdt.Change, version causal.VersionVector) int {
	d := s.docs[doc]
	if s.state == stateClosed || d == nil {
		return 0
	}
	d.live = true
	sent := s.push(d, doc, changes)
	d.changesMsg = nil
	s.send(&Have{Doc: doc, Have: version.Clone()})
	return sent
}

// Refuse refuses a SubscribeRequest, or ends doc's stream because of
// something the peer sent (such as invalid_change), with code and a
// message for people. The document stops being live.
func (s *Session) Refuse(doc string, code Code, msg string) {
	if d := s.docs[doc]; d != nil {
		d.live, d.subscribed = false, false
	}
	s.docError(code, doc, msg)
}

// Push sends the changes of doc that the peer does not have yet, if doc is
// live on this connection (otherwise they go with the next exchange).
// Changes must come in an order that applies: dependencies first. It
// returns how many changes it sent.
func (s *Session) Push(doc string, changes []*crdt.Change) int {
	d := s.docs[doc]
	if s.state == stateClosed || d == nil || !d.live {
		return 0
	}
	return s.push(d, doc, changes)
}

// CanRelay reports whether the peer accepts Relay messages (the session
// speaks version 2 or later), so that the caller need not make one for a
// peer that would be sent Changes anyway.
func (s *Session) CanRelay() bool { return s.state == stateOpen && s.peer.Version >= 2 }

// Relay sends the changes of r.Doc the peer lacks, if doc is live on this
// connection: as r's shared frame when it lacks them all, else in a Relay
// of its own made of r's encodings of the ones it lacks; changes are
// r.Changes decoded, in the same order (an order that applies). A peer
// that speaks version 1, or accepts no frame as large, gets them as Push
// sends them. A Relay following another of the same document in the
// outbox joins it, so that a peer that fell behind gets one frame rather
// than many. It returns how many changes it sent.
func (s *Session) Relay(r *Relay, changes []*crdt.Change) int {
	d := s.docs[r.Doc]
	if s.state == stateClosed || d == nil || !d.live {
		return 0
	}
	if s.peer.Version < 2 || r.frame == nil || len(r.frame) > s.peerMax || len(changes) != len(r.Changes) || len(changes) > s.peerMaxChanges ||
		r.longest > s.lim.MaxChangeLen {
		return s.push(d, r.Doc, changes)
	}
	if d.peerHas == nil {
		d.peerHas = causal.VersionVector{}
	}
	missing := 0
	for _, c := range changes {
		if !d.peerHas.Includes(c.ID()) {
			missing++
		}
	}
	if missing == 0 {
		return 0
	}
	send := r
	if missing < len(changes) {
		// The peer sent some of them (a batch of changes from several
		// clients): it gets the others, still as encoded once, in a
		// message of its own.
		send = &Relay{Doc: r.Doc, Changes: make([][]byte, 0, missing)}
		for i, c := range changes {
			if !d.peerHas.Includes(c.ID()) {
				send.Changes = append(send.Changes, r.Changes[i])
			}
		}
	}
	for _, c := range changes {
		d.peerHas.Observe(c.ID())
	}
	if last := d.relayMsg; last != nil && s.outbox[len(s.outbox)-1] == Message(last) &&
		d.relayLen+len(r.frame) <= s.peerMax && len(last.Changes)+missing <= s.peerMaxChanges {
		if last.frame != nil {
			// A shared one stays as it is: the joined message is this
			// connection's, encoded by Ready.
			last = &Relay{Doc: r.Doc, Changes: append(make([][]byte, 0, 2*len(last.Changes)+missing), last.Changes...)}
			s.outbox[len(s.outbox)-1], d.relayMsg = last, last
		}
		last.Changes = append(last.Changes, send.Changes...)
		d.relayLen += len(r.frame) // a bound: r's header counted again, and all of r
		return missing
	}
	s.send(send)
	d.relayMsg, d.relayLen = send, len(r.frame)
	return missing
}

// peerLimits lowers what this side sends to what the peer announced it
// accepts (never raises it above this side's own limits: a peer cannot
// make this side build bigger messages than it would accept itself).
func (s *Session) peerLimits(maxFrame, maxChanges uint64) {
	if maxFrame > 0 && maxFrame < uint64(s.peerMax) {
		s.peerMax = int(maxFrame)
	}
	if maxChanges > 0 && maxChanges < uint64(s.peerMaxChanges) {
		s.peerMaxChanges = int(maxChanges)
	}
}

func (s *Session) push(d *docState, doc string, changes []*crdt.Change) (sent int) {
	if d.peerHas == nil {
		d.peerHas = causal.VersionVector{}
	}
	// Keep each message within the peer's frame limit: the header (type, doc
	// ID, count) plus a length prefix per change.
	budget := s.peerMax - 1 - len(doc) - 2*binaryVarintLen
	limit := s.changeLimit(doc)
	for _, c := range changes {
		if d.peerHas.Includes(c.ID()) {
			continue
		}
		b := d.w.Encode(c)
		if len(b) > limit {
			s.tooLarge(d, doc, c.ID(), len(b), limit)
			return sent
		}
		d.peerHas.Observe(c.ID())
		size := len(b) + binaryVarintLen
		if d.changesMsg == nil || d.changesLen+size > budget || len(d.changesMsg.Changes) >= s.peerMaxChanges ||
			s.outbox[len(s.outbox)-1] != Message(d.changesMsg) {
			d.changesMsg, d.changesLen = &Changes{Doc: doc}, 0
			s.send(d.changesMsg)
		}
		d.changesMsg.Changes = append(d.changesMsg.Changes, b)
		d.changesLen += size
		sent++
	}
	return sent
}

// tooLarge stops doc on this connection: change id, n bytes encoded, fits
// in no frame the peer accepts (see ChangeTooLarge). Sending it anyway
// would end the session, again at every reconnection, for every document.
// The document's stream writer has moved past the change, so nothing more
// of the document may be sent on this connection.
func (s *Session) tooLarge(d *docState, doc string, id causal.ChangeID, n, limit int) {
	d.live, d.subscribed = false, false
	s.docError(CodeFrameTooLarge, doc, fmt.Sprintf("change %v is %d bytes, over the %d bytes a change sent to this side may have: the document stops syncing on this connection", id, n, limit))
	s.events = append(s.events, ChangeTooLarge{Doc: doc, Change: id, Size: n, Limit: limit})
}

// changeLimit is the size of the largest encoded change of doc the peer
// accepts: one that fits, alone, in a frame the peer accepts, and within
// the bound on one change. (The peer does not announce that bound; the
// sides share DefaultLimits' unless a program sets other Limits.)
func (s *Session) changeLimit(doc string) int {
	n := s.peerMax - aloneSize(doc, 0) + 1
	for n > 0 && aloneSize(doc, n) > s.peerMax {
		n--
	}
	return min(n, s.lim.MaxChangeLen)
}

// aloneSize is the size of a Changes or Relay frame of doc holding one
// change of n bytes: the smallest that can carry the change.
func aloneSize(doc string, n int) int {
	return 1 + uvarintLen(len(doc)) + len(doc) + 1 + uvarintLen(n) + n
}

func uvarintLen(n int) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], uint64(n))
}

// binaryVarintLen bounds the length of a varint prefix in a Changes frame.
const binaryVarintLen = 10

// Ack tells the peer that this side holds durable durably. The session
// keeps durable, not a copy (a server acknowledges every change it
// receives): the caller must not change it afterwards.
func (s *Session) Ack(doc string, durable causal.VersionVector) {
	d := s.docs[doc]
	if s.state == stateClosed || d == nil {
		return
	}
	if d.ackMsg != nil && s.outbox[len(s.outbox)-1] == Message(d.ackMsg) {
		d.ackMsg.Durable = durable // a later Ack says more; send only it
		return
	}
	d.ackMsg = &Ack{Doc: doc, Durable: durable}
	s.send(d.ackMsg)
}

// SendPresence sends a peer's presence in doc: this side's own, or, on a
// relay, another peer's.
func (s *Session) SendPresence(p Presence) {
	if d := s.docs[p.Doc]; s.state != stateClosed && d != nil && (d.live || d.subscribed) {
		s.send(&Presence{Doc: p.Doc, Peer: p.Peer, TTLMs: p.TTLMs, State: slices.Clone(p.State)})
	}
}

// SendLeave says a peer's presence in doc is gone.
func (s *Session) SendLeave(doc string, peer causal.ActorID) {
	if d := s.docs[doc]; s.state != stateClosed && d != nil && (d.live || d.subscribed) {
		s.send(&Leave{Doc: doc, Peer: peer})
	}
}

// Live reports whether new changes of doc flow to the peer.
func (s *Session) Live(doc string) bool {
	d := s.docs[doc]
	return d != nil && d.live
}

// Close ends the session with a fatal error code (such as going_away)
// and a message for people. Closing with code 0 ends it cleanly.
func (s *Session) Close(code Code, msg string) {
	if s.state == stateClosed {
		return
	}
	if code == 0 {
		s.closeWith(nil)
		return
	}
	s.send(&Error{Code: code, Fatal: true, Message: msg})
	s.closeWith(&LocalError{Code: code, Err: errors.New(msg)})
}

func (s *Session) send(m Message) {
	if e, ok := m.(*Error); ok {
		e.Message = truncate(e.Message, s.lim.MaxString) // the peer refuses longer ones
	}
	s.outbox = append(s.outbox, m)
}

func (s *Session) docError(code Code, doc, msg string) {
	s.send(&Error{Code: code, Doc: doc, Message: msg})
}

// fail ends the session because of something the peer did.
func (s *Session) fail(code Code, err error) {
	s.send(&Error{Code: code, Fatal: true, Message: err.Error()})
	s.closeWith(&LocalError{Code: code, Err: err})
}

func (s *Session) closeWith(err error) {
	s.state, s.closed = stateClosed, err
	if err == nil {
		s.closed = ErrSessionClosed
	}
	s.events = append(s.events, Closed{Err: err})
}

func merged(v, o causal.VersionVector) causal.VersionVector {
	if v == nil {
		v = causal.VersionVector{}
	}
	v.Merge(o)
	return v
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xc0 != 0x80 }
