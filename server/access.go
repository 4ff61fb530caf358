package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/auth"
	"github.com/converge-sync/converge/syncproto"
)

// ErrExposed is returned when a server without access control is asked to
// listen on an address other than loopback (see Config.InsecureNoAuth).
var ErrExposed = errors.New("server: no access control is configured, so the server listens on loopback addresses only")

// CheckAddr says whether the server may listen on addr (host:port): any
// address with a token verifier (Config.Auth) or InsecureNoAuth, loopback
// addresses only otherwise. Hosts other than IP addresses and "localhost"
// count as not loopback, as do the unspecified addresses ("", 0.0.0.0,
// ::), which listen on every interface.
func (c Config) CheckAddr(addr string) error {
	if c.Auth != nil || c.InsecureNoAuth {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("server: listen address %q: %w", addr, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("%w: %q is not one; give a token key (--auth-secret-file or --auth-public-key-file), or --insecure-no-auth to let anyone who can reach it read and write every document", ErrExposed, addr)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}

// anonymousAllowed says whether a request may go without a token: with no
// verifier configured, only on a loopback address of this server (which a
// server mounted through Handler on another address would not be), or
// anywhere with InsecureNoAuth.
func (s *Server) anonymousAllowed(req *http.Request) bool {
	if s.cfg.InsecureNoAuth {
		return true
	}
	la, ok := req.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	host, _, err := net.SplitHostPort(la.String())
	return err == nil && isLoopbackHost(host)
}

// refusal is an HTTP answer to a request that may not proceed.
type refusal struct {
	status int
	code   syncproto.Code
	msg    string
}

// authorize checks the request's token. It returns the claims (nil for an
// anonymous request that is allowed) or why the request is refused. The
// messages never repeat the token, and never say whether a document
// exists.
func (s *Server) authorize(req *http.Request) (*auth.Claims, *refusal) {
	if s.cfg.Auth == nil {
		if s.anonymousAllowed(req) {
			return nil, nil
		}
		return nil, &refusal{http.StatusUnauthorized, syncproto.CodeUnauthorized,
			"this server has no access control and serves its loopback address only"}
	}
	token, ok := bearer(req)
	if !ok {
		return nil, &refusal{http.StatusUnauthorized, syncproto.CodeUnauthorized,
			"a token is required: send Authorization: Bearer TOKEN"}
	}
	c, err := s.cfg.Auth.Verify(token)
	switch {
	case errors.Is(err, auth.ErrTokenExpired):
		return nil, &refusal{http.StatusUnauthorized, syncproto.CodeTokenExpired, err.Error()}
	case err != nil:
		return nil, &refusal{http.StatusUnauthorized, syncproto.CodeUnauthorized, err.Error()}
	}
	return c, nil
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header.
func bearer(req *http.Request) (string, bool) {
	h := req.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// refuse answers a refused request and counts it.
func (s *Server) refuse(w http.ResponseWriter, req *http.Request, r *refusal) {
	s.metrics.Refused(r.code)
	if r.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="converge"`)
	}
	level := slog.LevelDebug
	var since int
	if shown, skipped := s.refusals.sample(time.Now()); shown {
		level, since = slog.LevelWarn, skipped
	}
	s.log.Log(req.Context(), level, "request refused", "path", req.URL.EscapedPath(), "remote", req.RemoteAddr,
		"code", r.code.String(), "reason", r.msg, "refusedSinceLastWarning", since)
	writeError(w, r.status, r.code.String(), r.msg)
}

// refusalSampler lets one refused request in refusalLogEvery be logged at
// warn level, saying how many were refused since the last one so logged;
// the others are logged at debug. Refusals (a wrong token, too many
// connections) are what an operator wants to hear of, but a client that
// retries a bad token, or a scan, must not flood the log.
type refusalSampler struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

const refusalLogEvery = 10 * time.Second

// sample reports whether the refusal at now is the one to log at warn,
// and how many were refused since the last one that was.
func (r *refusalSampler) sample(now time.Time) (shown bool, skipped int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() && now.Sub(r.last) < refusalLogEvery {
		r.skipped++
		return false, 0
	}
	skipped, r.skipped, r.last = r.skipped, 0, now
	return true, skipped
}

// connAccess is the Access of a sync connection: what its token allows
// (everything for an anonymous connection), noting every document it may
// load for eviction.
type connAccess struct {
	l      *recency
	claims *auth.Claims // nil: anonymous, anything goes
}

var _ converge.Access = connAccess{}

func (a connAccess) CanRead(doc string) bool {
	if a.claims != nil && !a.claims.CanRead(doc) {
		return false
	}
	a.l.touch(doc, true)
	a.l.signal() // a new document may be loaded: check the budget
	return true
}

func (a connAccess) CanWrite(doc string) bool {
	if a.claims != nil && !a.claims.CanWrite(doc) {
		return false
	}
	a.l.touch(doc, true)
	return true
}

func (a connAccess) Expired(now time.Time) bool {
	return a.claims != nil && a.claims.Expired(now)
}

// clientAddr is what the per-address connection limit counts: the
// request's remote IP, or, behind a reverse proxy that says who the client
// is, the last address of Config.ClientIPHeader (the one the proxy added).
func (s *Server) clientAddr(req *http.Request) string {
	if h := s.cfg.ClientIPHeader; h != "" {
		if vs := req.Header.Values(h); len(vs) > 0 {
			last := vs[len(vs)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if last = strings.TrimSpace(last); last != "" {
				return last
			}
		}
	}
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}

// limitKey is what the per-address limit counts addr as: an IPv6
// address by its /64 prefix, the block one subscriber is usually given
// (counted address by address, a client could take a fresh one per
// connection); an IPv4 address, or an IPv4 address written as IPv6, as
// itself; anything unparsable as it is.
func limitKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	if ip = ip.Unmap(); ip.Is4() {
		return ip.String()
	}
	p, err := ip.WithZone("").Prefix(64)
	if err != nil {
		return addr
	}
	return p.String()
}

// admitConn counts a new sync connection from addr, or refuses it when
// addr (its IPv6 /64) has MaxConnsPerAddr already. The caller releases
// it with releaseConn.
func (s *Server) admitConn(addr string) *refusal {
	key := limitKey(addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	if max := s.cfg.MaxConnsPerAddr; max > 0 && s.perAddr[key] >= max {
		return &refusal{http.StatusTooManyRequests, syncproto.CodeTooManyConns,
			fmt.Sprintf("at most %d sync connections per address (per /64 for IPv6)", max)}
	}
	s.perAddr[key]++
	return nil
}

func (s *Server) releaseConn(addr string) {
	key := limitKey(addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perAddr[key]--; s.perAddr[key] <= 0 {
		delete(s.perAddr, key)
	}
}
