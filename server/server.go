package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/auth"
	"github.com/converge-sync/converge/store"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/ws"
)

// Defaults for Config's zero values.
const (
	DefaultAddr            = "127.0.0.1:7878"
	DefaultDataDir         = "converge-data"
	DefaultMaxDocsInMemory = 10_000
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultMaxConnsPerAddr bounds the sync connections from one address.
	DefaultMaxConnsPerAddr = 1024
	// DefaultChangesPerSecond is each connection's sustained rate of
	// changes received, with bursts of converge.DefaultChangeBurst (what a
	// replica back from a long time offline sends at once).
	DefaultChangesPerSecond = 10_000
)

// Routes.
const (
	SyncPath    = "/v1/sync"  // WebSocket sync endpoint
	DocsPath    = "/v1/docs/" // + path-escaped document ID: the document as JSON
	HealthPath  = "/healthz"
	MetricsPath = "/metrics"
)

// Config configures a Server. The zero value serves ./converge-data on
// 127.0.0.1:7878.
type Config struct {
	// Addr is the TCP address ListenAndServe listens on (DefaultAddr if
	// empty). Port 0 picks a free port; the startup log shows which.
	Addr string
	// DataDir is the replica folder holding the server's documents
	// (DefaultDataDir, relative to the working directory, if empty). One
	// process at a time may use it.
	DataDir string
	// Logger receives the server's logs (slog.Default() if nil).
	Logger *slog.Logger
	// MaxDocsInMemory is how many documents may stay loaded: beyond it the
	// least recently used ones that no connection follows are unloaded
	// (DefaultMaxDocsInMemory if 0; negative means no limit).
	MaxDocsInMemory int
	// Heartbeat is the interval announced to peers for liveness checks
	// (syncproto.DefaultHeartbeat if 0).
	Heartbeat time.Duration
	// Limits bound what each connection accepts (syncproto.DefaultLimits if
	// zero). Limits.MaxFrame also bounds each WebSocket message read.
	Limits syncproto.Limits
	// ShutdownTimeout bounds how long shutting down waits for connected
	// peers to close (DefaultShutdownTimeout if 0).
	ShutdownTimeout time.Duration
	// ReplicaOptions are passed to converge.Open (for example
	// converge.WithStore to keep documents elsewhere than the folder's
	// SQLite database). The server adds WithLogger.
	ReplicaOptions []converge.Option

	// Auth verifies the token each request presents (Authorization: Bearer)
	// and decides what it may read and write. Nil means no access control:
	// anonymous clients may read and write every document, and then the
	// server serves loopback addresses only (ListenAndServe and Serve
	// refuse others, see CheckAddr; requests reaching Handler on another
	// local address are refused), unless InsecureNoAuth.
	Auth *auth.Verifier
	// InsecureNoAuth lets a server without Auth serve any address: anyone
	// who can reach it may read and write every document.
	InsecureNoAuth bool
	// TLSCertFile and TLSKeyFile (PEM) make Serve and ListenAndServe speak
	// TLS (https, wss). Without them, terminate TLS in a reverse proxy.
	TLSCertFile, TLSKeyFile string

	// MaxConnsPerAddr bounds the sync connections from one client address,
	// an IPv6 one by its /64 (DefaultMaxConnsPerAddr if 0; negative: no
	// limit); past it the upgrade is refused with 429 too_many_connections.
	MaxConnsPerAddr int
	// ClientIPHeader names a header that a reverse proxy in front of the
	// server sets to the client's address (such as X-Forwarded-For; the
	// last address in it is used): the connection limit then counts
	// clients, not the proxy. Set it only behind such a proxy: a client
	// reaching the server directly could send any address in it.
	ClientIPHeader string
	// ChangesPerSecond bounds the changes each connection may send,
	// sustained (DefaultChangesPerSecond if 0; negative: no limit), with
	// bursts of ChangeBurst (converge.DefaultChangeBurst if 0). Past it
	// the session ends with rate_limited.
	ChangesPerSecond float64
	ChangeBurst      int
	// MaxHeld bounds the changes a connection may send ahead of their
	// dependencies (converge.DefaultMaxHeld if 0): too_many_pending.
	MaxHeld int
	// MaxDocsPerConn bounds the documents one connection may subscribe to
	// (10,000 if 0): too_many_docs.
	MaxDocsPerConn int
	// MaxQueue bounds the changes waiting to be written to one connection
	// (100,000 if 0); a client that reads slower is dropped.
	MaxQueue int

	evictInterval time.Duration // periodic eviction sweep (tests shorten it)
	syncGrace     time.Duration // see recency.syncGrace (tests shorten it)
}

