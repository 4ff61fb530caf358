package main

import (
	"context"
	"fmt"
	"io"
)

func runCompact(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("compact", "compact --replica DIR\n\nFolds every document's change log into its saved copy (history is kept).", stderr)
	dir := replicaFlag(fs)
	r, _, err := openExisting(fs, dir, args, 0, 0)
	if err != nil {
		return err
	}
	defer r.Close()
	ctx := context.Background()
	var progress func(done, total int)
	if isTerminal(stderr) {
		progress = func(done, total int) { fmt.Fprintf(stderr, "\rcompacted %d/%d documents", done, total) }
		defer fmt.Fprintln(stderr)
	}
	return r.Compact(ctx, progress)
}
