package transport

import (
	"context"
	"errors"
	"fmt"
)

// Conn carries whole frames between two peers, in order. Read and Write may be
// called concurrently with each other (one reader goroutine, one writer goroutine),
// and Close may be called from any goroutine at any time.
type Conn interface {
	// Read returns the next frame. After the peer closes it returns an error
	// wrapping ErrClosed (a *CloseError with the peer's code and reason when known).
	Read(ctx context.Context) ([]byte, error)
	// Write sends one frame. The slice may be reused by the caller after Write returns.
	Write(ctx context.Context, frame []byte) error
	// Close ends the connection, telling the peer why (best effort).
	Close(code CloseCode, reason string) error
	// RemoteAddr names the peer for logs ("pipe" for pipes).
	RemoteAddr() string
}

// CloseCode says why a connection ended. The values are WebSocket close
// codes (RFC 6455, section 7.4), so that ws passes them through unchanged
// and other transports mean the same thing by them. Applications may use
// 4000–4999 for their own reasons.
type CloseCode int

// Close codes the sync session uses.
const (
	CloseNormal          CloseCode = 1000
	CloseGoingAway       CloseCode = 1001 // server shutting down
	CloseProtocolError   CloseCode = 1002
	CloseTooBig          CloseCode = 1009
	ClosePolicyViolation CloseCode = 1008 // auth / limits
	CloseInternal        CloseCode = 1011
)

func (c CloseCode) String() string {
	switch c {
	case CloseNormal:
		return "normal"
	case CloseGoingAway:
		return "going away"
	case CloseProtocolError:
		return "protocol error"
	case CloseTooBig:
		return "too big"
	case ClosePolicyViolation:
		return "policy violation"
	case CloseInternal:
		return "internal error"
	}
	return fmt.Sprintf("code %d", int(c))
}

// DefaultReadLimit is the read limit when an implementation is given none:
// syncproto's default frame limit, so that any frame a peer may send with
// default limits is read.
const DefaultReadLimit = 16 << 20

var (
	// ErrClosed is wrapped by every error from a connection that has ended,
	// whoever ended it and however.
	ErrClosed = errors.New("transport: connection closed")
	// ErrTooBig is wrapped by the error Read returns when the peer sent a
	// frame over the read limit; the connection is then closed with
	// CloseTooBig.
	ErrTooBig = errors.New("transport: frame over the read limit")
)

// CloseError is how a peer ended the connection: the code and reason it
// sent with its Close. It wraps ErrClosed.
type CloseError struct {
	Code   CloseCode
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("transport: peer closed the connection (%d %v)", int(e.Code), e.Code)
	}
	return fmt.Sprintf("transport: peer closed the connection (%d %v: %s)", int(e.Code), e.Code, e.Reason)
}

func (e *CloseError) Unwrap() error { return ErrClosed }