// Server serves a replica's documents to sync clients over WebSocket, and
// reads them over HTTP. Make one with New; it is safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	replica *converge.Replica
	metrics *metrics
	lru     *recency
	handler http.Handler

	peersCtx  context.Context // ends at shutdown: Serve then tells each peer going_away
	stopPeers context.CancelFunc
	stopEvict context.CancelFunc
	evictDone chan struct{}

	tls *tls.Config // nil: plain HTTP

	// dbPath and dbFile are the store's file and its identity when it was
	// opened (empty and nil for a store that is not a file): the health
	// check compares them, as a file deleted or replaced under the server
	// takes every write that follows to a file no one can open again.
	dbPath string
	dbFile os.FileInfo
	// salvage is why the store was opened read-only ("" if it was not).
	salvage string

	mu      sync.Mutex
	closing bool
	conns   map[transport.Conn]struct{}
	perAddr map[string]int // sync connections per client address

	refusals refusalSampler // which refused requests are logged at warn
	wg       sync.WaitGroup // sync connections being served

	closeOnce sync.Once
	closeErr  error
}

// New opens the replica in cfg.DataDir and returns a server for it, ready
// to serve with Handler, Serve or ListenAndServe. Close releases it.
func New(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxDocsInMemory == 0 {
		cfg.MaxDocsInMemory = DefaultMaxDocsInMemory
	}
	if cfg.Limits == (syncproto.Limits{}) {
		cfg.Limits = syncproto.DefaultLimits
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.evictInterval <= 0 {
		cfg.evictInterval = 30 * time.Second
	}
	if cfg.MaxConnsPerAddr == 0 {
		cfg.MaxConnsPerAddr = DefaultMaxConnsPerAddr
	}
	if cfg.ChangesPerSecond == 0 {
		cfg.ChangesPerSecond = DefaultChangesPerSecond
	}
	var tlsCfg *tls.Config
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" {
		if cfg.TLSCertFile == "" || cfg.TLSKeyFile == "" {
			return nil, errors.New("server: TLS needs both a certificate and a key file")
		}
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("server: loading the TLS certificate: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if abs, err := filepath.Abs(cfg.DataDir); err == nil {
		cfg.DataDir = abs
	}
	opts := append([]converge.Option{converge.WithLogger(cfg.Logger)}, cfg.ReplicaOptions...)
	r, err := converge.Open(context.Background(), cfg.DataDir, opts...)
	if err != nil {
		return nil, fmt.Errorf("server: opening data folder %s: %w", cfg.DataDir, err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, replica: r, conns: map[transport.Conn]struct{}{},
		perAddr: map[string]int{}, tls: tlsCfg, evictDone: make(chan struct{})}
	if f, ok := r.Store().(interface{ Path() string }); ok {
		if fi, err := os.Stat(f.Path()); err == nil {
			s.dbPath, s.dbFile = f.Path(), fi
		}
	}
	if sv, ok := r.Store().(interface{ Salvage() string }); ok && sv.Salvage() != "" {
		s.salvage = sv.Salvage()
		s.log.Error("the data folder's store is damaged: it is open read-only (salvage mode) and every write fails; read the intact documents out, then move the folder away and restart (clients refill an empty one)",
			"data", cfg.DataDir, "why", s.salvage)
	}
	s.metrics = newMetrics(r.Loaded, func() uint64 { return r.StoreWrites().Failed })
	s.lru = newRecency(r, cfg.MaxDocsInMemory, s.metrics.evictions.Inc)
	if cfg.syncGrace > 0 {
		s.lru.syncGrace = cfg.syncGrace
	}
	s.peersCtx, s.stopPeers = context.WithCancel(context.Background())

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+SyncPath, s.serveSync)
	mux.HandleFunc("GET "+HealthPath, s.serveHealth)
	mux.Handle("GET "+MetricsPath, promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{Registry: s.metrics.reg}))
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// Document IDs may hold '/', "//" or "..": ServeMux would clean such
		// paths (and redirect), so documents are routed before it.
		if strings.HasPrefix(req.URL.EscapedPath(), DocsPath) {
			s.serveDoc(w, req)
			return
		}
		mux.ServeHTTP(w, req)
	})

	var evictCtx context.Context
	evictCtx, s.stopEvict = context.WithCancel(context.Background())
	go func() {
		defer close(s.evictDone)
		s.lru.run(evictCtx, cfg.evictInterval)
	}()
	return s, nil
}

