package ws

import (
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/converge-sync/converge/transport"
)

// AcceptOptions configures Accept. The zero value accepts same-origin
// browsers and any non-browser client.
type AcceptOptions struct {
	// ReadLimit is the largest frame read, in bytes; <= 0 means
	// transport.DefaultReadLimit.
	ReadLimit int64
	// OriginPatterns lists the other origins (host patterns, path.Match
	// syntax) whose browser pages may connect. Requests without an Origin
	// header (non-browser clients) and same-host origins are always allowed.
	OriginPatterns []string
	// InsecureSkipVerify turns the origin check off: any web page may then
	// connect with its visitor's cookies. Only for token-authenticated
	// servers that do not rely on cookies.
	InsecureSkipVerify bool
	// WriteTimeout bounds each Write; <= 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
}

// Accept upgrades an HTTP request to a WebSocket connection, selecting the
// converge.v1 subprotocol if the client offers it. On error it has already
// answered the request (400 for a request that is not a WebSocket
// handshake, 403 for a refused origin).
//
// The connection outlives the handler, but not r.Context(): that ends when
// the handler returns, so do not use it as the Conn's read context then.
func Accept(w http.ResponseWriter, r *http.Request, opts AcceptOptions) (transport.Conn, error) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:       []string{Subprotocol},
		OriginPatterns:     opts.OriginPatterns,
		InsecureSkipVerify: opts.InsecureSkipVerify,
	})
	if err != nil {
		return nil, fmt.Errorf("ws: accept from %s: %w", r.RemoteAddr, err)
	}
	return newConn(c, r.RemoteAddr, opts.ReadLimit, opts.WriteTimeout), nil
}
