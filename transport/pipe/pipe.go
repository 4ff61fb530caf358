package pipe

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/converge-sync/converge/transport"
)

// DefaultBuffer is how many frames each direction holds before Write blocks.
const DefaultBuffer = 16

type config struct {
	buffer    int
	readLimit int
}

// An Option configures New.
type Option func(*config)

// WithBuffer sets how many frames each direction holds before Write blocks
// (at least 1).
func WithBuffer(frames int) Option {
	return func(c *config) { c.buffer = max(frames, 1) }
}

// WithReadLimit sets the largest frame, in bytes, either end reads;
// n <= 0 means transport.DefaultReadLimit.
func WithReadLimit(n int64) Option {
	return func(c *config) {
		if n > 0 {
			c.readLimit = int(min(n, int64(^uint(0)>>1)))
		}
	}
}

// New returns the two ends of a new pipe: what one writes, the other reads.
func New(opts ...Option) (a, b transport.Conn) {
	c := config{buffer: DefaultBuffer, readLimit: transport.DefaultReadLimit}
	for _, o := range opts {
		o(&c)
	}
	ab := make(chan []byte, c.buffer)
	ba := make(chan []byte, c.buffer)
	sa := &closing{done: make(chan struct{})}
	sb := &closing{done: make(chan struct{})}
	return &end{in: ba, out: ab, self: sa, peer: sb, limit: c.readLimit},
		&end{in: ab, out: ba, self: sb, peer: sa, limit: c.readLimit}
}

// closing is one end's Close: err is set before done is closed, so whoever
// sees done closed may read err.
type closing struct {
	once sync.Once
	done chan struct{}
	err  *transport.CloseError
}

func (c *closing) close(code transport.CloseCode, reason string) {
	c.once.Do(func() {
		c.err = &transport.CloseError{Code: code, Reason: reason}
		close(c.done)
	})
}

func (c *closing) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// end is one end of a pipe. The frames themselves never need a lock: the
// channels order them, and each frame is a private copy.
type end struct {
	in    <-chan []byte
	out   chan<- []byte
	self  *closing
	peer  *closing
	limit int
}

var _ transport.Conn = (*end)(nil)

func (e *end) Read(ctx context.Context) ([]byte, error) {
	if e.self.closed() {
		return nil, transport.ErrClosed
	}
	select {
	case f := <-e.in:
		return e.check(f)
	case <-e.self.done:
		return nil, transport.ErrClosed
	case <-e.peer.done:
		// The peer closed: what it wrote before is still due, in order.
		select {
		case f := <-e.in:
			return e.check(f)
		default:
			return nil, e.peer.err
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// check refuses a frame over the read limit as a socket reader would: by
// closing the connection with CloseTooBig.
func (e *end) check(f []byte) ([]byte, error) {
	if len(f) > e.limit {
		e.self.close(transport.CloseTooBig, fmt.Sprintf("frame of %d bytes over the limit of %d", len(f), e.limit))
		return nil, fmt.Errorf("pipe: %w (%d bytes, limit %d): %w", transport.ErrTooBig, len(f), e.limit, transport.ErrClosed)
	}
	return f, nil
}

func (e *end) Write(ctx context.Context, frame []byte) error {
	if e.self.closed() {
		return transport.ErrClosed
	}
	if e.peer.closed() {
		return e.peer.err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f := bytes.Clone(frame)
	if f == nil {
		f = []byte{}
	}
	select {
	case e.out <- f:
		return nil
	case <-e.self.done:
		return transport.ErrClosed
	case <-e.peer.done:
		return e.peer.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close never blocks: frames already written stay in the buffer for the
// peer to read.
func (e *end) Close(code transport.CloseCode, reason string) error {
	e.self.close(code, reason)
	return nil
}

func (e *end) RemoteAddr() string { return "pipe" }
