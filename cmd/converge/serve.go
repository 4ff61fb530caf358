package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/converge-sync/converge/server"
)

const serveSynopsis = `serve [--addr HOST:PORT] [--data DIR] [--max-docs-in-memory N] [--log-level LEVEL] [--log-format text|json] [--pprof ADDR]

Runs a sync server: replicas sync through it with ws://HOST:PORT/v1/sync.
It keeps the documents in DIR (a cache their clients can refill), serves
GET /v1/docs/{id} (the document as JSON), /healthz and /metrics, and logs
to stderr. SIGINT or SIGTERM shuts it down gracefully. Every client may
read and write every document: there is no access control yet.`

func runServe(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, args, stderr)
}

// serve runs the server until ctx ends.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("serve", serveSynopsis, stderr)
	addr := fs.String("addr", server.DefaultAddr, "address to listen on (port 0: any free port, logged at startup)")
	data := fs.String("data", server.DefaultDataDir, "data folder")
	maxDocs := fs.Int("max-docs-in-memory", server.DefaultMaxDocsInMemory,
		"documents kept in memory; beyond, the least recently used that no client follows are unloaded (-1: no limit)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	format := fs.String("log-format", "text", "text or json")
	pprofAddr := fs.String("pprof", "", "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060 (off by default)")
	pos, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := wantArgs(fs, pos, 0, 0); err != nil {
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
	srv, err := server.New(server.Config{Addr: *addr, DataDir: *data, Logger: slog.New(h), MaxDocsInMemory: *maxDocs})
	if err != nil {
		return err
	}
	if *pprofAddr != "" {
		stopProfiler, err := serveProfiler(*pprofAddr, slog.New(h))
		if err != nil {
			srv.Close()
			return err
		}
		defer stopProfiler()
	}
	return srv.ListenAndServe(ctx)
}
