package ws_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/transporttest"
	"github.com/converge-sync/converge/transport/ws"
)

// server accepts WebSocket connections with opts and hands each to the
// test on the returned channel.
func server(t testing.TB, opts ws.AcceptOptions) (url string, accepted <-chan transport.Conn) {
	ch := make(chan transport.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Accept(w, r, opts)
		if err != nil {
			t.Logf("Accept: %v", err)
			return
		}
		ch <- c
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), ch
}

func dialPair(t *testing.T, readLimit int64) (client, srv transport.Conn) {
	url, accepted := server(t, ws.AcceptOptions{ReadLimit: readLimit})
	client, err := ws.Dial(t.Context(), url, ws.DialOptions{ReadLimit: readLimit})
	if err != nil {
		t.Fatal(err)
	}
	return client, <-accepted
}

func TestContract(t *testing.T) {
	transporttest.Run(t, dialPair)
}

func TestHandshakeError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			http.Error(w, "token expired", http.StatusUnauthorized)
			return
		}
		c, err := ws.Accept(w, r, ws.AcceptOptions{})
		if err != nil {
			return
		}
		c.Close(transport.CloseNormal, "welcome")
	}))
	defer srv.Close()

	_, err := ws.Dial(t.Context(), srv.URL+"/sync?token=secret", ws.DialOptions{
		Header: http.Header{"Authorization": {"Bearer bad"}},
	})
	var he *ws.HandshakeError
	if !errors.As(err, &he) {
		t.Fatalf("Dial: %v, want a *ws.HandshakeError", err)
	}
	if he.Status != http.StatusUnauthorized || strings.TrimSpace(he.Body) != "token expired" {
		t.Errorf("HandshakeError = %d %q", he.Status, he.Body)
	}
	if got, want := err.Error(), "ws: handshake refused: 401 unauthorized: token expired"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}

	c, err := ws.Dial(t.Context(), srv.URL, ws.DialOptions{
		Header: http.Header{"Authorization": {"Bearer good"}},
	})
	if err != nil {
		t.Fatalf("Dial with the right token: %v", err)
	}
	var ce *transport.CloseError
	if _, err := c.Read(t.Context()); !errors.As(err, &ce) || ce.Reason != "welcome" {
		t.Fatalf("Read: %v, want the server's close", err)
	}
}

// A handshake body is cut to 1 KiB: an error message, not a web page.
func TestHandshakeErrorBodyIsShort(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, strings.Repeat("x", 100_000), http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	_, err := ws.Dial(t.Context(), srv.URL, ws.DialOptions{})
	var he *ws.HandshakeError
	if !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable || len(he.Body) > 1024 {
		t.Fatalf("Dial: %v", err)
	}
}

func TestDialErrorHidesQuery(t *testing.T) {
	// Nothing listens on port 1 of the loopback address.
	_, err := ws.Dial(t.Context(), "ws://127.0.0.1:1/sync?token=secret", ws.DialOptions{})
	if err == nil {
		t.Fatal("Dial succeeded")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error shows the query: %v", err)
	}
}

func TestOriginRefused(t *testing.T) {
	url, _ := server(t, ws.AcceptOptions{})
	_, err := ws.Dial(t.Context(), url, ws.DialOptions{Header: http.Header{"Origin": {"https://evil.example"}}})
	var he *ws.HandshakeError
	if !errors.As(err, &he) || he.Status != http.StatusForbidden {
		t.Fatalf("Dial from another origin: %v, want HandshakeError 403", err)
	}

	url, accepted := server(t, ws.AcceptOptions{OriginPatterns: []string{"app.example"}})
	c, err := ws.Dial(t.Context(), url, ws.DialOptions{Header: http.Header{"Origin": {"https://app.example"}}})
	if err != nil {
		t.Fatalf("Dial from an allowed origin: %v", err)
	}
	s := <-accepted
	closeBoth(c, s)
}

// A text message is a protocol error: the reader's Read fails and the
// sender is told 1002.
func TestTextMessageRefused(t *testing.T) {
	ctx := t.Context()
	url, accepted := server(t, ws.AcceptOptions{})
	raw, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{ws.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.CloseNow()
	s := <-accepted
	if err := raw.Write(ctx, websocket.MessageText, []byte(`{"hello":1}`)); err != nil {
		t.Fatal(err)
	}
	rawRead := make(chan error, 1)
	go func() {
		_, _, err := raw.Read(ctx)
		rawRead <- err
	}()
	if _, err := s.Read(ctx); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Read of a text message: %v, want ErrClosed", err)
	}
	if got := websocket.CloseStatus(<-rawRead); got != websocket.StatusProtocolError {
		t.Fatalf("sender saw close status %v, want %v", got, websocket.StatusProtocolError)
	}
}

// Accept selects converge.v1 when offered and still accepts a client that
// offers no subprotocol.
func TestSubprotocol(t *testing.T) {
	ctx := t.Context()
	for _, offer := range [][]string{{ws.Subprotocol}, {"other", ws.Subprotocol}, nil} {
		url, accepted := server(t, ws.AcceptOptions{})
		raw, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: offer})
		if err != nil {
			t.Fatalf("offer %q: %v", offer, err)
		}
		want := ws.Subprotocol
		if offer == nil {
			want = ""
		}
		if got := raw.Subprotocol(); got != want {
			t.Errorf("offer %q: selected %q, want %q", offer, got, want)
		}
		s := <-accepted
		if err := raw.Write(ctx, websocket.MessageBinary, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if f, err := s.Read(ctx); err != nil || string(f) != "hi" {
			t.Fatalf("offer %q: Read = %q, %v", offer, f, err)
		}
		raw.CloseNow()
	}
}

