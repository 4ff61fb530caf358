package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/store/memory"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport/ws"
)

// testServer serves sync on a loopback HTTP server from an in-memory
// replica, as `converge serve` does.
func testServer(t *testing.T) (url string, r *converge.Replica) {
	t.Helper()
	r, err := converge.Open(context.Background(), "", converge.WithStore(memory.New()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		conn, err := ws.Accept(w, req, ws.AcceptOptions{})
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		r.Serve(ctx, conn, converge.ServeConfig{Role: syncproto.RoleServer})
	}))
	t.Cleanup(func() {
		cancel()
		srv.Close()
		wg.Wait()
		r.Close()
	})
	return srv.URL, r
}

func TestSyncOnceConvergesTwoReplicas(t *testing.T) {
	url, _ := testServer(t)
	a, b := t.TempDir(), t.TempDir()
	mustCLI(t, "doc", "set", "--replica", a, "trip", "/title", `"Alps"`)
	mustCLI(t, "doc", "set", "--replica", b, "trip", "/title", `"Pyrenees"`)
	mustCLI(t, "doc", "set", "--replica", b, "trip", "/days", `5`)
	for _, dir := range []string{a, b, a} {
		out := mustCLI(t, "sync", "--replica", dir, "--server", url, "--once")
		if !strings.Contains(out, "synced with ws://") {
			t.Fatalf("sync said %q", out)
		}
	}
	ga := mustCLI(t, "doc", "get", "--replica", a, "trip")
	gb := mustCLI(t, "doc", "get", "--replica", b, "trip")
	if ga != gb || !strings.Contains(ga, `"days":5`) {
		t.Fatalf("not converged:\n%s%s", ga, gb)
	}
	conf := mustCLI(t, "doc", "conflicts", "--replica", a, "trip")
	if !strings.Contains(conf, "Alps") || !strings.Contains(conf, "Pyrenees") {
		t.Fatalf("the concurrent titles should be a conflict: %s", conf)
	}
}

func TestSyncUsageErrors(t *testing.T) {
	if _, errs, code := cli(t, "sync", "--replica", t.TempDir()); code != 2 || !strings.Contains(errs, "--server") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, errs, code := cli(t, "sync", "--replica", t.TempDir(), "--server", "ftp://x", "--once"); code != 1 || !strings.Contains(errs, "want http://") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// Nothing listens: --once gives up after its timeout, saying why.
	if _, errs, code := cli(t, "sync", "--replica", t.TempDir(), "--server", "http://127.0.0.1:1", "--once", "--timeout", "300ms"); code != 1 || !strings.Contains(errs, "not synced") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// presence too, and its --timeout is not said to need --once (it has none).
	if _, errs, code := cli(t, "presence", "--replica", t.TempDir(), "--server", "http://127.0.0.1:1", "--timeout", "300ms", "d"); code != 1 || !strings.Contains(errs, "not synced after 300ms") {
		t.Fatalf("presence: exit %d: %s", code, errs)
	}
	if _, errs, _ := cli(t, "presence", "-h"); !strings.Contains(errs, "-timeout") || strings.Contains(errs, "--once") {
		t.Fatalf("presence -h: %s", errs)
	}
	// An unreadable --token-file is named as such.
	if _, errs, code := cli(t, "sync", "--replica", t.TempDir(), "--server", "http://127.0.0.1:1", "--once", "--token-file", "/nonexistent/token"); code != 1 || !strings.HasPrefix(errs, "converge sync: --token-file: ") {
		t.Fatalf("token file: exit %d: %s", code, errs)
	}
}

func TestPresenceCommand(t *testing.T) {
	url, _ := testServer(t)
	a, b := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// a is present while its replica syncs in the background.
	ra, err := converge.Open(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	s, err := ra.Sync(ctx, url, converge.SyncDocs("trip"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	da, _ := ra.Doc(ctx, "trip")
	da.SetPresence(map[string]string{"name": "ada"})
	if err := s.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	out := mustCLI(t, "presence", "--replica", b, "--server", url, "trip", "--set", `{"name":"bob"}`)
	var seen []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		seen = append(seen, m)
	}
	if len(seen) != 2 {
		t.Fatalf("presence printed %q", out)
	}
	names := map[string]bool{}
	for _, m := range seen {
		st := m["state"].(map[string]any)
		names[st["name"].(string)] = m["self"].(bool)
	}
	if self, ok := names["ada"]; !ok || self {
		t.Fatalf("ada missing or marked self: %q", out)
	}
	if self, ok := names["bob"]; !ok || !self {
		t.Fatalf("bob missing or not self: %q", out)
	}
}
