package transporttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/converge-sync/converge/transport"
)

// NewPair returns the two ends of a new connection whose ends both read
// frames of up to readLimit bytes. Run closes both ends when a case ends.
type NewPair func(t *testing.T, readLimit int64) (a, b transport.Conn)

// Run runs the contract tests as subtests of t.
func Run(t *testing.T, newPair NewPair) {
	cases := []struct {
		name string
		fn   func(*testing.T, NewPair)
	}{
		{"OrderAndIntegrity", testOrder},
		{"WriterReusesSlice", testReuse},
		{"FullDuplex", testFullDuplex},
		{"CloseCodeAndReason", testClose},
		{"CloseUnblocksRead", testCloseUnblocksRead},
		{"AfterClose", testAfterClose},
		{"ReadLimit", testReadLimit},
		{"WriteDoneContext", testWriteDoneContext},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newPair) })
	}
}

const bigLimit = 2 << 20

// pair makes a pair and closes both ends at the end of the test, at once:
// a close handshake waits for the other end, so closing one end after the
// other would wait for a timeout.
func pair(t *testing.T, newPair NewPair, readLimit int64) (a, b transport.Conn) {
	a, b = newPair(t, readLimit)
	t.Cleanup(func() { closeBoth(a, b) })
	return a, b
}

func closeBoth(a, b transport.Conn) {
	var wg sync.WaitGroup
	wg.Go(func() { a.Close(transport.CloseNormal, "test over") })
	wg.Go(func() { b.Close(transport.CloseNormal, "test over") })
	wg.Wait()
}

// ctx bounds every case, so that a hung implementation fails instead of
// stalling the whole test binary.
func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func frames() [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	fs := [][]byte{{}, {0x01}, []byte("hello"), big, {}, bytes.Repeat([]byte{0xff}, 70_000)}
	for i := range 50 {
		fs = append(fs, fmt.Appendf(nil, "frame %d", i))
	}
	return fs
}