// Dial's context bounds the handshake only: the connection outlives it.
func TestDialContextEndsHandshakeOnly(t *testing.T) {
	url, accepted := server(t, ws.AcceptOptions{})
	dialCtx, cancel := context.WithCancel(t.Context())
	c, err := ws.Dial(dialCtx, url, ws.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	s := <-accepted
	defer closeBoth(c, s)
	if err := s.Write(t.Context(), []byte("after")); err != nil {
		t.Fatal(err)
	}
	if f, err := c.Read(t.Context()); err != nil || string(f) != "after" {
		t.Fatalf("Read = %q, %v", f, err)
	}
}

// The documented sharp edge: a Read whose context ends drops the
// connection, and the peer sees it end without a close frame.
func TestReadContextEndDropsConnection(t *testing.T) {
	c, s := dialPair(t, 0)
	defer closeBoth(c, s)
	short, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Read(short)
	if !errors.Is(err, transport.ErrClosed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read: %v, want ErrClosed and DeadlineExceeded", err)
	}
	_, err = s.Read(t.Context())
	var ce *transport.CloseError
	if !errors.Is(err, transport.ErrClosed) || errors.As(err, &ce) {
		t.Fatalf("peer's Read: %v, want ErrClosed without a CloseError", err)
	}
	if err := c.Write(t.Context(), []byte("x")); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Write after the read context ended: %v, want ErrClosed", err)
	}
}

// A Write to a peer that stops reading ends within the write timeout
// (once the socket buffers are full), closing the connection.
func TestWriteTimeout(t *testing.T) {
	url, accepted := server(t, ws.AcceptOptions{})
	c, err := ws.Dial(t.Context(), url, ws.DialOptions{WriteTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted // never reads
	defer closeBoth(c, s)
	frame := make([]byte, 1<<20)
	start := time.Now()
	for i := range 1000 {
		err = c.Write(context.Background(), frame)
		if err != nil {
			t.Logf("Write %d failed after %v: %v", i, time.Since(start), err)
			break
		}
	}
	if !errors.Is(err, transport.ErrClosed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write to a peer that does not read: %v, want ErrClosed and DeadlineExceeded", err)
	}
}

func TestCloseReasonIsCut(t *testing.T) {
	c, s := dialPair(t, 0)
	long := strings.Repeat("é", 100) // 200 bytes; a close frame holds 123
	go c.Close(transport.ClosePolicyViolation, long)
	_, err := s.Read(t.Context())
	var ce *transport.CloseError
	if !errors.As(err, &ce) || ce.Code != transport.ClosePolicyViolation {
		t.Fatalf("Read: %v, want CloseError 1008", err)
	}
	if !strings.HasPrefix(long, ce.Reason) || len(ce.Reason) < 120 {
		t.Fatalf("reason %q is not a prefix of the reason sent", ce.Reason)
	}
	if got := c.RemoteAddr(); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Errorf("client RemoteAddr = %q", got)
	}
	if got := s.RemoteAddr(); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Errorf("server RemoteAddr = %q", got)
	}
}

func closeBoth(a, b transport.Conn) {
	done := make(chan struct{})
	go func() { a.Close(transport.CloseNormal, ""); close(done) }()
	b.Close(transport.CloseNormal, "")
	<-done
}

// A Write stuck on a peer that does not read ends when its context is
// canceled, closing the connection; one context serves many writes.
func TestWriteCanceled(t *testing.T) {
	url, accepted := server(t, ws.AcceptOptions{})
	c, err := ws.Dial(t.Context(), url, ws.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted // never reads
	defer closeBoth(c, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	frame := make([]byte, 1<<20)
	done := make(chan error, 1)
	go func() {
		for range 1000 {
			if err := c.Write(ctx, frame); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	time.Sleep(200 * time.Millisecond) // the socket buffers fill; a write blocks
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, transport.ErrClosed) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Write: %v, want ErrClosed and Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a canceled Write did not end")
	}
	if err := c.Write(context.Background(), []byte("x")); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Write after a canceled one: %v, want ErrClosed", err)
	}
}

// A context ending after its Write returned does not cut short a later
// Write under another context (a writer that replaces its context now and
// then, as a sync connection does).
func TestEarlierContextEndingLeavesLaterWrites(t *testing.T) {
	c, s := dialPair(t, 0)
	defer closeBoth(c, s)
	const n = 300
	got := make(chan error, 1)
	go func() {
		for range n {
			if _, err := s.Read(t.Context()); err != nil {
				got <- err
				return
			}
		}
		got <- nil
	}()
	_, cancel := context.WithCancel(context.Background())
	for i := range n {
		ctx, next := context.WithCancel(context.Background())
		cancel() // the previous write's context ends as this write starts
		if err := c.Write(ctx, make([]byte, 64<<10)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		cancel = next
	}
	cancel()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// A Read's context that ends after the Read returned does not cut short a
// later Read under another context (Read watches a context once, not per
// message).
func TestEarlierContextEndingLeavesLaterReads(t *testing.T) {
	c, s := dialPair(t, 0)
	defer closeBoth(c, s)
	const n = 300
	go func() {
		for range n {
			if err := c.Write(t.Context(), make([]byte, 1<<10)); err != nil {
				return
			}
		}
	}()
	_, cancel := context.WithCancel(context.Background())
	for i := range n {
		ctx, next := context.WithCancel(context.Background())
		if _, err := s.Read(ctx); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		cancel() // the previous read's context ends after the read returned
		cancel = next
	}
	cancel()
	// The connection still works both ways.
	if err := s.Write(t.Context(), []byte("ok")); err != nil {
		t.Fatal(err)
	}
	if f, err := c.Read(t.Context()); err != nil || string(f) != "ok" {
		t.Fatalf("read after: %q, %v", f, err)
	}
}
