package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one subcommand: its name, a one-line summary, and its body.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"demo", "two replicas edit one document apart, merge, show a conflict, resolve it", runDemo},
		{"doc", "read and edit documents in a replica folder: get, set, del, text, splice, incr, …", runDoc},
		{"export", "write a document with its history to a portable file", runExport},
		{"import", "merge exported documents into a replica", runImport},
		{"sync", "sync a replica's documents with a server, once or continuously", runSync},
		{"presence", "see who is present in a document, and be present", runPresence},
		{"compact", "fold each document's change log into its saved copy", runCompact},
		{"serve", "run a sync server: WebSocket sync, documents as JSON, health and metrics", runServe},
		{"token", "issue access tokens for a server: `converge token issue --secret-file F --sub NAME --allow 'notes/*:rw'`", runToken},
		{"bench", "benchmarks: `bench trace FILE...` replays editing traces; `bench sync` loads a sync server", runBench},
	}
}

// errUsage marks errors that are the caller's words being off; main exits
// with status 2 for them (1 for any other failure).
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 2 && args[0] == "help" {
		args = []string{args[1], "-h"} // converge help serve: serve's usage
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			if err := c.run(args[1:], stdout, stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
				name := c.name
				var sub *subcommandError
				if errors.As(err, &sub) {
					name = sub.name
				}
				// The library's errors start "converge: " too; once is enough.
				fmt.Fprintf(stderr, "converge %s: %s\n", name, strings.TrimPrefix(err.Error(), "converge: "))
				if errors.Is(err, errUsage) {
					return 2
				}
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "converge: unknown command %q (try 'converge help')\n", args[0])
	return 2
}

// subcommandError names the subcommand an error came from, so that main
// says "converge doc get: ..." rather than "converge doc: ...".
type subcommandError struct {
	name string // as typed after "converge": "doc get"
	err  error
}

func (e *subcommandError) Error() string { return e.err.Error() }
func (e *subcommandError) Unwrap() error { return e.err }

// inSubcommand wraps err (if any) with the subcommand's name.
func inSubcommand(name string, err error) error {
	if err == nil {
		return nil
	}
	return &subcommandError{name, err}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "converge: a local-first sync engine\n\nUsage: converge COMMAND [ARGS]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'converge COMMAND -h' for a command's options.")
}
