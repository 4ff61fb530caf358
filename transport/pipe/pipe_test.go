package pipe_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/pipe"
	"github.com/converge-sync/converge/transport/transporttest"
)

func TestContract(t *testing.T) {
	transporttest.Run(t, func(t *testing.T, readLimit int64) (a, b transport.Conn) {
		return pipe.New(pipe.WithReadLimit(readLimit))
	})
}

// A full buffer blocks Write until the context ends; the frame is then not
// sent, and the connection still works.
func TestWriteBlocksWhenFull(t *testing.T) {
	ctx := t.Context()
	a, b := pipe.New(pipe.WithBuffer(1))
	if err := a.Write(ctx, []byte("1")); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := a.Write(short, []byte("2")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write to a full pipe: %v, want DeadlineExceeded", err)
	}
	if got := readString(ctx, b); got != "1" {
		t.Fatalf("read %q, want 1", got)
	}
	if err := a.Write(ctx, []byte("3")); err != nil {
		t.Fatal(err)
	}
	if got := readString(ctx, b); got != "3" {
		t.Fatalf("read %q, want 3 (the canceled frame must not be sent)", got)
	}
}

// The peer's Close ends a Write blocked on a full buffer.
func TestPeerCloseUnblocksWrite(t *testing.T) {
	ctx := t.Context()
	a, b := pipe.New(pipe.WithBuffer(1))
	if err := a.Write(ctx, []byte("1")); err != nil {
		t.Fatal(err)
	}
	blocked := make(chan error, 1)
	go func() { blocked <- a.Write(ctx, []byte("2")) }()
	time.Sleep(10 * time.Millisecond)
	b.Close(transport.CloseInternal, "boom")
	err := <-blocked
	var ce *transport.CloseError
	if !errors.As(err, &ce) || ce.Code != transport.CloseInternal {
		t.Fatalf("blocked Write: %v, want CloseError %d", err, transport.CloseInternal)
	}
}

// Unlike ws, a pipe survives a Read whose context ends.
func TestReadContextLeavesPipeOpen(t *testing.T) {
	a, b := pipe.New()
	short, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := b.Read(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read: %v, want DeadlineExceeded", err)
	}
	if err := a.Write(t.Context(), []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if got := readString(t.Context(), b); got != "still here" {
		t.Fatalf("read %q", got)
	}
}

func readString(ctx context.Context, c transport.Conn) string {
	f, err := c.Read(ctx)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(f)
}
