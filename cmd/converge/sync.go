package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport/ws"
)

// syncFlags are the flags sync and presence share.
type syncFlags struct {
	dir, server, token, tokenFile *string
	timeout                       *time.Duration
}

// addSyncFlags adds them; timeoutUsage says what --timeout bounds in the
// command at hand.
func addSyncFlags(fs *flag.FlagSet, timeoutUsage string) syncFlags {
	return syncFlags{
		dir:       replicaFlag(fs),
		server:    fs.String("server", os.Getenv("CONVERGE_SERVER"), "server URL, such as http://127.0.0.1:7878 (default $CONVERGE_SERVER)"),
		token:     fs.String("token", os.Getenv("CONVERGE_TOKEN"), "access token (default $CONVERGE_TOKEN)"),
		tokenFile: fs.String("token-file", "", "read the access token from this file"),
		timeout:   fs.Duration("timeout", 30*time.Second, timeoutUsage),
	}
}

// parse parses the command's arguments and checks that a replica is named.
func (f syncFlags) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	pos, err := parseCommand(fs, args, 0, -1)
	if err != nil {
		return nil, err
	}
	if *f.dir == "" {
		return nil, fmt.Errorf("%w: --replica DIR is required (or set CONVERGE_REPLICA)", errUsage)
	}
	return pos, nil
}

// tokenGiven reports whether the command was given a token.
func (f syncFlags) tokenGiven() bool { return *f.token != "" || *f.tokenFile != "" }

// start opens the replica and starts syncing it.
func (f syncFlags) start(ctx context.Context, stderr io.Writer, docs []string) (*converge.Replica, *converge.Syncer, error) {
	if *f.server == "" {
		return nil, nil, fmt.Errorf("%w: --server URL is required (or set CONVERGE_SERVER)", errUsage)
	}
	token := *f.token
	if *f.tokenFile != "" {
		b, err := os.ReadFile(*f.tokenFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r, err := converge.Open(ctx, *f.dir, converge.WithCompactAfter(0), converge.WithLogger(log))
	if err != nil {
		return nil, nil, lockedHint(err)
	}
	opts := []converge.SyncOption{converge.SyncName("converge-cli")}
	if token != "" {
		opts = append(opts, converge.SyncToken(token))
	}
	if len(docs) > 0 {
		for _, id := range docs {
			if _, err := r.Doc(ctx, id); err != nil {
				r.Close()
				return nil, nil, err
			}
		}
		opts = append(opts, converge.SyncDocs(docs...))
	}
	s, err := r.Sync(ctx, *f.server, opts...)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return r, s, nil
}

func runSync(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sync", `sync --replica DIR --server URL [--token T] [--once] [DOC...]

Syncs the replica's documents (or only the named ones) with a converge
server, both ways. With --once it exits 0 as soon as both sides hold
everything; without, it keeps syncing, reconnecting after failures, until
interrupted.`, stderr)
	f := addSyncFlags(fs, "with --once: give up after this long")
	once := fs.Bool("once", false, "exit once both sides hold everything")
	docs, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second signal ends it at once (see runServe)
	r, s, err := f.start(ctx, stderr, docs)
	if err != nil {
		return err
	}
	defer r.Close()
	defer s.Stop()
	if *once {
		wctx, cancel := context.WithTimeout(ctx, *f.timeout)
		defer cancel()
		start := time.Now()
		if err := s.WaitSynced(wctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("not synced after %v: %w", *f.timeout, err)
			}
			return explainRefusal(err, f.tokenGiven())
		}
		st := s.Status()
		fmt.Fprintf(stdout, "synced with %s in %v; nothing left unacknowledged\n", st.URL, time.Since(start).Round(time.Millisecond))
		return nil
	}
	select {
	case <-ctx.Done():
		return nil
	case <-s.Done():
		return explainRefusal(s.Err(), f.tokenGiven())
	}
}

func runPresence(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("presence", `presence --replica DIR --server URL DOC [--set JSON] [--watch]

Shows who is present in a document, as one JSON line per peer. With --set,
this replica is present with the given JSON state (a name, a cursor) while
the command runs. With --watch it prints the list again at every change
until interrupted; without, it prints it once and exits. The document is
synced meanwhile.`, stderr)
	f := addSyncFlags(fs, "without --watch: give up if the document is not synced after this long")
	setState := fs.String("set", "", "be present with this JSON state, e.g. '{\"name\":\"ada\"}'")
	watch := fs.Bool("watch", false, "keep printing the presence at every change")
	settle := fs.Duration("wait", 500*time.Millisecond, "without --watch: how long to gather presence after syncing")
	pos, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos, 1, 1); err != nil {
		return err
	}
	var state any
	if *setState != "" {
		if err := json.Unmarshal([]byte(*setState), &state); err != nil {
			return fmt.Errorf("%w: --set must be JSON: %v", errUsage, err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second signal ends it at once (see runServe)
	r, s, err := f.start(ctx, stderr, pos)
	if err != nil {
		return err
	}
	defer r.Close()
	defer s.Stop()
	d, err := r.Doc(ctx, pos[0])
	if err != nil {
		return err
	}
	if state != nil {
		if err := d.SetPresence(state); err != nil {
			return err
		}
	}
	print := func(list []converge.Presence) {
		for _, p := range list {
			line, _ := json.Marshal(map[string]any{"peer": p.Peer.String(), "self": p.Self, "state": p.State})
			fmt.Fprintln(stdout, string(line))
		}
		if *watch {
			fmt.Fprintln(stdout) // a blank line ends each list
		}
	}
	if *watch {
		changes := make(chan []converge.Presence, 16)
		defer d.WatchPresence(func(list []converge.Presence) {
			select {
			case changes <- list:
			default: // the printer is behind; a later list follows
			}
		})()
		print(d.Presence())
		for {
			select {
			case list := <-changes:
				print(list)
			case <-ctx.Done():
				return nil
			case <-s.Done():
				return explainRefusal(s.Err(), f.tokenGiven())
			}
		}
	}
	wctx, cancel := context.WithTimeout(ctx, *f.timeout)
	defer cancel()
	if err := s.WaitSynced(wctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("not synced after %v: %w", *f.timeout, err)
		}
		return explainRefusal(err, f.tokenGiven())
	}
	select {
	case <-time.After(*settle):
	case <-ctx.Done():
	}
	print(d.Presence())
	return nil
}

// explainRefusal turns a server's refusal of this client's token into what
// to do about it; any other error is returned as it is. tokenGiven: the
// command was given a token (--token, --token-file or $CONVERGE_TOKEN).
func explainRefusal(err error, tokenGiven bool) error {
	code := ""
	var he *ws.HandshakeError
	var pe *syncproto.PeerError
	switch {
	case errors.As(err, &he) && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden):
		var body struct{ Code string }
		json.Unmarshal([]byte(he.Body), &body) // a server that is not converge's may answer anything
		code = body.Code
	case errors.As(err, &pe) && (pe.Code == syncproto.CodeUnauthorized || pe.Code == syncproto.CodeTokenExpired):
		code = pe.Code.String()
	default:
		return err
	}
	switch {
	case code == "token_expired":
		return fmt.Errorf("the server refused the token: it has expired; give a new one (converge token issue makes one): %w", err)
	case !tokenGiven:
		return fmt.Errorf("the server requires a token: give --token, --token-file or $CONVERGE_TOKEN (converge token issue makes one): %w", err)
	}
	return fmt.Errorf("the server refused the token: check that it is whole and was issued with this server's key: %w", err)
}
