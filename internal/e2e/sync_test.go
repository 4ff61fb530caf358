package e2e

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/converge-sync/converge"
)

// syncOnce runs `converge sync --once` for each replica folder in turn,
// for the named documents (a new replica must name the documents it wants;
// one that has them syncs them all).
func syncOnce(t *testing.T, s *server, docs []string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		run(t, append([]string{"sync", "--replica", d, "--server", s.url(), "--once"}, docs...)...)
	}
}

func get(t *testing.T, dir, doc string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "doc", "get", "--replica", dir, doc))
}

// Three replicas edit one document (map keys, a text, a counter) while the
// server is down, then sync: all three and the server hold the same
// document, and the concurrent sets are a conflict on every replica.
func TestThreeReplicasEditOfflineThenConverge(t *testing.T) {
	data := filepath.Join(t.TempDir(), "server")
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	srv := startServer(t, data, "")
	run(t, "doc", "text", "--replica", a, "trip", "/notes", "Pack light.")
	run(t, "doc", "incr", "--replica", a, "trip", "/votes", "1")
	syncOnce(t, srv, []string{"trip"}, a, b, c)
	if got := get(t, c, "trip"); got != `{"notes":"Pack light.","votes":1}` {
		t.Fatalf("c starts from %s", got)
	}
	addr := srv.addr
	srv.stop()

	// Offline.
	for i, dir := range []string{a, b, c} {
		name := []string{"ana", "ben", "cy"}[i]
		run(t, "doc", "set", "--replica", dir, "trip", "/dest", `"`+[]string{"Porto", "Oslo", "Rome"}[i]+`"`)
		run(t, "doc", "set", "--replica", dir, "trip", "/by_"+name, "true")
		run(t, "doc", "splice", "--replica", dir, "trip", "/notes", "0", "0", name+": ")
		run(t, "doc", "incr", "--replica", dir, "trip", "/votes", "1")
	}

	srv = startServer(t, data, addr)
	syncOnce(t, srv, nil, a, b, c, a, b) // the last two fetch what came after them
	want := get(t, a, "trip")
	for _, dir := range []string{b, c} {
		if got := get(t, dir, "trip"); got != want {
			t.Fatalf("replicas differ:\n%s\n%s", want, got)
		}
	}
	if code, got := srv.getDoc("trip"); code != 200 || got != want {
		t.Fatalf("server holds %d %s, replicas %s", code, got, want)
	}
	for _, part := range []string{`"by_ana":true`, `"by_ben":true`, `"by_cy":true`, `"votes":4`, "ana: ", "ben: ", "cy: ", "Pack light."} {
		if !strings.Contains(want, part) {
			t.Fatalf("converged document lacks %q: %s", part, want)
		}
	}
	for _, dir := range []string{a, b, c} {
		conf := run(t, "doc", "conflicts", "--replica", dir, "trip")
		for _, city := range []string{"Porto", "Oslo", "Rome"} {
			if !strings.Contains(conf, city) {
				t.Fatalf("the concurrent /dest sets should be one conflict on every replica; got %q", conf)
			}
		}
	}
}

// The server's data folder is deleted and the server restarted: after the
// replicas sync, the server holds everything again.
func TestServerRebuiltFromReplicas(t *testing.T) {
	data := filepath.Join(t.TempDir(), "server")
	a, b := t.TempDir(), t.TempDir()
	srv := startServer(t, data, "")
	run(t, "doc", "set", "--replica", a, "notes/a", "/x", "1")
	run(t, "doc", "set", "--replica", b, "notes/b", "/y", "2")
	syncOnce(t, srv, []string{"notes/a", "notes/b"}, a, b, a)
	srv.stop()
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	srv = startServer(t, data, "")
	if code, _ := srv.getDoc("notes/a"); code != 404 {
		t.Fatalf("a wiped server answered %d", code)
	}
	syncOnce(t, srv, nil, a, b)
	for id, want := range map[string]string{"notes/a": `{"x":1}`, "notes/b": `{"y":2}`} {
		if code, got := srv.getDoc(id); code != 200 || got != want {
			t.Fatalf("rebuilt server: %s = %d %s, want %s", id, code, got, want)
		}
	}
}

// Two replicas sync directly: one replica's folder is served as it is.
func TestTwoReplicasDirectly(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	run(t, "doc", "set", "--replica", a, "d", "/from_a", "1")
	run(t, "doc", "set", "--replica", b, "d", "/from_b", "2")
	srv := startServer(t, b, "")
	syncOnce(t, srv, nil, a)
	srv.stop()
	want := `{"from_a":1,"from_b":2}`
	if got := get(t, a, "d"); got != want {
		t.Fatalf("a: %s", got)
	}
	if got := get(t, b, "d"); got != want {
		t.Fatalf("b: %s", got)
	}
}

// countingProxy forwards TCP connections to target and counts the bytes.
type countingProxy struct {
	ln    net.Listener
	bytes atomic.Int64
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	p := &countingProxy{}
	p.ln = proxyTCP(t, target, func(c, s net.Conn) {
		pipe := func(dst, src net.Conn) {
			n, _ := io.Copy(dst, src)
			p.bytes.Add(n)
			dst.Close()
			src.Close()
		}
		go pipe(s, c)
		go pipe(c, s)
	})
	return p
}

// proxyTCP listens on a free loopback port and, for each connection,
// dials target and hands both ends to forward; a connection made while
// target is down is closed (the client sees a reset). The listener closes
// when the test ends.
func proxyTCP(t *testing.T, target string, forward func(client, server net.Conn)) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			forward(c, s)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln
}

// A replica offline while 100,000 changes happen elsewhere catches up.
func TestCatchUpAfter100kChanges(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	data := filepath.Join(t.TempDir(), "server")
	writer, late := t.TempDir(), t.TempDir()
	srv := startServer(t, data, "")
	run(t, "doc", "text", "--replica", late, "essay", "/text", "")
	run(t, "sync", "--replica", late, "--server", srv.url(), "--once")
	run(t, "sync", "--replica", writer, "--server", srv.url(), "--once", "essay")

	// Elsewhere, one keystroke per change (made with the library: a
	// process per keystroke would measure process start-up).
	ctx := context.Background()
	r, err := converge.Open(ctx, writer, converge.WithBatchedWrites())
	if err != nil {
		t.Fatal(err)
	}
	d, _ := r.Doc(ctx, "essay")
	for i := range n {
		if err := d.Change(ctx, func(tx *converge.Txn) error {
			return tx.Splice("/text", i, 0, string(rune('a'+i%26)))
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	run(t, "sync", "--replica", writer, "--server", srv.url(), "--once", "--timeout", "2m")

	proxy := newCountingProxy(t, srv.addr)
	start := time.Now()
	run(t, "sync", "--replica", late, "--server", "http://"+proxy.ln.Addr().String(), "--once", "--timeout", "2m")
	took := time.Since(start)
	time.Sleep(50 * time.Millisecond) // let the proxy count the close
	got := get(t, late, "essay")
	if len(got) != len(`{"text":""}`)+n {
		t.Fatalf("caught up to %d bytes of JSON, want %d", len(got), len(`{"text":""}`)+n)
	}
	if want := get(t, writer, "essay"); got != want {
		t.Fatal("the late replica differs from the writer")
	}
	t.Logf("catch-up of %d changes with `converge sync --once` (process start to exit, over WebSocket): %v, %d bytes on the wire (%.1f per change)",
		n, took.Round(time.Millisecond), proxy.bytes.Load(), float64(proxy.bytes.Load())/float64(n))
}
