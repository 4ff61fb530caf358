package syncproto

import "github.com/converge-sync/converge/causal"

// Version is the newest protocol version this package speaks. A side
// accepts a Hello of any version from MinVersion on and answers in the
// newest version both sides speak (the Hello's, or Version if the Hello's
// is newer); version 2 adds Relay, version 3 Batch.
const Version = 3

// MinVersion is the oldest protocol version this package still speaks.
const MinVersion = 1

// Type identifies a message on the wire. The numbers never change.
type Type uint8

const (
	TypeHello       Type = 0x01
	TypeWelcome     Type = 0x02
	TypeError       Type = 0x03
	TypeBatch       Type = 0x04 // version 3
	TypeSubscribe   Type = 0x10
	TypeUnsubscribe Type = 0x11
	TypeHave        Type = 0x12
	TypeChanges     Type = 0x13
	TypeAck         Type = 0x14
	TypeRelay       Type = 0x15 // version 2
	TypePresence    Type = 0x20
	TypeLeave       Type = 0x21
	TypePing        Type = 0x30
	TypePong        Type = 0x31
)

var typeNames = map[Type]string{
	TypeHello: "hello", TypeWelcome: "welcome", TypeError: "error", TypeBatch: "batch",
	TypeSubscribe: "subscribe", TypeUnsubscribe: "unsubscribe", TypeHave: "have",
	TypeChanges: "changes", TypeAck: "ack", TypeRelay: "relay", TypePresence: "presence", TypeLeave: "leave",
	TypePing: "ping", TypePong: "pong",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "type?"
}

// Message is one protocol message.
type Message interface{ Type() Type }

// Role says what kind of peer sent a Hello.
type Role uint8

const (
	RoleReplica Role = 1 // an application's replica
	RoleServer  Role = 2 // a server: holds many documents, never authors edits
)

// Hello opens a connection: the protocol version the sender speaks, who it
// is, a display name for logs and presence, and the limits it enforces on
// what it receives (as in Welcome: each side keeps within the other's).
type Hello struct {
	Version    uint64
	Peer       causal.ActorID
	Role       Role
	Name       string
	MaxFrame   uint64 // the largest frame the sender accepts (0: not stated)
	MaxChanges uint64 // the most changes in one Changes message the sender accepts (0: not stated)
}

// Welcome accepts a Hello and states the limits the receiver will enforce.
type Welcome struct {
	Version     uint64
	Peer        causal.ActorID
	Role        Role
	MaxFrame    uint64 // the largest frame the sender of Welcome accepts
	HeartbeatMs uint64 // how often the peer should expect a Ping
	MaxChanges  uint64 // the most changes in one Changes message it accepts (0: not stated)
}

// Error reports a problem with a stable Code. Fatal errors end the
// connection; others concern one document or one message.
type Error struct {
	Code    Code
	Fatal   bool
	Doc     string // the document concerned, if any
	Message string // for people; not for programs (use Code)
}

// Batch carries several frames in one (version 3 on), so that a busy
// connection sends many messages with one write and its peer reads them
// with one read. The receiver handles the frames in order, as if each had
// come alone. A batch holds no Hello, Welcome or other Batch, and at least
// one frame. Session.Ready makes them; nothing else need.
type Batch struct {
	Frames [][]byte
}

// Subscribe asks for a document's changes: first everything the sender
// lacks, given what it holds (Have), then every new change as it is made.
type Subscribe struct {
	Doc  string
	Have causal.VersionVector
}

// Unsubscribe ends a subscription.
type Unsubscribe struct{ Doc string }

// Have tells the peer which changes of a document the sender holds, so that
// the peer can send what the sender lacks. It answers a Subscribe.
type Have struct {
	Doc  string
	Have causal.VersionVector
}

// Changes carries changes of one document, each a frame of the stream form
// (encoding.ChangeWriter) of this document in this direction.
type Changes struct {
	Doc     string
	Changes [][]byte
}

// Relay carries changes of one document, each in the standalone encoding
// (encoding.EncodeChange) rather than a connection's stream form (version 2
// on). What a standalone change encodes depends on the change alone, so a
// server encodes a change once and sends the very same frame to every
// subscriber of the document, where Changes costs an encoding per
// connection. Make one with NewRelay; a Relay is read-only once made, and
// may be handed to many sessions at once.
type Relay struct {
	Doc     string
	Changes [][]byte

	frame   []byte // the encoded frame, made once by NewRelay
	longest int    // bytes of its largest change
}

// NewRelay makes the Relay of changes (standalone encodings) of doc, with
// its frame encoded, ready to be handed to every session that should send
// it (Session.Relay).
func NewRelay(doc string, changes [][]byte) *Relay {
	r := &Relay{Doc: doc, Changes: changes}
	r.frame = Append(nil, r)
	for _, c := range changes {
		r.longest = max(r.longest, len(c))
	}
	return r
}

// Ack tells the peer which changes of a document are durable on the
// sender's side: a replica knows its changes are safe in the cloud once a
// server's Ack includes them.
type Ack struct {
	Doc     string
	Durable causal.VersionVector
}

// Presence is one peer's ephemeral state in a document (who, cursor, what
// they are editing), as opaque JSON. It is relayed, never stored, and
// forgotten after TTLMs without an update, or at Leave.
type Presence struct {
	Doc   string
	Peer  causal.ActorID
	TTLMs uint64
	State []byte
}

// Leave says a peer's presence in a document is gone.
type Leave struct {
	Doc  string
	Peer causal.ActorID
}

// Ping asks for a Pong with the same nonce: a liveness check.
type Ping struct{ Nonce uint64 }

// Pong answers a Ping.
type Pong struct{ Nonce uint64 }

func (*Hello) Type() Type       { return TypeHello }
func (*Welcome) Type() Type     { return TypeWelcome }
func (*Error) Type() Type       { return TypeError }
func (*Batch) Type() Type       { return TypeBatch }
func (*Subscribe) Type() Type   { return TypeSubscribe }
func (*Unsubscribe) Type() Type { return TypeUnsubscribe }
func (*Have) Type() Type        { return TypeHave }
func (*Changes) Type() Type     { return TypeChanges }
func (*Ack) Type() Type         { return TypeAck }
func (*Relay) Type() Type       { return TypeRelay }
func (*Presence) Type() Type    { return TypePresence }
func (*Leave) Type() Type       { return TypeLeave }
func (*Ping) Type() Type        { return TypePing }
func (*Pong) Type() Type        { return TypePong }
