package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/internal/logbuf"
	"github.com/converge-sync/converge/store"
	"github.com/converge-sync/converge/store/memory"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/ws"
)

// logBuffer collects a server's log lines (slog text) for assertions.
type logBuffer = logbuf.Buffer

// loggerTo is an info-level text logger writing to l.
func loggerTo(l *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// failingStore is a store whose writes fail while fail is set, as a full
// or broken disk makes them.
type failingStore struct {
	store.Store
	fail atomic.Bool
}

var errDiskFull = errors.New("disk full (injected)")

func (s *failingStore) Append(ctx context.Context, doc string, changes []store.Change) error {
	if s.fail.Load() {
		return errDiskFull
	}
	return s.Store.Append(ctx, doc, changes)
}

// A store write that fails on the server is the server's fault: the client
// is refused the document (unavailable) and acknowledged nothing, and the
// operator reads an error line naming the document, the peer and the cause.
// Once the store works again, the client's next connection delivers it all.
func TestStoreFailureLoggedNothingAcknowledged(t *testing.T) {
	fs := &failingStore{Store: memory.New()}
	logs := &logBuffer{}
	ts := startT(t, t.TempDir(), Config{Logger: loggerTo(logs), ReplicaOptions: []converge.Option{converge.WithStore(fs)}})

	a := openT(t)
	da := docT(t, a, "notes/disk")
	setT(t, da, "/before", 1)
	sa := syncT(t, a, ts)
	waitSynced(t, sa)

	fs.fail.Store(true)
	setT(t, da, "/during", 2)
	eventually(t, "the refusal", func() bool { return sa.Status().LastErr != nil })
	if st := sa.Status(); st.Unacknowledged == 0 {
		t.Fatalf("a change the server failed to store was acknowledged: %+v", st)
	}
	ln := logs.Line("level=ERROR", "store failed", "doc=notes/disk", "disk full (injected)", "peer=")
	if ln == "" {
		t.Fatalf("no error line naming the document and the cause; log:\n%s", logs)
	}
	// The client may have retried, and been refused again, by now.
	_, _, text := get(t, ts.url(MetricsPath))
	if strings.Contains(text, `converge_refusals_total{code="unavailable"} 0`) || !strings.Contains(text, `converge_refusals_total{code="unavailable"} `) {
		t.Errorf("the refusal is not counted as unavailable:\n%s", text)
	}
	if strings.Contains(text, "converge_store_write_errors_total 0") {
		t.Errorf("the failed store write is not counted:\n%s", text)
	}
	if code, _, body := get(t, ts.url(HealthPath)); code != http.StatusServiceUnavailable || !strings.Contains(body, "disk full (injected)") {
		t.Errorf("healthz while the store's writes fail: %d %q", code, body)
	}

	// The disk is back: a new connection resends what the server lacks.
	fs.fail.Store(false)
	sa.Stop()
	sa2 := syncT(t, a, ts)
	waitSynced(t, sa2)
	if code, _, body := get(t, ts.url(HealthPath)); code != 200 {
		t.Errorf("healthz once the store writes again: %d %q", code, body)
	}
	b := openT(t)
	db := docT(t, b, "notes/disk")
	waitSynced(t, syncT(t, b, ts))
	eventually(t, "the change to reach another replica", func() bool { return jsonT(t, db) == `{"before":1,"during":2}` })
}

// A data folder deleted (or its database replaced) under a running server
// does not stop SQLite, which goes on writing to the file it holds open,
// and that no restart will find: the health check says so.
func TestHealthStoreFileDeleted(t *testing.T) {
	dir := t.TempDir()
	logs := &logBuffer{}
	srv, err := New(Config{DataDir: dir, Logger: loggerTo(logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	health := func() (int, string) { return serveGet(srv, HealthPath) }
	if code, body := health(); code != http.StatusOK {
		t.Fatalf("healthz: %d %q", code, body)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	code, body := health()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "deleted or replaced") {
		t.Fatalf("healthz with the data folder deleted: %d %q", code, body)
	}
	if logs.Line("level=ERROR", "deleted or replaced", "replica.db") == "" {
		t.Fatalf("no error line; log:\n%s", logs)
	}
}

// A truncated database opens read-only (salvage mode): the server starts,
// so that the intact documents can be read out, but says at once that
// every write will fail, and reports unhealthy.
func TestSalvageModeLoggedAndUnhealthy(t *testing.T) {
	dir := t.TempDir()
	r, err := converge.Open(context.Background(), dir, converge.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		d := docT(t, r, fmt.Sprintf("doc/%d", i))
		setT(t, d, "/text", strings.Repeat("x", 2000))
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "replica.db")
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(db, fi.Size()/2); err != nil {
		t.Fatal(err)
	}

	logs := &logBuffer{}
	srv, err := New(Config{DataDir: dir, Logger: loggerTo(logs)})
	if err != nil {
		t.Fatalf("a truncated store should open for salvage: %v", err)
	}
	defer srv.Close()
	if logs.Line("level=ERROR", "salvage mode", "every write fails", "truncated") == "" {
		t.Fatalf("no error line at start naming salvage mode; log:\n%s", logs)
	}
	if code, body := serveGet(srv, HealthPath); code != http.StatusServiceUnavailable || !strings.Contains(body, "salvage") {
		t.Fatalf("healthz in salvage mode: %d %q", code, body)
	}
}

// A frame over --max-frame is cut by the WebSocket's read limit, before the
// session sees it: it is counted with the session's own frame_too_large
// refusals, and the connection's end is logged with the cause.
func TestFrameOverReadLimitCounted(t *testing.T) {
	logs := &logBuffer{}
	limits := syncproto.DefaultLimits
	limits.MaxFrame = 4096
	ts := startT(t, t.TempDir(), Config{Logger: loggerTo(logs), Limits: limits})
	conn, err := ws.Dial(context.Background(), ts.syncURL(), ws.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(transport.CloseNormal, "")
	go conn.Read(context.Background()) // answers the server's close at once
	if err := conn.Write(context.Background(), make([]byte, 10_000)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the connection's end", func() bool {
		return logs.Line("sync connection closed", "read limit") != ""
	})
	_, _, text := get(t, ts.url(MetricsPath))
	if !strings.Contains(text, `converge_refusals_total{code="frame_too_large"} 1`) {
		t.Errorf("the frame over the limit is not counted:\n%s", text)
	}
}

// A refused request is logged (at debug) as one JSON object whose keys are
// unique (its reason used to be logged under "msg", the key of the line's
// own message, so JSON readers kept one of the two), and whose code is the
// code's name, as in the response (it was logged as a number in JSON).
func TestRefusalLogKeysUnique(t *testing.T) {
	var buf logBuffer
	lg := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(Config{DataDir: t.TempDir(), Logger: lg, Auth: verifierT(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	req := httptest.NewRequest("GET", DocsPath+"a", nil)
	req.Header.Set("Authorization", "Bearer not-a-token")
	srv.Handler().ServeHTTP(httptest.NewRecorder(), req)
	ln := buf.Line(`"code":"unauthorized"`)
	if ln == "" {
		t.Fatalf("no refusal logged:\n%s", buf.String())
	}
	if n := strings.Count(ln, `"msg":`); n != 1 {
		t.Fatalf("%d msg keys in %s", n, ln)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(ln), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["msg"] != "request refused" || !strings.Contains(fmt.Sprint(rec["reason"]), "token") {
		t.Fatalf("refusal line %s", ln)
	}
}

// Refused requests reach an info-level log, one per refusalLogEvery, saying
// how many were refused meanwhile: an operator hears of wrong tokens and
// full connection limits, and a client retrying a bad token does not flood
// the log.
func TestRefusalsLoggedAtWarnSampled(t *testing.T) {
	var buf logBuffer
	srv, err := New(Config{DataDir: t.TempDir(), Logger: loggerTo(&buf), Auth: verifierT(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for range 5 {
		req := httptest.NewRequest("GET", DocsPath+"a", nil)
		req.Header.Set("Authorization", "Bearer not-a-token")
		srv.Handler().ServeHTTP(httptest.NewRecorder(), req)
	}
	if n := strings.Count(buf.String(), "request refused"); n != 1 {
		t.Fatalf("%d refusals at info level or above, want the first only:\n%s", n, buf.String())
	}
	if buf.Line("level=WARN", "request refused", "code=unauthorized") == "" {
		t.Fatalf("the first refusal is not at warn:\n%s", buf.String())
	}

	var r refusalSampler
	t0 := time.Now()
	for i, c := range []struct {
		at      time.Duration
		shown   bool
		skipped int
	}{
		{0, true, 0},
		{time.Second, false, 0},
		{refusalLogEvery - time.Millisecond, false, 0},
		{refusalLogEvery, true, 2},
		{refusalLogEvery + time.Second, false, 0},
		{3 * refusalLogEvery, true, 1},
	} {
		if shown, skipped := r.sample(t0.Add(c.at)); shown != c.shown || skipped != c.skipped {
			t.Fatalf("refusal %d at %v: shown %v, %d skipped; want %v, %d", i, c.at, shown, skipped, c.shown, c.skipped)
		}
	}
}

// A store that answers reads but fails every write (a full disk) fails
// the health check, with the cause, and each failure is counted; the check
// passes again once a write succeeds, or once the last failure is older
// than storeFailureWindow (a server out of rotation gets no writes that
// could succeed).
func TestHealthFailsWhileStoreWritesFail(t *testing.T) {
	fs := &failingStore{Store: memory.New()}
	var shift atomic.Int64 // added to the replica's clock
	clock := func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }
	srv, err := New(Config{DataDir: t.TempDir(), Logger: loggerTo(&logBuffer{}),
		ReplicaOptions: []converge.Option{converge.WithStore(fs), converge.WithClock(clock)}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	health := func() (int, string) { return serveGet(srv, HealthPath) }
	writeErrors := func() string {
		_, metrics := serveGet(srv, MetricsPath)
		for _, ln := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(ln, "converge_store_write_errors_total ") {
				return strings.TrimPrefix(ln, "converge_store_write_errors_total ")
			}
		}
		t.Fatalf("no converge_store_write_errors_total in the metrics:\n%s", metrics)
		return ""
	}
	d := docT(t, srv.Replica(), "notes/disk")
	set := func(v int) error {
		return d.Change(context.Background(), func(tx *converge.Txn) error { return tx.Set("/v", v) })
	}
	if err := set(1); err != nil {
		t.Fatal(err)
	}
	if code, body := health(); code != 200 || writeErrors() != "0" {
		t.Fatalf("healthy store: healthz %d %q, %s write errors", code, body, writeErrors())
	}

	fs.fail.Store(true)
	for i := 0; i < 2; i++ {
		if set(2) == nil {
			t.Fatal("a write to the failing store succeeded")
		}
	}
	if code, body := health(); code != http.StatusServiceUnavailable || !strings.Contains(body, "store writes failing") || !strings.Contains(body, "disk full (injected)") {
		t.Fatalf("healthz while writes fail: %d %q", code, body)
	}
	if got := writeErrors(); got != "2" {
		t.Fatalf("write errors counted: %s, want 2", got)
	}

	fs.fail.Store(false)
	if err := set(3); err != nil {
		t.Fatal(err)
	}
	if code, body := health(); code != 200 || writeErrors() != "2" {
		t.Fatalf("after a write succeeded: healthz %d %q, %s write errors", code, body, writeErrors())
	}

	// A failure older than the window no longer fails the check.
	fs.fail.Store(true)
	shift.Store(int64(-2 * storeFailureWindow))
	if set(4) == nil {
		t.Fatal("a write to the failing store succeeded")
	}
	if code, body := health(); code != 200 || writeErrors() != "3" {
		t.Fatalf("a failure older than the window: healthz %d %q, %s write errors", code, body, writeErrors())
	}
}
