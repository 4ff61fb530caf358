package ws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/converge-sync/converge/transport"
)

// Subprotocol is the WebSocket subprotocol name of converge's sync protocol.
const Subprotocol = "converge.v1"

// DefaultWriteTimeout bounds a Write whose context has no earlier deadline.
// It is generous because one frame may be up to 16 MiB on a slow link; it
// exists so that a peer that stops reading cannot hold a writer forever.
const DefaultWriteTimeout = 60 * time.Second

// Conn is a transport.Conn over a WebSocket.
//
// Contexts: coder/websocket closes the connection when the context of a Read
// or Write ends while the call is in progress, because it cannot abandon a
// message half read or half written. So give Read one context that lives as
// long as the connection, and end the connection with Close, which tells the
// peer why. Canceling the read context instead drops the connection without
// a close frame: Read returns an error wrapping both transport.ErrClosed and
// the context's error, and the peer's Read fails with an error wrapping
// transport.ErrClosed but no *transport.CloseError. Write checks its context
// before sending, so a context that has already ended costs nothing; its
// deadline (or the write timeout) ends a write that takes too long, closing
// the connection.
type Conn struct {
	ws           *websocket.Conn
	remote       string
	readLimit    int64
	writeTimeout time.Duration
	// closing is set when this side closes (Close, a text message, a frame
	// over the limit), so that errors seen afterwards are reported as this
	// side's close, not as the peer's reply to it.
	closing atomic.Bool
	// peerClose is the peer's close, kept because the library reports it
	// only once; later Reads and Writes report it again.
	peerClose atomic.Pointer[transport.CloseError]

	rmu    sync.Mutex // guards the read watch (Reads come one at a time)
	rwatch ctxWatch

	wmu      sync.Mutex  // serialises Writes, which share the watchdog and the watch
	watchdog *time.Timer // ends a Write that takes too long (see Write)
	wwatch   ctxWatch
}

// ctxWatch closes the connection when the context of the Read (or Write)
// under way ends. It watches the last context it was given once, for as
// many calls as use it, instead of once per call. Its owner serialises
// arm.
type ctxWatch struct {
	ctx     context.Context // the last context armed, watched for cancellation
	unwatch func() bool
	seq     uint64        // numbers the watches
	active  atomic.Uint64 // the watch of the call under way (0: none, or not watched)
}

// arm makes the watch cover a call on ws under ctx, until done; it
// returns false, closing the connection, if ctx has already ended.
func (w *ctxWatch) arm(ctx context.Context, ws *websocket.Conn) bool {
	if ctx.Done() == nil {
		return true // nothing to watch
	}
	if ctx != w.ctx {
		if w.unwatch != nil {
			w.unwatch()
		}
		w.seq++
		n := w.seq
		w.ctx = ctx
		w.unwatch = context.AfterFunc(ctx, func() {
			// Only a call under this very context is cut short: an earlier
			// context may end while a later one's call runs.
			if w.active.Load() == n {
				ws.CloseNow()
			}
		})
	}
	w.active.Store(w.seq)
	if ctx.Err() != nil {
		// It ended before the watch took effect.
		w.done()
		ws.CloseNow()
		return false
	}
	return true
}

// done ends the watch's cover of the call under way.
func (w *ctxWatch) done() { w.active.Store(0) }

var _ transport.Conn = (*Conn)(nil)

func newConn(c *websocket.Conn, remote string, readLimit int64, writeTimeout time.Duration) *Conn {
	if readLimit <= 0 {
		readLimit = transport.DefaultReadLimit
	}
	if writeTimeout <= 0 {
		writeTimeout = DefaultWriteTimeout
	}
	c.SetReadLimit(readLimit)
	return &Conn{ws: c, remote: remote, readLimit: readLimit, writeTimeout: writeTimeout}
}

// Read returns the next binary message. A text message is a protocol error:
// the connection is closed with transport.CloseProtocolError.
//
// The context's cancellation is watched once per context, as in Write:
// given a context that can end, the library registers and removes a
// watch for every message, and a reader of a busy connection reads
// thousands a second.
func (c *Conn) Read(ctx context.Context) ([]byte, error) {
	c.rmu.Lock()
	armed := c.rwatch.arm(ctx, c.ws)
	c.rmu.Unlock()
	if !armed {
		return nil, c.readError(ctx, ctx.Err())
	}
	typ, frame, err := c.ws.Read(context.Background())
	c.rwatch.done()
	if err != nil {
		return nil, c.readError(ctx, err)
	}
	if typ != websocket.MessageBinary {
		c.closeWS(websocket.StatusProtocolError, "converge.v1 carries binary messages only")
		return nil, fmt.Errorf("ws: peer sent a text message: %w", transport.ErrClosed)
	}
	return frame, nil
}

