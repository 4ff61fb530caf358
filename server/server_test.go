package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/converge-sync/converge"
)

var quiet = slog.New(slog.DiscardHandler)

// testServer is a Server serving on a loopback port until the test ends.
type testServer struct {
	*Server
	addr   string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func startT(t *testing.T, dir string, cfg Config) *testServer {
	t.Helper()
	cfg.DataDir = dir
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: srv, addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop shuts the server down and returns what Serve returned.
func (ts *testServer) stop(t *testing.T) error {
	ts.once.Do(func() {
		ts.cancel()
		select {
		case ts.err = <-ts.done:
		case <-time.After(20 * time.Second):
			t.Error("the server did not shut down")
		}
	})
	return ts.err
}

func (ts *testServer) syncURL() string { return "ws://" + ts.addr + SyncPath }
func (ts *testServer) url(path string) string {
	return "http://" + ts.addr + path
}

func openT(t *testing.T) *converge.Replica {
	t.Helper()
	r, err := converge.Open(context.Background(), t.TempDir(), converge.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func syncT(t *testing.T, r *converge.Replica, ts *testServer, opts ...converge.SyncOption) *converge.Syncer {
	t.Helper()
	opts = append([]converge.SyncOption{converge.SyncBackoff(10*time.Millisecond, 100*time.Millisecond)}, opts...)
	s, err := r.Sync(context.Background(), ts.syncURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func waitSynced(t *testing.T, ss ...*converge.Syncer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range ss {
		if err := s.WaitSynced(ctx); err != nil {
			t.Fatalf("not synced: %v (status %+v)", err, s.Status())
		}
	}
}

func docT(t *testing.T, r *converge.Replica, id string) *converge.Doc {
	t.Helper()
	d, err := r.Doc(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func setT(t *testing.T, d *converge.Doc, pointer string, v any) {
	t.Helper()
	if err := d.Change(context.Background(), func(tx *converge.Txn) error { return tx.Set(pointer, v) }); err != nil {
		t.Fatal(err)
	}
}

func jsonT(t *testing.T, d *converge.Doc) string {
	t.Helper()
	b, err := d.JSON("")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// eventually polls cond for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// get fetches url and returns the status, Content-Type and body.
// serveGet serves a GET of path by srv's handler, without a listener, and
// returns the status and the body.
func serveGet(srv *Server, path string) (int, string) {
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// upload syncs docs (ID → value of /v) to ts from a fresh replica and
// disconnects.
func upload(t *testing.T, ts *testServer, docs map[string]any) {
	t.Helper()
	r := openT(t)
	for id, v := range docs {
		setT(t, docT(t, r, id), "/v", v)
	}
	s := syncT(t, r, ts)
	waitSynced(t, s)
	s.Stop()
}

func TestTwoReplicasConvergeThroughServer(t *testing.T) {
	ts := startT(t, t.TempDir(), Config{})
	a, b := openT(t), openT(t)
	da, db := docT(t, a, "notes/a"), docT(t, b, "notes/a")
	setT(t, da, "/title", "from a")
	setT(t, db, "/body", "from b")
	setT(t, db, "/title", "b's title") // concurrent with a's: both kept, one shown
	sa, sb := syncT(t, a, ts), syncT(t, b, ts)
	waitSynced(t, sa, sb)
	eventually(t, "both replicas to hold both edits", func() bool {
		return jsonT(t, da) == jsonT(t, db) && strings.Contains(jsonT(t, da), "from b") && len(da.Conflicts()) == 1
	})

	// Live: an edit reaches the other replica through the server.
	setT(t, da, "/title", "resolved by a")
	eventually(t, "a's live edit at b", func() bool { return strings.Contains(jsonT(t, db), "resolved by a") })
	waitSynced(t, sa, sb)
	if ja, jb := jsonT(t, da), jsonT(t, db); ja != jb {
		t.Fatalf("diverged: %s vs %s", ja, jb)
	}
	if !sa.Status().Connected || !sb.Status().Connected {
		t.Fatal("not connected")
	}
}

func TestGetDoc(t *testing.T) {
	ts := startT(t, t.TempDir(), Config{})
	odd := "odd//id/../x" // ServeMux would clean this path
	upload(t, ts, map[string]any{"notes/a": "hello", "plain": 1.5, odd: true})

	for _, path := range []string{"notes%2Fa", "notes/a", "notes%2fa"} {
		status, ctype, body := get(t, ts.url(DocsPath+path))
		if status != http.StatusOK || ctype != "application/json" || body != `{"v":"hello"}` {
			t.Errorf("GET %s: %d %q %s", path, status, ctype, body)
		}
	}
	if status, _, body := get(t, ts.url(DocsPath+"plain")); status != 200 || body != `{"v":1.5}` {
		t.Errorf("GET plain: %d %s", status, body)
	}
	for _, path := range []string{url.PathEscape(odd), odd} {
		if status, _, body := get(t, ts.url(DocsPath+path)); status != 200 || body != `{"v":true}` {
			t.Errorf("GET %s: %d %s", path, status, body)
		}
	}

	status, ctype, body := get(t, ts.url(DocsPath+"nope"))
	var e struct{ Error, Code string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || status != 404 || ctype != "application/json" ||
		e.Code != "not_found" || !strings.Contains(e.Error, "nope") {
		t.Errorf("GET unknown: %d %q %s (%v)", status, ctype, body, err)
	}
	for _, path := range []string{"", "%FF"} { // no ID; not UTF-8
		if status, _, body := get(t, ts.url(DocsPath+path)); status != 400 || !strings.Contains(body, `"code":"bad_request"`) {
			t.Errorf("GET %q: %d %s", path, status, body)
		}
	}
	resp, err := http.Post(ts.url(DocsPath+"plain"), "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

func TestHealth(t *testing.T) {
	srv, err := New(Config{DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	h := httptest.NewServer(srv.Handler())
	defer h.Close()
	if status, _, body := get(t, h.URL+HealthPath); status != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", status, body)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := get(t, h.URL+HealthPath); status != http.StatusServiceUnavailable {
		t.Fatalf("healthz after Close: %d", status)
	}
	// A store that stopped answering, with the server still up.
	srv2, err := New(Config{DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	srv2.Replica().Store().Close()
	if code, _ := serveGet(srv2, HealthPath); code != http.StatusServiceUnavailable {
		t.Fatalf("healthz with a closed store: %d", code)
	}
}

// metricValue returns the value of an unlabelled sample in a Prometheus
// text exposition.
func metricValue(t *testing.T, text, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no sample %s in:\n%s", name, text)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMetrics(t *testing.T) {
	ts := startT(t, t.TempDir(), Config{})
	a, b := openT(t), openT(t)
	da, db := docT(t, a, "m"), docT(t, b, "m")
	sa, sb := syncT(t, a, ts), syncT(t, b, ts)
	waitSynced(t, sa, sb)
	setT(t, da, "/x", 1)
	setT(t, da, "/y", 2)
	eventually(t, "b to get a's changes", func() bool { return jsonT(t, db) == `{"x":1,"y":2}` })
	waitSynced(t, sa)

	_, ctype, text := get(t, ts.url(MetricsPath))
	if !strings.HasPrefix(ctype, "text/plain") {
		t.Errorf("Content-Type %q", ctype)
	}
	for _, name := range []string{"converge_fanout_seconds_bucket", "converge_store_write_seconds_bucket",
		"converge_refusals_total", "go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(text, name) {
			t.Errorf("no %s", name)
		}
	}
	if v := metricValue(t, text, "converge_connections"); v != 2 {
		t.Errorf("connections %v", v)
	}
	if v := metricValue(t, text, "converge_connections_total"); v != 2 {
		t.Errorf("connections_total %v", v)
	}
	if v := metricValue(t, text, "converge_docs_in_memory"); v != 1 {
		t.Errorf("docs_in_memory %v", v)
	}
	if v := metricValue(t, text, "converge_changes_in_total"); v != 2 {
		t.Errorf("changes_in %v", v)
	}
	if v := metricValue(t, text, "converge_changes_out_total"); v != 2 {
		t.Errorf("changes_out %v", v)
	}
	if v := metricValue(t, text, "converge_fanout_seconds_count"); v < 1 {
		t.Errorf("fanout count %v", v)
	}
	if v := metricValue(t, text, "converge_store_write_seconds_count"); v < 1 {
		t.Errorf("store write count %v", v)
	}
}

func TestShutdownSendsGoingAwayAndDataSurvives(t *testing.T) {
	dir := t.TempDir()
	ts := startT(t, dir, Config{})
	a := openT(t)
	da := docT(t, a, "notes/kept")
	setT(t, da, "/v", "durable")
	// A long backoff: no reconnection attempt replaces the error seen.
	sa := syncT(t, a, ts, converge.SyncBackoff(time.Minute, time.Minute))
	waitSynced(t, sa)

	if err := ts.stop(t); err != nil {
		t.Fatalf("Serve returned %v", err)
	}
	eventually(t, "the client to see the connection end", func() bool { return !sa.Status().Connected })
	if err := sa.Status().LastErr; err == nil || !strings.Contains(err.Error(), "going_away") {
		t.Fatalf("the client's last error is %v, want going_away", err)
	}

	// A new server on the same folder holds the document.
	ts2 := startT(t, dir, Config{})
	if status, _, body := get(t, ts2.url(DocsPath+"notes%2Fkept")); status != 200 || body != `{"v":"durable"}` {
		t.Fatalf("after restart: %d %s", status, body)
	}
}

func TestEvictionBudget(t *testing.T) {
	dir := t.TempDir()
	docs := map[string]any{}
	for i := range 5 {
		docs["d"+strconv.Itoa(i)] = i
	}
	ts := startT(t, dir, Config{})
	upload(t, ts, docs)
	ts.stop(t)

	ts = startT(t, dir, Config{MaxDocsInMemory: 1, syncGrace: 20 * time.Millisecond, evictInterval: 10 * time.Millisecond})
	r := ts.Replica()
	for i := range 5 {
		status, _, body := get(t, ts.url(DocsPath+"d"+strconv.Itoa(i)))
		if want := `{"v":` + strconv.Itoa(i) + `}`; status != 200 || body != want {
			t.Fatalf("GET d%d: %d %s", i, status, body)
		}
		if n := r.Loaded(); n > 1 {
			t.Fatalf("after GET d%d: %d documents in memory, budget 1", i, n)
		}
	}
	if v := metricValue(t, func() string { _, _, s := get(t, ts.url(MetricsPath)); return s }(), "converge_evictions_total"); v != 4 {
		t.Errorf("evictions %v, want 4", v)
	}

	// Documents a connection follows stay, over the budget; once it is
	// gone they go.
	c := openT(t)
	for id := range docs {
		docT(t, c, id)
	}
	s := syncT(t, c, ts)
	waitSynced(t, s)
	time.Sleep(50 * time.Millisecond) // past the grace, a few sweeps
	if n := r.Loaded(); n != 5 {
		t.Fatalf("%d documents in memory while a connection follows 5", n)
	}
	s.Stop()
	eventually(t, "eviction after the connection ended", func() bool { return r.Loaded() <= 1 })
}
