package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The binary end to end: `converge token issue` mints tokens that
// `converge serve --auth-secret-file` accepts from `converge sync
// --token`; requests without one, or outside it, are refused.
func TestTokensEndToEnd(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("e2e-secret-0123456789-0123456789-abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, filepath.Join(t.TempDir(), "server"), "", "--auth-secret-file", secret)
	srv.waitLog("tokens required")
	ann := strings.TrimSpace(run(t, "token", "issue", "--secret-file", secret, "--sub", "ann", "--allow", "notes/*:rw"))
	reader := strings.TrimSpace(run(t, "token", "issue", "--secret-file", secret, "--sub", "rita", "--allow", "notes/*:r"))

	a, b := t.TempDir(), t.TempDir()
	run(t, "doc", "set", "--replica", a, "notes/trip", "/title", `"Alps"`)
	run(t, "sync", "--replica", a, "--server", srv.url(), "--once", "--token", ann)
	run(t, "sync", "--replica", b, "--server", srv.url(), "--once", "--token", reader, "notes/trip")
	if got := get(t, b, "notes/trip"); got != `{"title":"Alps"}` {
		t.Fatalf("the reader got %s", got)
	}

	// No token: refused, and the client says so.
	if _, errs, err := convergeErr("sync", "--replica", b, "--server", srv.url(), "--once", "notes/trip"); err == nil || !strings.Contains(errs, "401") {
		t.Fatalf("sync without a token: %v\n%s", err, errs)
	}
	// A read-only token's edit is refused, and the server keeps its copy.
	run(t, "doc", "set", "--replica", b, "notes/trip", "/title", `"Defaced"`)
	if _, errs, err := convergeErr("sync", "--replica", b, "--server", srv.url(), "--once", "--token", reader, "notes/trip"); err == nil || !strings.Contains(errs, "read_only") {
		t.Fatalf("sync of a read-only edit: %v\n%s", err, errs)
	}
	for _, c := range []struct {
		token  string
		status int
		body   string
	}{
		{"", 401, "unauthorized"},
		{ann[:len(ann)-4] + "AAAA", 401, "unauthorized"},
		{reader, 200, `{"title":"Alps"}`},
	} {
		req, _ := http.NewRequest("GET", srv.url()+"/v1/docs/notes%2Ftrip", nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.body) || strings.Contains(string(body), "Defaced") {
			t.Fatalf("GET with token %.10q: %d %s", c.token, resp.StatusCode, body)
		}
	}
}

// With no key, `converge serve` refuses an address other than loopback
// and exits before it listens.
func TestServeRefusesExposedAddress(t *testing.T) {
	data := filepath.Join(t.TempDir(), "server")
	_, errs, err := convergeErr("serve", "--addr", "0.0.0.0:0", "--data", data)
	if err == nil || !strings.Contains(errs, "--insecure-no-auth") || strings.Contains(errs, "listening") {
		t.Fatalf("serve on 0.0.0.0 without a key: %v\n%s", err, errs)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("the data folder was created (%v)", err)
	}
}