func (c *Conn) readError(ctx context.Context, err error) error {
	if pc := c.peerClose.Load(); pc != nil {
		return pc
	}
	if c.closing.Load() {
		return transport.ErrClosed
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		pc := &transport.CloseError{Code: transport.CloseCode(ce.Code), Reason: ce.Reason}
		c.peerClose.CompareAndSwap(nil, pc)
		return pc
	}
	if errors.Is(err, websocket.ErrMessageTooBig) {
		// The library has sent the close frame (1009); Close drains the
		// rest of the message until the peer answers, then hangs up.
		c.closeWS(websocket.StatusMessageTooBig, "")
		return fmt.Errorf("ws: %w (limit %d bytes): %w", transport.ErrTooBig, c.readLimit, transport.ErrClosed)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("ws: read context ended, connection dropped: %w: %w", transport.ErrClosed, ctx.Err())
	}
	return fmt.Errorf("ws: %w: %w", transport.ErrClosed, err)
}

// Write sends frame as one binary message, within the context's deadline or
// the write timeout, whichever comes first. A failed Write leaves the
// connection closed: a message cut short cannot be resumed. A context
// canceled while the frame is being sent closes the connection too.
//
// The time limit is kept by one timer per connection, rearmed for each
// Write, and cancellation by one watch per context (registered once for a
// context used for many writes), rather than by a context per Write: a
// server writes a frame to every subscriber of a document for every
// change, and a context with a deadline costs a timer and several
// allocations each time.
func (c *Conn) Write(ctx context.Context, frame []byte) error {
	if err := c.closed(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	timeout := c.writeTimeout
	if dl, ok := ctx.Deadline(); ok {
		if timeout = min(timeout, time.Until(dl)); timeout <= 0 {
			return context.DeadlineExceeded
		}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.wwatch.arm(ctx, c.ws) {
		return fmt.Errorf("ws: write: %w: %w", transport.ErrClosed, ctx.Err())
	}
	defer c.wwatch.done()
	if c.watchdog == nil {
		c.watchdog = time.AfterFunc(timeout, c.writeTimedOut)
	} else {
		c.watchdog.Reset(timeout)
	}
	// No Done channel: the library then sets up nothing per call.
	err := c.ws.Write(context.Background(), websocket.MessageBinary, frame)
	stopped := c.watchdog.Stop()
	if err == nil {
		return nil
	}
	switch {
	case !stopped:
		// The watchdog fired: the write took too long and was cut off.
		err = fmt.Errorf("%w after %v: %w", context.DeadlineExceeded, timeout, err)
	case ctx.Err() != nil:
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
		stopped = false // report the cut, not the close it caused
	}
	if !errors.Is(err, net.ErrClosed) {
		// The network failed part way through.
		c.ws.CloseNow()
	}
	if cerr := c.closed(); cerr != nil && stopped {
		return cerr
	}
	return fmt.Errorf("ws: write: %w: %w", transport.ErrClosed, err)
}

// writeTimedOut ends a connection whose Write took longer than allowed.
func (c *Conn) writeTimedOut() { c.ws.CloseNow() }

// closed is the error for a connection already known to have ended: the
// peer's close, or this side's.
func (c *Conn) closed() error {
	if pc := c.peerClose.Load(); pc != nil {
		return pc
	}
	if c.closing.Load() {
		return transport.ErrClosed
	}
	return nil
}

// Close performs the WebSocket close handshake: it sends code and reason
// (cut to the 123 bytes a close frame holds) and waits, a few seconds at
// most, for the peer's answer, which a concurrent Read consumes if one is
// running. It returns nil if the connection was already closed.
func (c *Conn) Close(code transport.CloseCode, reason string) error {
	return c.closeWS(websocket.StatusCode(code), reason)
}

func (c *Conn) closeWS(code websocket.StatusCode, reason string) error {
	c.closing.Store(true)
	err := c.ws.Close(code, truncate(reason, maxReason))
	var ce websocket.CloseError
	if err == nil || errors.Is(err, net.ErrClosed) || errors.As(err, &ce) {
		// Already closed, or the peer's close crossed ours: either way the
		// connection has ended as asked.
		return nil
	}
	return fmt.Errorf("ws: close: %w", err)
}

// RemoteAddr is the server's host for a dialed connection, the client's
// address for an accepted one.
func (c *Conn) RemoteAddr() string { return c.remote }

// maxReason is what fits in a close frame: 125 bytes of control payload,
// less the 2-byte code. The library refuses a longer reason (and sends 1011
// instead of the caller's code), so Close cuts it.
const maxReason = 123

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
