package load

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/converge-sync/converge/server"
)

// serve runs a converge server on a loopback port until the test ends and
// returns its sync URL.
func serve(t *testing.T) (string, *server.Server) {
	t.Helper()
	srv, err := server.New(server.Config{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return "ws://" + ln.Addr().String() + server.SyncPath, srv
}

func TestEveryEditReachesEveryOtherClient(t *testing.T) {
	url, srv := serve(t)
	var progress int
	res, err := Run(context.Background(), Config{URL: url, Clients: 12, Docs: 3, Rate: 20,
		Duration: 700 * time.Millisecond, Progress: func(Progress) { progress++ }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Lost != 0 {
		t.Fatalf("errors %d (%s), lost %d", res.Errors, res.FirstError, res.Lost)
	}
	// 4 clients per document: each edit reaches the 3 others.
	if res.Edits == 0 || res.Deliveries != 3*res.Edits || res.Expected != res.Deliveries {
		t.Fatalf("edits %d, deliveries %d, expected %d", res.Edits, res.Deliveries, res.Expected)
	}
	// About 12 clients × 20/s × 0.7 s; the schedule ends before the 169th.
	if res.Edits < 100 || res.Edits > 168 {
		t.Errorf("%d edits made; the schedule holds 168", res.Edits)
	}
	if !(res.P50Ms > 0 && res.P50Ms <= res.P99Ms && res.P99Ms <= res.MaxMs) {
		t.Errorf("latencies out of order: p50 %v p99 %v max %v", res.P50Ms, res.P99Ms, res.MaxMs)
	}
	if res.DeliveredPerS < 0.99*res.EditsPerS || res.DeliveredPerS > 1.01*res.EditsPerS {
		t.Errorf("delivered %.1f edits/s of %.1f made", res.DeliveredPerS, res.EditsPerS)
	}
	if progress > 1 {
		t.Errorf("progress reported %d times in 0.7 s", progress)
	}
	// The server holds every edit: each document's text has one character
	// per edit made to it.
	var chars int
	for i := range 3 {
		d, err := srv.Replica().Doc(context.Background(), res.docPrefix+string(rune('0'+i)))
		if err != nil {
			t.Fatal(err)
		}
		s, err := d.Get("/text")
		if err != nil {
			t.Fatal(err)
		}
		chars += len(s.(string))
	}
	if uint64(chars) != res.Edits {
		t.Errorf("the server's texts hold %d characters; %d edits were made", chars, res.Edits)
	}
}

func TestNoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = Run(context.Background(), Config{URL: "ws://" + addr + "/v1/sync", Clients: 2, Docs: 1, Rate: 1,
		Duration: time.Second, ConnectTimeout: 5 * time.Second})
	if err == nil {
		t.Fatal("a run with no server to connect to succeeded")
	}
}

func TestConfigChecked(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "ws://x", Clients: 0, Docs: 1, Rate: 1, Duration: time.Second},
		{URL: "ws://x", Clients: 2, Docs: 3, Rate: 1, Duration: time.Second},
		{URL: "ws://x", Clients: 2, Docs: 1, Rate: 0, Duration: time.Second},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
