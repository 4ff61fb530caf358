package converge_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/pipe"
)

// countingConn counts the bytes of the frames it carries.
type countingConn struct {
	transport.Conn
	in, out *atomic.Int64
}

func (c countingConn) Read(ctx context.Context) ([]byte, error) {
	f, err := c.Conn.Read(ctx)
	c.in.Add(int64(len(f)))
	return f, err
}

func (c countingConn) Write(ctx context.Context, f []byte) error {
	c.out.Add(int64(len(f)))
	return c.Conn.Write(ctx, f)
}

// typedServer returns a server replica (in a temporary folder, on the
// default store) holding one document typed one keystroke per change, n
// changes in all, as another replica made them.
func typedServer(tb testing.TB, n int) (*converge.Replica, *converge.Doc) {
	tb.Helper()
	ctx := context.Background()
	writer, err := converge.Open(ctx, tb.TempDir(), converge.WithBatchedWrites())
	if err != nil {
		tb.Fatal(err)
	}
	defer writer.Close()
	w, _ := writer.Doc(ctx, "essay")
	if err := w.Change(ctx, func(tx *converge.Txn) error { return tx.Set("/text", converge.Text("")) }); err != nil {
		tb.Fatal(err)
	}
	for i := 1; i < n; i++ {
		if err := w.Change(ctx, func(tx *converge.Txn) error {
			return tx.Splice("/text", i-1, 0, string(rune('a'+i%26)))
		}); err != nil {
			tb.Fatal(err)
		}
	}
	server, err := converge.Open(ctx, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { server.Close() })
	sd, _ := server.Doc(ctx, "essay")
	if err := sd.Merge(ctx, w.ChangesSince(nil)...); err != nil {
		tb.Fatal(err)
	}
	return server, sd
}

// catchUp syncs an empty replica with server over a pipe until it holds
// everything; it returns the time taken and the bytes carried both ways.
func catchUp(tb testing.TB, server *converge.Replica) (*converge.Replica, time.Duration, int64) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client, err := converge.Open(ctx, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { client.Close() })
	var in, out atomic.Int64
	served := make(chan struct{})
	dial := func(context.Context) (transport.Conn, error) {
		a, b := pipe.New()
		go func() {
			defer close(served)
			server.Serve(ctx, b, converge.ServeConfig{Role: syncproto.RoleServer})
		}()
		return countingConn{Conn: a, in: &in, out: &out}, nil
	}
	start := time.Now()
	s, err := client.Sync(ctx, "pipe", converge.SyncDocs("essay"), converge.SyncDialer(dial))
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.WaitSynced(ctx); err != nil {
		tb.Fatal(err)
	}
	took := time.Since(start)
	s.Stop()
	cancel()
	<-served
	return client, took, in.Load() + out.Load()
}

func TestCatchUpAfterManyChanges(t *testing.T) {
	const n = 5000
	server, sd := typedServer(t, n)
	client, _, bytes := catchUp(t, server)
	cd, _ := client.Doc(context.Background(), "essay")
	want, _ := sd.JSON("")
	if got, _ := cd.JSON(""); string(got) != string(want) || len(cd.History()) != n {
		t.Fatalf("caught up to %d changes, %d bytes of JSON; want %d, %d", len(cd.History()), len(got), n, len(want))
	}
	// The stream form keeps a keystroke near 20 bytes on the wire.
	if per := float64(bytes) / n; per > 40 {
		t.Fatalf("%.1f bytes per change on the wire", per)
	}
}

// BenchmarkCatchUp100k: a replica that was offline while 100,000 changes
// (keystrokes) were made elsewhere syncs with a server that holds them:
// the time until it holds everything (durable in its own store) and the
// bytes exchanged.
func BenchmarkCatchUp100k(b *testing.B) {
	const n = 100_000
	server, _ := typedServer(b, n)
	b.ResetTimer()
	var total int64
	for range b.N {
		_, _, bytes := catchUp(b, server)
		total += bytes
	}
	b.ReportMetric(float64(total)/float64(b.N), "bytes/op")
	b.ReportMetric(float64(total)/float64(b.N)/n, "bytes/change")
}
