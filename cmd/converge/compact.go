package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

func runCompact(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("compact", "compact --replica DIR\n\nFolds every document's change log into its saved copy (history is kept).", stderr)
	dir := replicaFlag(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := wantArgs(fs, pos, 0, 0); err != nil {
		return err
	}
	ctx := context.Background()
	r, err := openReplica(ctx, *dir)
	if err != nil {
		return err
	}
	defer r.Close()
	var progress func(done, total int)
	if isTerminal(stderr) {
		progress = func(done, total int) { fmt.Fprintf(stderr, "\rcompacted %d/%d documents", done, total) }
		defer fmt.Fprintln(stderr)
	}
	return r.Compact(ctx, progress)
}
