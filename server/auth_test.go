package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/auth"
	"github.com/converge-sync/converge/internal/prototest"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/ws"
)

var testSecret = []byte("server-test-secret-0123456789-abcdefghij")

func verifierT(t *testing.T) *auth.Verifier {
	t.Helper()
	v, err := auth.NewHMACVerifier(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// tokenT issues a token for sub with grants ("notes/*:rw"), valid for ttl
// (negative: expired that long ago), signed with secret.
func tokenT(t *testing.T, secret []byte, sub string, ttl time.Duration, grants ...string) string {
	t.Helper()
	s, err := auth.NewHMACSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	c := auth.Claims{Subject: sub, Expires: time.Now().Add(ttl)}
	for _, g := range grants {
		gr, err := auth.ParseGrant(g)
		if err != nil {
			t.Fatal(err)
		}
		c.Grants = append(c.Grants, gr)
	}
	tok, err := s.Issue(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// getAuth fetches url with a bearer token ("" for none).
func getAuth(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// seed writes docs on the server's own replica (as an administrator
// would, with no token in the way).
func seed(t *testing.T, ts *testServer, docs map[string]string) {
	t.Helper()
	for id, v := range docs {
		setT(t, docT(t, ts.Replica(), id), "/v", v)
	}
}

// refusedSync starts syncing docs with token and returns the error the
// Syncer stopped with, or the first document refusal.
func refusedSync(t *testing.T, ts *testServer, r *converge.Replica, token string, docs ...string) error {
	t.Helper()
	s := syncT(t, r, ts, converge.SyncToken(token), converge.SyncDocs(docs...))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.WaitSynced(ctx)
	if err == nil {
		t.Fatal("synced, want a refusal")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no refusal after 10s; status %+v", s.Status())
	}
	return err
}

func TestTokensRefused(t *testing.T) {
	ts := startT(t, t.TempDir(), Config{Auth: verifierT(t)})
	seed(t, ts, map[string]string{"secret/plan": "the secret plan", "public/a": "hello", "notes/a": "mine"})
	docURL := func(id string) string { return ts.url(DocsPath + strings.ReplaceAll(id, "/", "%2F")) }

	good := tokenT(t, testSecret, "ann", time.Hour, "notes/*:rw", "public/*:r")
	cases := []struct {
		name, token, code string
	}{
		{"no token", "", "unauthorized"},
		{"wrong signature", tokenT(t, []byte("another-secret-of-enough-length-000000"), "ann", time.Hour, "**:rw"), "unauthorized"},
		{"garbage", "abc.def.ghi", "unauthorized"},
		{"expired", tokenT(t, testSecret, "ann", -time.Minute, "**:rw"), "token_expired"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Sync: refused at the upgrade, so the client stops.
			r := openT(t)
			setT(t, docT(t, r, "notes/a"), "/v", "from "+c.name)
			err := refusedSync(t, ts, r, c.token, "notes/a", "secret/plan")
			if !errors.Is(err, converge.ErrSyncRefused) || !strings.Contains(err.Error(), "401") {
				t.Fatalf("sync: %v, want ErrSyncRefused (401)", err)
			}
			if got := jsonT(t, docT(t, r, "secret/plan")); got != "{}" {
				t.Fatalf("the client received %s", got)
			}
			// GET: 401 with the code, nothing of the document.
			for _, id := range []string{"secret/plan", "notes/a", "no/such"} {
				status, body := getAuth(t, docURL(id), c.token)
				if status != http.StatusUnauthorized || !strings.Contains(body, `"code":"`+c.code+`"`) {
					t.Fatalf("GET %s: %d %s", id, status, body)
				}
				if strings.Contains(body, "secret plan") || strings.Contains(body, "mine") {
					t.Fatalf("a refusal leaked the document: %s", body)
				}
			}
		})
	}
	if got := jsonT(t, docT(t, ts.Replica(), "notes/a")); got != `{"v":"mine"}` {
		t.Fatalf("a refused client changed the server's document: %s", got)
	}

	t.Run("wrong document", func(t *testing.T) {
		r := openT(t)
		setT(t, docT(t, r, "secret/plan"), "/v", "overwritten")
		err := refusedSync(t, ts, r, good, "secret/plan")
		if !strings.Contains(err.Error(), "forbidden") {
			t.Fatalf("sync: %v, want forbidden", err)
		}
		if got := jsonT(t, docT(t, r, "secret/plan")); got != `{"v":"overwritten"}` {
			t.Fatalf("the client received %s", got)
		}
		// Existing or not, the answer is the same 403.
		s1, b1 := getAuth(t, docURL("secret/plan"), good)
		s2, b2 := getAuth(t, docURL("secret/none"), good)
		if s1 != http.StatusForbidden || s1 != s2 || b1 != b2 || strings.Contains(b1, "secret plan") {
			t.Fatalf("GET of a forbidden document: %d %s / %d %s", s1, b1, s2, b2)
		}
		if status, body := getAuth(t, docURL("notes/a"), good); status != 200 || body != `{"v":"mine"}` {
			t.Fatalf("GET of an allowed document: %d %s", status, body)
		}
	})
	if got := jsonT(t, docT(t, ts.Replica(), "secret/plan")); got != `{"v":"the secret plan"}` {
		t.Fatalf("a refused client changed the server's document: %s", got)
	}

	t.Run("read-only writing", func(t *testing.T) {
		r := openT(t)
		s := syncT(t, r, ts, converge.SyncToken(good), converge.SyncDocs("public/a"))
		waitSynced(t, s) // reading is allowed
		if got := jsonT(t, docT(t, r, "public/a")); got != `{"v":"hello"}` {
			t.Fatalf("read %s", got)
		}
		setT(t, docT(t, r, "public/a"), "/v", "defaced")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.WaitSynced(ctx); err == nil || !strings.Contains(err.Error(), "read_only") {
			t.Fatalf("WaitSynced = %v, want read_only", err)
		}
		if got := jsonT(t, docT(t, ts.Replica(), "public/a")); got != `{"v":"hello"}` {
			t.Fatalf("the server stored a read-only client's change: %s", got)
		}
		v, err := ts.Replica().Store().Version(context.Background(), "public/a")
		if err != nil || v.Get(r.Actor()) != 0 {
			t.Fatalf("the store holds %v of the read-only client (%v)", v, err)
		}
	})

	t.Run("changes to a forbidden document", func(t *testing.T) {
		// A client past the Syncer: it subscribes anyway, and sends changes.
		c := dialWS(t, ts, good)
		c.S.Subscribe("secret/plan", nil)
		c.Flush()
		if ev := c.AwaitError(); ev.Code != syncproto.CodeForbidden || strings.Contains(ev.Message, "secret plan") {
			t.Fatalf("subscribe: %+v", ev)
		}
		c.Send("secret/plan", prototest.Chain(t, 3))
		if ev := c.AwaitError(); ev.Code != syncproto.CodeForbidden {
			t.Fatalf("changes: %+v", ev)
		}
		v, _ := ts.Replica().Store().Version(context.Background(), "secret/plan")
		if v.Total() != 1 {
			t.Fatalf("the store holds %v", v)
		}
	})

	// Metrics count the refusals by code.
	_, _, text := get(t, ts.url(MetricsPath))
	for _, code := range []string{"unauthorized", "token_expired", "forbidden", "read_only"} {
		if !strings.Contains(text, `converge_refusals_total{code="`+code+`"}`) ||
			strings.Contains(text, `converge_refusals_total{code="`+code+`"} 0`+"\n") {
			t.Errorf("no %s refusal counted", code)
		}
	}
}

func TestTokenExpiresDuringSession(t *testing.T) {
	ts := startT(t, t.TempDir(), Config{Auth: verifierT(t), Heartbeat: 300 * time.Millisecond})
	r := openT(t)
	setT(t, docT(t, r, "notes/a"), "/v", 1)
	s := syncT(t, r, ts, converge.SyncToken(tokenT(t, testSecret, "ann", 2*time.Second, "notes/*:rw")))
	waitSynced(t, s)
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the session outlived its token")
	}
	if err := s.Err(); !errors.Is(err, converge.ErrSyncRefused) || !strings.Contains(err.Error(), "token_expired") {
		t.Fatalf("Err = %v, want token_expired", err)
	}
}

func TestSubjectRecorded(t *testing.T) {
	ts := startT(t, t.TempDir(), Config{Auth: verifierT(t)})
	r := openT(t)
	setT(t, docT(t, r, "notes/a"), "/v", 1)
	setT(t, docT(t, r, "notes/a"), "/w", 2)
	waitSynced(t, syncT(t, r, ts, converge.SyncToken(tokenT(t, testSecret, "ann@example.com", time.Hour, "notes/*:rw"))))
	o, err := ts.Replica().Store().Origins(context.Background(), "notes/a")
	if err != nil {
		t.Fatal(err)
	}
	if len(o) != 1 || o[0].Actor != r.Actor() || o[0].First != 1 || o[0].Last != 2 || o[0].Subject != "ann@example.com" {
		t.Fatalf("origins %+v", o)
	}
}

func TestCheckAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:7878": true, "127.1.2.3:0": true, "[::1]:7878": true, "localhost:7878": true,
		"0.0.0.0:7878": false, ":7878": false, "[::]:7878": false, "192.168.1.5:7878": false,
		"example.com:7878": false, "10.0.0.1:0": false,
	} {
		err := Config{}.CheckAddr(addr)
		if ok != (err == nil) || (!ok && !errors.Is(err, ErrExposed)) {
			t.Errorf("CheckAddr(%q) = %v", addr, err)
		}
		if err := (Config{InsecureNoAuth: true}).CheckAddr(addr); err != nil {
			t.Errorf("with InsecureNoAuth, CheckAddr(%q) = %v", addr, err)
		}
		if err := (Config{Auth: verifierT(t)}).CheckAddr(addr); err != nil {
			t.Errorf("with a verifier, CheckAddr(%q) = %v", addr, err)
		}
	}
	// ListenAndServe refuses before it listens.
	srv, err := New(Config{Addr: "0.0.0.0:0", DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.ListenAndServe(context.Background()); !errors.Is(err, ErrExposed) {
		t.Fatalf("ListenAndServe on 0.0.0.0 without auth: %v", err)
	}
}

// A server without access control mounted in someone else's HTTP server
// refuses requests that arrive on an address other than loopback.
func TestAnonymousOnlyOnLoopback(t *testing.T) {
	srv, err := New(Config{DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	setT(t, docT(t, srv.Replica(), "d"), "/v", "private")
	for _, c := range []struct {
		local  net.Addr
		status int
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}, 200},
		{&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 80}, 401},
		{nil, 401},
	} {
		req := httptest.NewRequest("GET", DocsPath+"d", nil)
		if c.local != nil {
			req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, c.local))
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != c.status || (c.status != 200 && strings.Contains(rec.Body.String(), "private")) {
			t.Errorf("local address %v: %d %s", c.local, rec.Code, rec.Body)
		}
	}
}

func TestConnectionsPerAddress(t *testing.T) {
	ts := startT(t, t.TempDir(), Config{MaxConnsPerAddr: 2, ClientIPHeader: "X-Forwarded-For"})
	dial := func(xff string) error {
		h := http.Header{}
		if xff != "" {
			h.Set("X-Forwarded-For", xff)
		}
		c, err := ws.Dial(context.Background(), ts.syncURL(), ws.DialOptions{Header: h})
		if err == nil {
			t.Cleanup(func() { c.Close(transport.CloseNormal, "") })
		}
		return err
	}
	for range 2 {
		if err := dial("203.0.113.7"); err != nil {
			t.Fatal(err)
		}
	}
	var he *ws.HandshakeError
	if err := dial("198.51.100.1, 203.0.113.7"); !errors.As(err, &he) || he.Status != http.StatusTooManyRequests ||
		!strings.Contains(he.Body, "too_many_connections") {
		t.Fatalf("third connection from one address: %v", err)
	}
	if err := dial("203.0.113.8"); err != nil {
		t.Fatalf("another address: %v", err)
	}
	// IPv6 counts by /64: a client cannot take a fresh address of its
	// block per connection; another block is another client.
	for _, a := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"} {
		if err := dial(a); err != nil {
			t.Fatal(err)
		}
	}
	if err := dial("2001:db8:1:2:abcd::1"); !errors.As(err, &he) || he.Status != http.StatusTooManyRequests {
		t.Fatalf("third connection from one /64: %v", err)
	}
	if err := dial("2001:db8:1:3::1"); err != nil {
		t.Fatalf("another /64: %v", err)
	}
	// An IPv4 address written as IPv6 is that IPv4 address.
	if err := dial("::ffff:203.0.113.8"); err != nil {
		t.Fatalf("203.0.113.8's second connection, written as IPv6: %v", err)
	}
	if err := dial("203.0.113.8"); !errors.As(err, &he) || he.Status != http.StatusTooManyRequests {
		t.Fatalf("third connection from 203.0.113.8, one written as IPv6: %v", err)
	}
	// A replica's Syncer retries a refused connection (it is not a refusal
	// of its token).
	r := openT(t)
	s := syncT(t, r, ts)
	waitSynced(t, s)
}

// dialWS dials the server's sync endpoint with token (none if empty) and
// speaks the protocol by hand, to send what a well-behaved replica never
// would.
func dialWS(t *testing.T, ts *testServer, token string) *prototest.Client {
	t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	conn, err := ws.Dial(context.Background(), ts.syncURL(), ws.DialOptions{Header: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(transport.CloseNormal, "") })
	return prototest.Dial(t, conn)
}
