package ws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/converge-sync/converge/transport"
)

// DialOptions configures Dial. The zero value is ready to use.
type DialOptions struct {
	// Header is sent with the handshake request, e.g. Authorization: Bearer ….
	Header http.Header
	// ReadLimit is the largest frame read, in bytes; <= 0 means
	// transport.DefaultReadLimit.
	ReadLimit int64
	// HTTPClient makes the handshake request; nil means http.DefaultClient.
	HTTPClient *http.Client
	// WriteTimeout bounds each Write; <= 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
}

// HandshakeError is a server's refusal of the WebSocket handshake: it
// answered with an HTTP status other than 101 Switching Protocols, such as
// 401 for a missing or expired token.
type HandshakeError struct {
	Status int
	Body   string // the start of the response body (up to 1 KiB)
}

func (e *HandshakeError) Error() string {
	msg := fmt.Sprintf("ws: handshake refused: %d %s", e.Status, strings.ToLower(http.StatusText(e.Status)))
	if body := strings.TrimSpace(e.Body); body != "" {
		msg += ": " + body
	}
	return msg
}

// maxBody is how much of a refusal's body a HandshakeError keeps: enough
// for an error message, not a whole HTML page.
const maxBody = 1024

// Dial opens a WebSocket connection to url (ws://, wss://, http:// or
// https://), offering the converge.v1 subprotocol. ctx bounds the handshake
// only. A server's refusal is returned as a *HandshakeError.
func Dial(ctx context.Context, url string, opts DialOptions) (transport.Conn, error) {
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient:   opts.HTTPClient,
		HTTPHeader:   opts.Header,
		Subprotocols: []string{Subprotocol},
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			var body []byte
			if resp.Body != nil {
				body, _ = io.ReadAll(io.LimitReader(resp.Body, maxBody))
			}
			return nil, &HandshakeError{Status: resp.StatusCode, Body: string(body)}
		}
		var ue *neturl.Error // from the HTTP client; its text holds the whole URL
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("ws: dial %s: %w", redact(url), err)
	}
	return newConn(c, host(url), opts.ReadLimit, opts.WriteTimeout), nil
}

// redact keeps a URL's query (which may hold a token) out of error messages.
func redact(s string) string {
	u, err := neturl.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

func host(s string) string {
	if u, err := neturl.Parse(s); err == nil && u.Host != "" {
		return u.Host
	}
	return redact(s)
}