// Replica returns the server's replica.
func (s *Server) Replica() *converge.Replica { return s.replica }

// Handler returns the server's HTTP handler: the sync endpoint, documents,
// health and metrics.
func (s *Server) Handler() http.Handler { return s.handler }

// ListenAndServe listens on cfg.Addr and serves until ctx ends, then shuts
// down gracefully (see Serve).
func (s *Server) ListenAndServe(ctx context.Context) error {
	if err := s.cfg.CheckAddr(s.cfg.Addr); err != nil {
		return errors.Join(err, s.Close())
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return errors.Join(fmt.Errorf("server: %w", err), s.Close())
	}
	return s.Serve(ctx, ln)
}

// Serve serves connections from ln until ctx ends, then shuts down: it
// stops accepting, tells every connected peer going_away, waits for them
// (cfg.ShutdownTimeout at most), and closes the replica (flushing it). It
// returns nil after a shutdown asked by ctx. Without access control, ln
// must listen on loopback (see Config.CheckAddr).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.cfg.CheckAddr(ln.Addr().String()); err != nil {
		ln.Close()
		return errors.Join(err, s.Close())
	}
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	addr := ln.Addr().String()
	scheme := "ws://"
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
		scheme = "wss://"
	}
	s.log.Info("converge server listening", "addr", addr, "data", s.cfg.DataDir,
		"sync", scheme+addr+SyncPath, "max_docs_in_memory", s.cfg.MaxDocsInMemory)
	s.logAccess(addr)

	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	var err error
	select {
	case err = <-served: // the listener failed
		err = fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	start := time.Now()
	s.log.Info("shutting down", "addr", addr, "connections", s.connCount())
	s.beginShutdown()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if serr := hs.Shutdown(sctx); serr != nil {
		s.log.Warn("HTTP requests still running at shutdown", "err", serr)
	}
	err = errors.Join(err, s.Close())
	s.log.Info("shut down", "addr", addr, "took", time.Since(start).Round(time.Millisecond).String()) // "2ms", not nanoseconds in JSON logs
	return err
}

// Close shuts the server down, for a server used through Handler: it
// refuses new sync connections, tells connected peers going_away, waits for
// them (cfg.ShutdownTimeout at most), and closes the replica. Serve and
// ListenAndServe call it when they return.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.beginShutdown()
		waited := make(chan struct{})
		go func() { s.wg.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(s.cfg.ShutdownTimeout):
			s.mu.Lock()
			left := make([]transport.Conn, 0, len(s.conns))
			for c := range s.conns {
				left = append(left, c)
			}
			s.mu.Unlock()
			s.log.Warn("peers still connected after the shutdown timeout; dropping them",
				"connections", len(left), "timeout", s.cfg.ShutdownTimeout)
			for _, c := range left {
				go c.Close(transport.CloseGoingAway, "shutting down")
			}
		}
		s.stopEvict()
		<-s.evictDone
		s.closeErr = s.replica.Close()
		if s.closeErr != nil {
			s.log.Error("closing the replica", "data", s.cfg.DataDir, "err", s.closeErr)
		}
	})
	return s.closeErr
}

// beginShutdown refuses new sync connections and ends the current ones
// with going_away.
func (s *Server) beginShutdown() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.stopPeers()
}

