package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/converge-sync/converge"
)

// parseArgs parses flags that may come before, between or after the
// positional arguments (`converge doc get DOC --replica DIR` works as well
// as the other order). A lone "--" ends the flags; arguments that look like
// negative numbers are positional, so `incr DOC /n -3` works.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
		for len(args) > 0 && isNegativeNumber(args[0]) {
			pos = append(pos, args[0])
			args = args[1:]
		}
	}
}

func isNegativeNumber(s string) bool {
	if !strings.HasPrefix(s, "-") || len(s) < 2 {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// newFlags makes a flag set whose usage prints the command's synopsis
// and its flags.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: converge %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// synopsis is the head of fs's usage, up to its first blank line: the
// command's form, without the description and the flags.
func synopsis(fs *flag.FlagSet) string {
	var b strings.Builder
	out := fs.Output()
	fs.SetOutput(&b)
	fs.Usage()
	fs.SetOutput(out)
	head, _, _ := strings.Cut(b.String(), "\n\n")
	return strings.TrimRight(head, "\n")
}

// replicaFlag adds --replica, defaulting to $CONVERGE_REPLICA.
func replicaFlag(fs *flag.FlagSet) *string {
	return fs.String("replica", os.Getenv("CONVERGE_REPLICA"), "replica folder (default $CONVERGE_REPLICA)")
}

// wantArgs checks the number of positional arguments.
func wantArgs(fs *flag.FlagSet, pos []string, min, max int) error {
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		fmt.Fprintln(fs.Output(), synopsis(fs))
		if max >= 0 && len(pos) > max {
			// Often a text left unquoted: name what was left over.
			return fmt.Errorf("%w: expected %s, got %d (left over: %s)", errUsage, countWord(min, max), len(pos), quoteAll(pos[max:]))
		}
		return fmt.Errorf("%w: expected %s, got %d", errUsage, countWord(min, max), len(pos))
	}
	return nil
}

func quoteAll(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = strconv.Quote(a)
	}
	return strings.Join(q, " ")
}

// countWord says how many arguments a command takes (max < 0: no limit).
func countWord(min, max int) string {
	noun := func(n int) string {
		if n == 1 {
			return "argument"
		}
		return "arguments"
	}
	switch {
	case max < 0:
		return fmt.Sprintf("at least %d %s", min, noun(min))
	case min == max:
		return fmt.Sprintf("%d %s", min, noun(min))
	}
	return fmt.Sprintf("%d to %d %s", min, max, noun(max))
}

// openCommand parses a replica command's flags and min..max positional
// arguments, and opens the replica named by dir. Asked for help (-h), it
// returns flag.ErrHelp, which main treats as success.
func openCommand(fs *flag.FlagSet, dir *string, args []string, min, max int) (*converge.Replica, []string, error) {
	return parseAndOpen(fs, dir, args, min, max, false)
}

// openExisting is openCommand for a command that only reads the replica:
// the folder must hold one already (mustBeReplica).
func openExisting(fs *flag.FlagSet, dir *string, args []string, min, max int) (*converge.Replica, []string, error) {
	return parseAndOpen(fs, dir, args, min, max, true)
}

func parseAndOpen(fs *flag.FlagSet, dir *string, args []string, min, max int, existing bool) (*converge.Replica, []string, error) {
	pos, err := parseCommand(fs, args, min, max)
	if err != nil {
		return nil, nil, err
	}
	if existing {
		if err := mustBeReplica(*dir); err != nil {
			return nil, nil, err
		}
	}
	r, err := openReplica(context.Background(), *dir)
	return r, pos, err
}

// explainFlagError replaces the flag package's "parse error", which says
// nothing of what was wanted, by the kind of value the flag takes.
func explainFlagError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	head, ok := strings.CutSuffix(msg, ": parse error")
	if !ok {
		return msg
	}
	if strings.HasPrefix(head, "invalid boolean value") {
		return head + ": want true or false (or the flag alone, for true)"
	}
	_, name, ok := strings.Cut(head, " for flag -")
	if !ok {
		return msg
	}
	f := fs.Lookup(name)
	if f == nil {
		return msg
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return msg
	}
	switch g.Get().(type) {
	case time.Duration:
		return head + ": want a duration such as 500ms, 30s, 5m or 24h"
	case int, int64, uint, uint64:
		return head + ": want a whole number"
	case float64:
		return head + ": want a number"
	}
	return msg
}

// parseCommand parses a command's flags (see parseArgs) and checks that
// min..max positional arguments (max < 0: any number) came with them.
// Asked for help (-h), it returns flag.ErrHelp, which main treats as
// success; any other problem is an errUsage.
//
// A mistake in the flags is reported in one line that says where the
// options are listed, rather than by the flag package's message followed
// by the whole usage (and then the message again, from main).
func parseCommand(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	pos, err := parseArgs(fs, args)
	fs.Usage = usage
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s (converge %s -h lists the options)", errUsage, explainFlagError(fs, err), fs.Name())
	}
	if err := wantArgs(fs, pos, min, max); err != nil {
		return nil, err
	}
	return pos, nil
}

func openReplica(ctx context.Context, dir string) (*converge.Replica, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: --replica DIR is required (or set CONVERGE_REPLICA)", errUsage)
	}
	r, err := converge.Open(ctx, dir, converge.WithCompactAfter(0))
	return r, lockedHint(err)
}

// lockedHint adds what to do to the error of a folder another process has
// open; other errors are returned as they are.
func lockedHint(err error) error {
	if errors.Is(err, converge.ErrLocked) {
		return fmt.Errorf("%w (one process at a time opens a folder: stop the converge sync, presence or serve, or the application, that has it open, then try again)", err)
	}
	return err
}

// mustBeReplica refuses a folder that holds no replica, for the commands
// that only read one: opening it would make a new, empty replica there, so
// a mistyped --replica would print nothing (or {}) and leave a stray folder.
func mustBeReplica(dir string) error {
	if dir == "" {
		return nil // openReplica says --replica is required
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("no replica at %s: the folder does not exist (a write such as converge doc set, or converge sync, makes one)", dir)
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("no replica at %s: it is a file, not a folder", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "actor")); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no replica at %s: the folder holds none (a replica folder has an actor file and replica.db)", dir)
	}
	return nil
}