// send writes frames from its own goroutine (a bounded buffer would
// otherwise block the test) and reports the first error on the returned
// channel.
func send(ctx context.Context, c transport.Conn, fs [][]byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		for _, f := range fs {
			if err := c.Write(ctx, f); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

func expect(t *testing.T, ctx context.Context, c transport.Conn, fs [][]byte) {
	t.Helper()
	for i, want := range fs {
		got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("Read frame %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d: got %d bytes %.20q, want %d bytes %.20q", i, len(got), got, len(want), want)
		}
	}
}

func testOrder(t *testing.T, newPair NewPair) {
	ctx := ctx(t)
	a, b := pair(t, newPair, bigLimit)
	fs := frames()
	for _, dir := range []struct{ from, to transport.Conn }{{a, b}, {b, a}} {
		done := send(ctx, dir.from, fs)
		expect(t, ctx, dir.to, fs)
		if err := <-done; err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
}

func testReuse(t *testing.T, newPair NewPair) {
	ctx := ctx(t)
	a, b := pair(t, newPair, bigLimit)
	buf := []byte("first")
	if err := a.Write(ctx, buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX")
	if err := a.Write(ctx, []byte("second")); err != nil {
		t.Fatal(err)
	}
	expect(t, ctx, b, [][]byte{[]byte("first"), []byte("second")})
}

// testFullDuplex has both ends write and read at once, each with one
// reader and one writer goroutine, as a sync session does.
func testFullDuplex(t *testing.T, newPair NewPair) {
	ctx := ctx(t)
	a, b := pair(t, newPair, bigLimit)
	const n = 500
	mk := func(side string) [][]byte {
		fs := make([][]byte, n)
		for i := range fs {
			fs[i] = fmt.Appendf(nil, "%s %d %s", side, i, bytes.Repeat([]byte{'.'}, i*7))
		}
		return fs
	}
	fromA, fromB := mk("a"), mk("b")
	doneA, doneB := send(ctx, a, fromA), send(ctx, b, fromB)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	read := func(c transport.Conn, want [][]byte) {
		for i, w := range want {
			got, err := c.Read(ctx)
			if err != nil {
				errs <- fmt.Errorf("read %d: %w", i, err)
				return
			}
			if !bytes.Equal(got, w) {
				errs <- fmt.Errorf("frame %d: got %.30q, want %.30q", i, got, w)
				return
			}
		}
	}
	wg.Go(func() { read(b, fromA) })
	wg.Go(func() { read(a, fromB) })
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, d := range []<-chan error{doneA, doneB} {
		if err := <-d; err != nil {
			t.Errorf("Write: %v", err)
		}
	}
}

// testClose: frames sent before Close arrive, then the peer sees the code
// and reason, and keeps seeing them.
func testClose(t *testing.T, newPair NewPair) {
	ctx := ctx(t)
	a, b := pair(t, newPair, bigLimit)
	fs := [][]byte{[]byte("one"), {}, []byte("three")}
	if err := <-send(ctx, a, fs); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- a.Close(transport.ClosePolicyViolation, "token expired") }()
	expect(t, ctx, b, fs)
	for range 2 {
		_, err := b.Read(ctx)
		var ce *transport.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("Read after peer Close: %v, want a *transport.CloseError", err)
		}
		if ce.Code != transport.ClosePolicyViolation || ce.Reason != "token expired" {
			t.Fatalf("CloseError = %d %q, want %d %q", ce.Code, ce.Reason, transport.ClosePolicyViolation, "token expired")
		}
		if !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("%v does not wrap ErrClosed", err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(transport.CloseNormal, ""); err != nil {
		t.Fatalf("Close after the peer's Close: %v", err)
	}
}

// testCloseUnblocksRead: Close from another goroutine ends a Read that is
// waiting, on this end, and the peer learns why.
func testCloseUnblocksRead(t *testing.T, newPair NewPair) {
	ctx := ctx(t)
	a, b := pair(t, newPair, bigLimit)
	readA := make(chan error, 1)
	go func() {
		_, err := a.Read(ctx)
		readA <- err
	}()
	readB := make(chan error, 1)
	go func() {
		_, err := b.Read(ctx)
		readB <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the Reads block; the test is valid either way
	if err := a.Close(transport.CloseGoingAway, "shutting down"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-readA; !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Read on the closed end: %v, want ErrClosed", err)
	}
	err := <-readB
	var ce *transport.CloseError
	if !errors.As(err, &ce) || ce.Code != transport.CloseGoingAway || ce.Reason != "shutting down" {
		t.Fatalf("peer's Read: %v, want CloseError 1001 \"shutting down\"", err)
	}
}

// testAfterClose: once closed, an end reads and writes nothing, and its
// peer, once it has seen the close, writes nothing.
func testAfterClose(t *testing.T, newPair NewPair) {
	ctx := ctx(t)
	a, b := pair(t, newPair, bigLimit)
	go func() { b.Read(ctx) }() // answers a's close handshake, if the transport has one
	if err := a.Close(transport.CloseNormal, "bye"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := a.Write(ctx, []byte("late")); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if _, err := a.Read(ctx); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("Read after Close: %v, want ErrClosed", err)
	}
	if err := a.Close(transport.CloseNormal, "again"); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}

	c, d := pair(t, newPair, bigLimit)
	go func() { c.Close(transport.CloseNormal, "bye") }()
	var ce *transport.CloseError
	if _, err := d.Read(ctx); !errors.As(err, &ce) {
		t.Fatalf("Read: %v, want CloseError", err)
	}
	if err := d.Write(ctx, []byte("late")); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("Write after the peer's Close: %v, want ErrClosed", err)
	}
}

// testReadLimit: a frame of exactly the limit passes; one byte more ends
// the connection with CloseTooBig.
func testReadLimit(t *testing.T, newPair NewPair) {
	ctx := ctx(t)
	const limit = 1024
	a, b := pair(t, newPair, limit)
	fs := [][]byte{bytes.Repeat([]byte{'a'}, limit), bytes.Repeat([]byte{'b'}, limit+1)}
	written := send(ctx, a, fs)
	expect(t, ctx, b, fs[:1])
	readB := make(chan error, 1)
	go func() {
		_, err := b.Read(ctx)
		readB <- err
	}()
	_, err := a.Read(ctx)
	var ce *transport.CloseError
	if !errors.As(err, &ce) || ce.Code != transport.CloseTooBig {
		t.Fatalf("writer's Read: %v, want CloseError %d", err, transport.CloseTooBig)
	}
	err = <-readB
	if !errors.Is(err, transport.ErrTooBig) || !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("reader's Read: %v, want ErrTooBig and ErrClosed", err)
	}
	<-written // the big Write may succeed or fail: the frame left, or the reader was gone
}

func testWriteDoneContext(t *testing.T, newPair NewPair) {
	a, b := pair(t, newPair, bigLimit)
	done, cancel := context.WithCancel(t.Context())
	cancel()
	if err := a.Write(done, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with a canceled context: %v, want context.Canceled", err)
	}
	// Nothing was sent, and the connection still works.
	ctx := ctx(t)
	if err := a.Write(ctx, []byte("y")); err != nil {
		t.Fatal(err)
	}
	expect(t, ctx, b, [][]byte{[]byte("y")})
}
