package ws

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
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
	c, err := websocket.Accept(smallBuffers{w}, r, &websocket.AcceptOptions{
		Subprotocols:       []string{Subprotocol},
		OriginPatterns:     opts.OriginPatterns,
		InsecureSkipVerify: opts.InsecureSkipVerify,
	})
	if err != nil {
		return nil, fmt.Errorf("ws: accept from %s: %w", r.RemoteAddr, err)
	}
	return newConn(c, r.RemoteAddr, opts.ReadLimit, opts.WriteTimeout), nil
}

// bufferSize is the size of an accepted connection's read and write
// buffers. net/http hands a hijacked connection 4 KiB buffers each way,
// which the WebSocket keeps for its lifetime: 8 KiB per connection, most of
// a server's memory per idle client. Sync frames are mostly small; a frame
// larger than the buffer is read and written past it, in one more system
// call.
const bufferSize = 1024

// smallBuffers hijacks a connection with bufferSize buffers instead of
// net/http's.
type smallBuffers struct{ http.ResponseWriter }

func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("ws: the http.ResponseWriter cannot be hijacked")
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	// The client may have sent its first frames with the handshake: what
	// net/http read ahead must stay buffered in the new reader (the
	// WebSocket library takes what is buffered, then reads the
	// connection).
	ahead, _ := brw.Reader.Peek(brw.Reader.Buffered())
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), c), max(bufferSize, len(ahead)))
	if len(ahead) > 0 {
		if _, err := br.Peek(len(ahead)); err != nil {
			c.Close()
			return nil, nil, err
		}
	}
	return c, bufio.NewReadWriter(br, bufio.NewWriterSize(c, bufferSize)), nil
}

// Unwrap gives http.ResponseController the ResponseWriter underneath.
func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }
