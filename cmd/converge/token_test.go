package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/converge-sync/converge/auth"
	"github.com/converge-sync/converge/server"
)

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTokenIssue(t *testing.T) {
	secret := writeFile(t, "secret", []byte("a-secret-for-the-cli-test-0123456789abcdef\n"))
	tok := strings.TrimSpace(mustCLI(t, "token", "issue", "--secret-file", secret, "--sub", "ann",
		"--allow", "notes/*:rw", "--allow", "public/**:r", "--ttl", "1h"))
	b, _ := auth.ReadSecretFile(secret)
	v, _ := auth.NewHMACVerifier(b)
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "ann" || !c.CanWrite("notes/x") || c.CanWrite("public/a/b") || !c.CanRead("public/a/b") || c.CanRead("other") {
		t.Fatalf("claims %+v", c)
	}

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	privPEM, _ := auth.MarshalPrivateKey(priv)
	key := writeFile(t, "key.pem", privPEM)
	tok = strings.TrimSpace(mustCLI(t, "token", "issue", "--private-key-file", key, "--sub", "svc", "--allow", "**:r"))
	ev, _ := auth.NewEdDSAVerifier(pub)
	if c, err := ev.Verify(tok); err != nil || c.Subject != "svc" {
		t.Fatalf("EdDSA token: %+v, %v", c, err)
	}

	for _, args := range [][]string{
		{"token"},
		{"token", "issue", "--sub", "ann", "--allow", "x:r"},                                                   // no key
		{"token", "issue", "--secret-file", secret, "--allow", "x:r"},                                          // no subject
		{"token", "issue", "--secret-file", secret, "--sub", "ann"},                                            // no grant
		{"token", "issue", "--secret-file", secret, "--sub", "ann", "--allow", "x:admin"},                      // bad grant
		{"token", "issue", "--secret-file", secret, "--sub", "ann", "--allow", "x:r", "--ttl", "-1h"},          // bad ttl
		{"token", "issue", "--secret-file", secret, "--private-key-file", key, "--sub", "a", "--allow", "x:r"}, // both
	} {
		if _, errs, code := cli(t, args...); code != 2 {
			t.Errorf("%v: exit %d: %s", args, code, errs)
		}
	}
	short := writeFile(t, "short", []byte("short"))
	if _, errs, code := cli(t, "token", "issue", "--secret-file", short, "--sub", "a", "--allow", "x:r"); code != 1 || !strings.Contains(errs, "at least 32") {
		t.Errorf("short secret: exit %d: %s", code, errs)
	}
}

// `converge serve --auth-secret-file` with `converge sync --token`: the
// token's documents sync, others are refused.
func TestServeWithTokens(t *testing.T) {
	secret := writeFile(t, "secret", []byte("a-secret-for-the-cli-test-0123456789abcdef\n"))
	data := t.TempDir()
	addr, logs, stop := serveT(t, "--data", data, "--auth-secret-file", secret)
	if !strings.Contains(logs.String(), "tokens required") || strings.Contains(logs.String(), "no access control") {
		t.Fatalf("startup log:\n%s", logs)
	}
	url := "http://" + addr
	ann := strings.TrimSpace(mustCLI(t, "token", "issue", "--secret-file", secret, "--sub", "ann", "--allow", "notes/*:rw"))
	a, b := t.TempDir(), t.TempDir()
	mustCLI(t, "doc", "set", "--replica", a, "notes/trip", "/title", `"Alps"`)
	mustCLI(t, "sync", "--replica", a, "--server", url, "--once", "--token", ann)
	mustCLI(t, "sync", "--replica", b, "--server", url, "--once", "--token", ann, "notes/trip")
	if got := mustCLI(t, "doc", "get", "--replica", b, "notes/trip"); !strings.Contains(got, "Alps") {
		t.Fatalf("b got %s", got)
	}
	// No token, or a document outside it: refused, and sync says so.
	if _, errs, code := cli(t, "sync", "--replica", b, "--server", url, "--once", "notes/trip"); code == 0 || !strings.Contains(errs, "401") {
		t.Fatalf("sync without a token: exit %d: %s", code, errs)
	}
	// A refused token is answered with what to do, in the command's last line.
	signer, err := auth.NewHMACSigner([]byte("a-secret-for-the-cli-test-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	grant, _ := auth.ParseGrant("notes/*:rw")
	expired, err := signer.Issue(auth.Claims{Subject: "ann", Expires: time.Now().Add(-time.Minute), Grants: []auth.Grant{grant}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ token, want string }{
		{"", "the server requires a token: give --token"},
		{"not-a-token", "the server refused the token: check that it is whole"},
		{expired, "the server refused the token: it has expired"},
	} {
		_, errs, code := cli(t, "sync", "--replica", b, "--server", url, "--once", "--token", c.token, "notes/trip")
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		if last := lines[len(lines)-1]; code != 1 || !strings.HasPrefix(last, "converge sync: "+c.want) {
			t.Errorf("sync with token %.12q: exit %d, last line %q", c.token, code, last)
		}
	}
	mustCLI(t, "doc", "set", "--replica", b, "private/x", "/v", `1`)
	if _, errs, code := cli(t, "sync", "--replica", b, "--server", url, "--once", "--token", ann, "private/x"); code == 0 || !strings.Contains(errs, "forbidden") {
		t.Fatalf("sync of a document outside the token: exit %d: %s", code, errs)
	}
	// The server recorded who sent the change.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := mustCLI(t, "doc", "origins", "--replica", data, "notes/trip"); !strings.Contains(got, `1-1`) || !strings.Contains(got, `"ann"`) {
		t.Fatalf("origins:\n%s", got)
	}
}

// With no key, serve refuses an address other than loopback before it
// opens the data folder or listens.
func TestServeRefusesExposedAddressWithoutKey(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	err := serve(context.Background(), []string{"--addr", "0.0.0.0:0", "--data", data}, &logBuffer{})
	if !errors.Is(err, server.ErrExposed) || !strings.Contains(err.Error(), "--insecure-no-auth") {
		t.Fatalf("serve on 0.0.0.0 without a key: %v", err)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("the data folder was created: %v", err)
	}
	for _, args := range [][]string{
		{"serve", "--auth-secret-file", "a", "--auth-public-key-file", "b"},
		{"serve", "--max-changes-per-second", "0"},
		{"serve", "--max-frame", "10"},
	} {
		if _, errs, code := cli(t, args...); code != 2 {
			t.Errorf("%v: exit %d: %s", args, code, errs)
		}
	}
}
