package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/auth"
	"github.com/converge-sync/converge/server"
	"github.com/converge-sync/converge/syncproto"
)

const serveSynopsis = `serve [--addr HOST:PORT] [--data DIR] [--auth-secret-file F | --auth-public-key-file F]
       [--tls-cert F --tls-key F] [limits] [--log-level LEVEL] [--log-format text|json] [--pprof ADDR]

Runs a sync server: replicas sync through it with ws://HOST:PORT/v1/sync.
It keeps the documents in DIR (a cache their clients can refill), serves
GET /v1/docs/{id} (the document as JSON), /healthz and /metrics, and logs
to stderr. SIGINT or SIGTERM shuts it down gracefully.

With a token key (--auth-secret-file for HMAC, --auth-public-key-file for
EdDSA), every client presents a token (converge token issue) saying which
documents it may read or write. Without one, any client may read and write
everything, so the server listens on loopback addresses only, unless given
--insecure-no-auth.`

func runServe(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal shuts the server down gracefully (up to its
	// shutdown timeout); no longer caught, a second ends it at once.
	context.AfterFunc(ctx, stop)
	return serve(ctx, args, stderr)
}

// serve runs the server until ctx ends.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("serve", serveSynopsis, stderr)
	addr := fs.String("addr", server.DefaultAddr, "address to listen on (port 0: any free port, logged at startup)")
	data := fs.String("data", server.DefaultDataDir, "data folder")
	maxDocs := fs.Int("max-docs-in-memory", server.DefaultMaxDocsInMemory,
		"documents kept in memory; beyond, the least recently used that no client follows are unloaded (-1: no limit)")
	secretFile := fs.String("auth-secret-file", "", "verify tokens with the HMAC secret in this file (at least 32 bytes)")
	pubFile := fs.String("auth-public-key-file", "", "verify tokens with the Ed25519 public key in this PEM file")
	insecure := fs.Bool("insecure-no-auth", false, "with no token key, serve addresses other than loopback anyway: anyone who reaches the server may read and write every document")
	tlsCert := fs.String("tls-cert", "", "serve TLS (https, wss) with this PEM certificate (chain)")
	tlsKey := fs.String("tls-key", "", "the PEM private key of --tls-cert")
	connsPerAddr := fs.Int("max-conns-per-addr", server.DefaultMaxConnsPerAddr, "sync connections from one client address, an IPv6 one by its /64 (-1: no limit)")
	ipHeader := fs.String("client-ip-header", "", "behind a reverse proxy: the header it sets to the client's address (e.g. X-Forwarded-For), for --max-conns-per-addr")
	rate := fs.Float64("max-changes-per-second", server.DefaultChangesPerSecond, "changes one connection may send per second, sustained (-1: no limit)")
	burst := fs.Int("change-burst", converge.DefaultChangeBurst, "changes one connection may send at once")
	maxHeld := fs.Int("max-held", converge.DefaultMaxHeld, "changes one connection may send ahead of their dependencies")
	docsPerConn := fs.Int("max-docs-per-conn", 10_000, "documents one connection may subscribe to")
	maxFrame := fs.Int("max-frame", syncproto.DefaultLimits.MaxFrame, "largest frame (WebSocket message) accepted, in bytes")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	format := fs.String("log-format", "text", "text or json")
	pprofAddr := fs.String("pprof", "", "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060 (off by default)")
	if _, err := parseCommand(fs, args, 0, 0); err != nil {
		return err
	}
	if *maxDocs == 0 {
		return fmt.Errorf("%w: --max-docs-in-memory must be positive, or -1 for no limit", errUsage)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, *level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch *format {
	case "text":
		h = slog.NewTextHandler(stderr, opts)
	case "json":
		h = slog.NewJSONHandler(stderr, opts)
	default:
		return fmt.Errorf("%w: --log-format %q: want text or json", errUsage, *format)
	}
	cfg := server.Config{Addr: *addr, DataDir: *data, Logger: slog.New(h), MaxDocsInMemory: *maxDocs,
		InsecureNoAuth: *insecure, TLSCertFile: *tlsCert, TLSKeyFile: *tlsKey,
		MaxConnsPerAddr: *connsPerAddr, ClientIPHeader: *ipHeader, ChangesPerSecond: *rate, ChangeBurst: *burst,
		MaxHeld: *maxHeld, MaxDocsPerConn: *docsPerConn}
	for name, v := range map[string]int{"--change-burst": *burst, "--max-held": *maxHeld, "--max-docs-per-conn": *docsPerConn, "--max-conns-per-addr": *connsPerAddr} {
		if v == 0 {
			return fmt.Errorf("%w: %s must not be 0", errUsage, name)
		}
	}
	if *maxFrame < 1024 {
		return fmt.Errorf("%w: --max-frame must be at least 1024 bytes", errUsage)
	}
	if *maxFrame != syncproto.DefaultLimits.MaxFrame {
		cfg.Limits = syncproto.DefaultLimits
		cfg.Limits.MaxFrame = *maxFrame
	}
	if *rate == 0 {
		return fmt.Errorf("%w: --max-changes-per-second must not be 0 (-1 for no limit)", errUsage)
	}
	switch {
	case *secretFile != "" && *pubFile != "":
		return fmt.Errorf("%w: give --auth-secret-file or --auth-public-key-file, not both", errUsage)
	case *secretFile != "":
		secret, err := auth.ReadSecretFile(*secretFile)
		if err != nil {
			return err
		}
		if cfg.Auth, err = auth.NewHMACVerifier(secret); err != nil {
			return err
		}
	case *pubFile != "":
		pub, err := auth.ReadPublicKeyFile(*pubFile)
		if err != nil {
			return err
		}
		if cfg.Auth, err = auth.NewEdDSAVerifier(pub); err != nil {
			return err
		}
	}
	// Refuse an exposed address, and take the port, before opening the data
	// folder: a start that fails on its address leaves no folder behind and
	// does not wait for a large store to open first.
	if err := cfg.CheckAddr(cfg.Addr); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("server: %w (something else listens on %s: stop it, or give another --addr; port 0 takes any free one)", err, *addr)
	}
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	srv, err := server.New(cfg)
	if err != nil {
		ln.Close()
		return lockedHint(err)
	}
	if *pprofAddr != "" {
		stopProfiler, err := serveProfiler(*pprofAddr, slog.New(h))
		if err != nil {
			ln.Close()
			srv.Close()
			return err
		}
		defer stopProfiler()
	}
	return srv.Serve(ctx, ln)
}