func (s *Server) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// serveSync upgrades the request to a WebSocket and runs a sync session on
// it until either side ends it.
func (s *Server) serveSync(w http.ResponseWriter, req *http.Request) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the server is shutting down")
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	handed := false // to the connection's goroutine, which then ends what is deferred here
	defer func() {
		if !handed {
			s.wg.Done()
		}
	}()

	claims, r := s.authorize(req)
	if r != nil {
		s.refuse(w, req, r)
		return
	}
	client := s.clientAddr(req)
	if r := s.admitConn(client); r != nil {
		s.refuse(w, req, r)
		return
	}

	conn, err := ws.Accept(w, req, ws.AcceptOptions{ReadLimit: int64(s.cfg.Limits.MaxFrame)})
	if err != nil { // Accept has answered the request
		s.releaseConn(client)
		s.log.Debug("sync: refused upgrade", "remote", req.RemoteAddr, "err", err)
		return
	}
	// The session runs on a goroutine of its own and the handler returns
	// (the connection is hijacked: net/http is done with it). The
	// handler's goroutine has a stack grown deep by the HTTP request and
	// the upgrade, and a connection's goroutine spends its life waiting
	// for a frame: a fresh one keeps a small stack, for each of thousands
	// of connections.
	handed = true
	go func() {
		defer s.wg.Done()
		defer s.releaseConn(client)
		s.serveConn(conn, claims, req.RemoteAddr)
	}()
}

// serveConn runs a sync session on an accepted connection, for the holder
// of claims (nil: anonymous), until either side ends it.
func (s *Server) serveConn(conn transport.Conn, claims *auth.Claims, remote string) {
	s.mu.Lock()
	s.conns[conn] = struct{}{}
	n := len(s.conns)
	s.mu.Unlock()
	s.metrics.accepted.Inc()
	s.metrics.connections.Inc()
	start := time.Now()
	var subject string
	if claims != nil {
		subject = claims.Subject
	}
	s.log.Info("sync connection opened", "remote", remote, "subject", subject, "connections", n)

	err := s.replica.Serve(s.peersCtx, conn, converge.ServeConfig{
		Role:             syncproto.RoleServer,
		Name:             "converge server",
		Limits:           s.cfg.Limits,
		Heartbeat:        s.cfg.Heartbeat,
		MaxDocs:          s.cfg.MaxDocsPerConn,
		MaxQueue:         s.cfg.MaxQueue,
		Access:           connAccess{l: s.lru, claims: claims},
		Metrics:          s.metrics,
		Subject:          subject,
		ChangesPerSecond: max(s.cfg.ChangesPerSecond, 0),
		ChangeBurst:      s.cfg.ChangeBurst,
		MaxHeld:          s.cfg.MaxHeld,
	})

	s.mu.Lock()
	delete(s.conns, conn)
	n = len(s.conns)
	s.mu.Unlock()
	s.metrics.connections.Dec()
	attrs := []any{"remote", remote, "subject", subject, "duration", time.Since(start).Round(time.Millisecond), "connections", n}
	if err != nil {
		attrs = append(attrs, "reason", err)
	}
	s.log.Info("sync connection closed", attrs...)
	s.lru.signal() // the documents it followed may be unloaded now
}

