package converge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
)

// The simulated network of the deterministic simulation (sim_test.go).
//
// A real sync connection is a WebSocket over TCP: an ordered, reliable
// stream in each direction, so within one connection frames are never
// lost, duplicated or reordered while it lives. What a real network does
// to such a stream is end it: a reset, a timeout, a middlebox dropping it
// — and each side may learn of that at a different time, or never
// (half-open: only the heartbeat notices). Duplicates and reordering reach
// the protocol across connections instead: a client redials while its
// old session is still alive on the server, frames of the old connection
// still arrive after the new one has started, the same change comes by
// catch-up and by fan-out. That is the model here:
//
//   - each connection (simLink) has two ordered queues of frames with a
//     delivery time each; a frame never overtakes the one before it;
//   - latency varies per frame, with rare long spikes; a stall holds both
//     directions for a while (long enough, the heartbeat ends the session);
//   - a break loses what was in flight after a random point; each side
//     learns of it after its own delay or never (then its heartbeat ends
//     it), and meanwhile writes into the void;
//   - a crashed process's connections are closed by its kernel (the peer
//     reads the frames already sent, then an abnormal close), or, for a
//     machine that lost power, simply go silent.

// simFrame is one frame on its way, or (close != nil) the close that
// follows the frames before it.
type simFrame struct {
	at    time.Time
	data  []byte
	close *transport.CloseError
}

// simLink is one connection between a client and the server.
type simLink struct {
	id     int
	client *simClient
	epoch  int // the server's store epoch when the connection was made
	ends   [2]*simEnd
	broken bool      // the network lost it: nothing written from now on arrives
	stall  time.Time // nothing is delivered before this time
}

const (
	clientSide = 0
	serverSide = 1
)

// simEnd is one end of a connection: the transport.Conn its peer writes
// to, and what the simulation knows about that peer.
type simEnd struct {
	w      *simWorld
	link   *simLink
	side   int
	p      *peer
	out    []simFrame // written by this end, not yet delivered to the other
	lastAt time.Time  // the delivery time of the last frame written
	closed bool       // this end called Close
	done   bool       // this end's peer has ended, or its process died
	notice time.Time  // when this end learns the connection broke (zero: never)
	tickAt time.Time  // the next heartbeat tick
	every  time.Duration
}

var _ transport.Conn = (*simEnd)(nil)

func (e *simEnd) other() *simEnd { return e.link.ends[1-e.side] }

// Read is never called: the simulation hands frames to peer.receive.
func (e *simEnd) Read(ctx context.Context) ([]byte, error) {
	return nil, errors.New("sim: Read is not used")
}

func (e *simEnd) Write(ctx context.Context, frame []byte) error {
	if e.closed {
		return transport.ErrClosed
	}
	if e.link.broken {
		return nil // into the void: the kernel accepts it, no one receives it
	}
	e.enqueue(simFrame{data: bytes.Clone(frame)})
	e.w.note("send", e.link.id, e.side, len(frame), frame)
	if e.w.keep {
		e.w.trace[len(e.w.trace)-1] += " " + describeFrame(frame)
	}
	return nil
}

func (e *simEnd) enqueue(f simFrame) {
	f.at = e.w.now.Add(e.w.latency())
	if f.at.Before(e.lastAt) {
		f.at = e.lastAt // an ordered stream: no overtaking
	}
	e.lastAt = f.at
	e.out = append(e.out, f)
}

func (e *simEnd) Close(code transport.CloseCode, reason string) error {
	if e.closed {
		return nil
	}
	e.closed = true
	if !e.link.broken {
		e.enqueue(simFrame{close: &transport.CloseError{Code: code, Reason: reason}})
	}
	return nil
}

func (e *simEnd) RemoteAddr() string { return "sim" }

// due reports whether this end has a frame the other end may receive now.
func (e *simEnd) due(now time.Time) bool {
	return len(e.out) > 0 && !e.out[0].at.After(now) && !e.link.stall.After(now)
}

// cut loses what this end wrote after a random point (the rest was
// already in the other side's kernel).
func (e *simEnd) cut() int {
	keep := e.w.rng.IntN(len(e.out) + 1)
	lost := len(e.out) - keep
	e.out = e.out[:keep]
	return lost
}

// describeFrame names a frame's message for a trace.
func describeFrame(f []byte) string {
	m, err := syncproto.Decode(f, syncproto.DefaultLimits)
	if err != nil {
		return "undecodable: " + err.Error()
	}
	switch m := m.(type) {
	case *syncproto.Subscribe:
		return fmt.Sprintf("subscribe %s have %v", m.Doc, m.Have)
	case *syncproto.Have:
		return fmt.Sprintf("have %s %v", m.Doc, m.Have)
	case *syncproto.Ack:
		return fmt.Sprintf("ack %s %v", m.Doc, m.Durable)
	case *syncproto.Changes:
		return fmt.Sprintf("changes %s x%d", m.Doc, len(m.Changes))
	case *syncproto.Error:
		return fmt.Sprintf("error %s %q fatal=%v: %s", m.Code, m.Doc, m.Fatal, m.Message)
	}
	return m.Type().String()
}
