package ws_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/converge-sync/converge/transport/ws"
)

// maskedFrame is a client's binary WebSocket message carrying payload.
func maskedFrame(payload []byte) []byte {
	mask := [4]byte{1, 2, 3, 4}
	f := []byte{0x82}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	default:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	}
	f = append(f, mask[:]...)
	for i, b := range payload {
		f = append(f, b^mask[i%4])
	}
	return f
}

// A client that sends frames in the same packet as its handshake loses
// none of them: the server reads what net/http read ahead before the
// connection (the accepted connection's buffers are not net/http's).
func TestFramesSentWithTheHandshake(t *testing.T) {
	for _, size := range []int{5, 3000} { // within the read buffer, and past it
		t.Run("", func(t *testing.T) {
			url, accepted := server(t, ws.AcceptOptions{})
			host, _, _ := strings.Cut(strings.TrimPrefix(url, "ws://"), "/")
			c, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			one := bytes.Repeat([]byte("a"), size)
			two := bytes.Repeat([]byte("b"), size)
			req := "GET /sync HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + ws.Subprotocol + "\r\n\r\n"
			msg := append([]byte(req), maskedFrame(one)...)
			msg = append(msg, maskedFrame(two)...)
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			resp := make([]byte, 12)
			if _, err := io.ReadFull(c, resp); err != nil || !strings.HasPrefix(string(resp), "HTTP/1.1 101") {
				t.Fatalf("handshake answer %q, %v", resp, err)
			}
			s := <-accepted
			// A lost frame would leave Read waiting: the time limit turns
			// that into a failure.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			for _, want := range [][]byte{one, two} {
				got, err := s.Read(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("read %d bytes %.10q…, want %d bytes %.10q…", len(got), got, len(want), want)
				}
			}
		})
	}
}