// serveDoc answers GET /v1/docs/{id} with the document as JSON. The ID is
// path-escaped ("notes%2Fa"); an unescaped '/' works too ("notes/a").
func (s *Server) serveDoc(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", req.Method+" is not allowed here; use GET")
		return
	}
	claims, r := s.authorize(req)
	if r != nil {
		s.refuse(w, req, r)
		return
	}
	id, err := url.PathUnescape(strings.TrimPrefix(req.URL.EscapedPath(), DocsPath))
	if err != nil || id == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "the path must end with a path-escaped document ID")
		return
	}
	// Before anything reads the store: a refusal must not tell whether
	// the document exists.
	if claims != nil && !claims.CanRead(id) {
		s.refuse(w, req, &refusal{http.StatusForbidden, syncproto.CodeForbidden, "this token does not allow reading this document"})
		return
	}
	ctx := req.Context()
	if _, err := s.replica.Store().Version(ctx, id); err != nil {
		switch {
		case errors.Is(err, store.ErrNotFound):
			writeError(w, http.StatusNotFound, "not_found", "the server holds no document "+strconv.Quote(id))
		case errors.Is(err, store.ErrBadDocID):
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		default:
			s.unavailable(w, id, err)
		}
		return
	}
	// Reading loads the document; it then counts toward the budget like
	// any other, so repeated reads are served from memory and a burst of
	// reads of different documents does not pile up.
	s.lru.touch(id, false)
	d, err := s.replica.Doc(ctx, id)
	if err != nil {
		s.lru.forget(id)
		if errors.Is(err, converge.ErrBadDocID) {
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		s.unavailable(w, id, err)
		return
	}
	b, err := d.JSON("")
	s.lru.enforce()
	if err != nil {
		s.unavailable(w, id, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func (s *Server) unavailable(w http.ResponseWriter, id string, err error) {
	if errors.Is(err, converge.ErrClosed) || errors.Is(err, store.ErrClosed) {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the server is shutting down")
		return
	}
	s.log.Error("reading a document", "doc", id, "err", err)
	writeError(w, http.StatusInternalServerError, "internal", "reading the document failed")
}

// logAccess says at startup who may read and write.
func (s *Server) logAccess(addr string) {
	switch {
	case s.cfg.Auth != nil:
		s.log.Info("access control: tokens required", "algorithms", strings.Join(s.cfg.Auth.Algorithms(), ","))
		if s.tls == nil {
			if host, _, err := net.SplitHostPort(addr); err == nil && !isLoopbackHost(host) {
				s.log.Warn("tokens travel in clear text on this address: give --tls-cert and --tls-key, or put a TLS-terminating reverse proxy in front", "addr", addr)
			}
		}
	case s.cfg.InsecureNoAuth:
		s.log.Warn("no access control (--insecure-no-auth): anyone who can reach this server may read and write every document", "addr", addr)
	default:
		s.log.Warn("no access control: anonymous clients may read and write every document, so only loopback addresses are served; give a token key to serve others", "addr", addr)
	}
}

// healthID names no document on purpose: asking the store for its version
// is one indexed lookup, which fails only if the store cannot answer.
const healthID = "\x00converge-healthz"

// storeFailureWindow is how long a failed store write, with none
// succeeding after it, makes the health check fail. A check that failed
// for ever would keep a server taken out of rotation out for good, though
// its store may work again: once the window is past, the server is tried
// again, and the next failed write fails the check again.
const storeFailureWindow = time.Minute

// serveHealth answers 200 "ok" if the store answers within a second or
// two, 503 otherwise: also while shutting down, when the store is
// read-only (salvage mode), when its file was deleted or replaced, and
// when its last write failed (less than storeFailureWindow ago) and none
// succeeded since: a store that reads but no longer writes (a full disk)
// loses every change sent to the server.
func (s *Server) serveHealth(w http.ResponseWriter, req *http.Request) {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if s.salvage != "" {
		http.Error(w, "store read-only (salvage mode): "+s.salvage, http.StatusServiceUnavailable)
		return
	}
	if s.dbFile != nil {
		if fi, err := os.Stat(s.dbPath); err != nil || !os.SameFile(fi, s.dbFile) {
			s.log.Error("health check: the store's file was deleted or replaced while the server runs; what it writes now goes to a file no one can open again: restart the server",
				"file", s.dbPath)
			http.Error(w, "store file deleted or replaced: "+s.dbPath, http.StatusServiceUnavailable)
			return
		}
	}
	if sw := s.replica.StoreWrites(); sw.LastError != nil {
		if ago := time.Since(sw.LastErrorTime); ago < storeFailureWindow {
			http.Error(w, fmt.Sprintf("store writes failing: the last one, %s ago, failed and none succeeded since (%d failed since start): %v",
				ago.Round(time.Millisecond), sw.Failed, sw.LastError), http.StatusServiceUnavailable)
			return
		}
	}
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.replica.Store().Version(ctx, healthID); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("health check: the store does not answer a read", "err", err)
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// writeError answers with a JSON error body: {"error": msg, "code": code}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}{msg, code})
}
