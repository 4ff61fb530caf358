package ws_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/converge-sync/converge/internal/cputime"
	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/ws"
)

// BenchmarkPacedFrames measures what it costs this machine to move one small
// frame over a loopback WebSocket when frames come one at a time: 1,000
// connections, a frame every few milliseconds on each, written by a goroutine
// woken for it and read by a goroutine waiting for it, as a sync server and
// its clients do. Nothing is decoded or stored, so the figure is a floor for
// any server on this machine that sends each subscriber its own frame per
// edit: the CPU time of both ends (this process is both) per frame, and the
// cores that takes at the given rate.
//
// The same over bare TCP (a frame is one write and one read, no WebSocket)
// is the floor for any transport.
//
// The sync load of bench/README.md ("Sync servers under load") at E edits
// a second on documents of ten clients moves about 11 E frames a second
// (nine relays, the sender's Ack and the edit itself); the two rates here
// are those of 5,000 and 12,000 edits a second.
//
//	go test -run '^$' -bench PacedFrames -benchtime 300000x ./transport/ws
func BenchmarkPacedFrames(b *testing.B) {
	for _, via := range []string{"ws", "tcp"} {
		for _, rate := range []int{55_000, 132_000} {
			b.Run(fmt.Sprintf("via=%s/rate=%d", via, rate), func(b *testing.B) {
				pacedFrames(b, via, 1000, rate, 64)
			})
		}
	}
}

// framePipe is one connection of the benchmark: write sends a frame, read
// waits for what comes and says how many bytes it was.
type framePipe struct {
	write func(ctx context.Context, frame []byte) error
	read  func(ctx context.Context) (int, error)
	close func()
}

func wsPipes(ctx context.Context, b *testing.B, n int) []framePipe {
	url, accepted := server(b, ws.AcceptOptions{})
	pipes := make([]framePipe, n)
	for i := range pipes {
		reader, err := ws.Dial(ctx, url, ws.DialOptions{})
		if err != nil {
			b.Fatal(err)
		}
		writer := <-accepted
		pipes[i] = framePipe{
			write: writer.Write,
			read: func(ctx context.Context) (int, error) {
				frame, err := reader.Read(ctx)
				return len(frame), err
			},
			close: func() { writer.Close(transport.CloseNormal, "") },
		}
	}
	return pipes
}

func tcpPipes(b *testing.B, n int) []framePipe {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	pipes := make([]framePipe, n)
	for i := range pipes {
		reader, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		writer, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 4096)
		pipes[i] = framePipe{
			write: func(_ context.Context, frame []byte) error {
				_, err := writer.Write(frame)
				return err
			},
			read:  func(context.Context) (int, error) { return reader.Read(buf) },
			close: func() { writer.Close(); reader.Close() },
		}
	}
	return pipes
}

func pacedFrames(b *testing.B, via string, conns, rate, size int) {
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	var pipes []framePipe
	if via == "ws" {
		pipes = wsPipes(ctx, b, conns)
	} else {
		pipes = tcpPipes(b, conns)
	}
	var readers sync.WaitGroup
	received := make(chan int, conns)
	for _, p := range pipes {
		readers.Add(1)
		go func() {
			defer readers.Done()
			bytes := 0
			for {
				n, err := p.read(ctx)
				bytes += n
				if err != nil {
					received <- bytes
					return
				}
			}
		}()
	}

	// Each writer goroutine sleeps until the pacer wakes it for one frame,
	// as a server's connection is woken when a change is queued for it.
	frame := make([]byte, size)
	wake := make([]chan struct{}, conns)
	var written sync.WaitGroup
	for i, p := range pipes {
		wake[i] = make(chan struct{}, 1)
		written.Add(1)
		go func() {
			defer written.Done()
			for range wake[i] {
				if err := p.write(ctx, frame); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}

	b.ResetTimer()
	start, cpu0 := time.Now(), cputime.Used()
	perTick := max(1, rate/1000)
	tick := time.NewTicker(time.Millisecond)
	next := 0
	for sent := 0; sent < b.N; {
		<-tick.C
		for k := 0; k < perTick && sent < b.N; k++ {
			select {
			case wake[next] <- struct{}{}:
				sent++
			default: // that connection is still writing its last frame
			}
			next = (next + 1) % conns
		}
	}
	tick.Stop()
	for _, ch := range wake {
		close(ch)
	}
	written.Wait()
	elapsed, cpu := time.Since(start), cputime.Used()-cpu0
	b.StopTimer()

	cancel()
	for _, p := range pipes {
		p.close()
	}
	readers.Wait()
	got := 0
	for range conns {
		got += <-received
	}
	if got/size < b.N*9/10 {
		b.Fatalf("read %d bytes, %d frames' worth, of %d frames sent", got, got/size, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "frames/s")
	b.ReportMetric(cpu.Seconds()*1e6/float64(b.N), "cpu-µs/frame")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cores")
}
