package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/converge-sync/converge/bench"
	"github.com/converge-sync/converge/crdt"
	"github.com/converge-sync/converge/encoding"
	"github.com/converge-sync/converge/internal/trace"
)

func runBenchTrace(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench trace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runs := fs.Int("runs", 5, "replays per trace; timings are medians")
	warmup := fs.Int("warmup", 1, "untimed replays per trace before the timed ones (as bench/anchors gives the other engines)")
	repeat := fs.Int("repeat", 1, "replay each sequential trace this many times in a row in one document (a long document from a real history)")
	history := fs.String("history", "compact", "change log of the documents: compact (encoding.History) or slice (crdt.SliceHistory)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the replays (this process) to FILE")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: converge bench trace [--runs N] [--warmup N] [--repeat N] [--history compact|slice] [--cpuprofile FILE] FILE...

Replays editing traces (.json.gz, formats in the traces' README) into converge
documents and prints one JSON line per trace:
  {"trace","ops","applyMs","encodeMs","encodeCpuMs","loadMs","openMs","bytes","heapBytes","editUs","ok"}
Sequential traces: one change per transaction. Concurrent traces: one replica
per agent, merging as the parents say (mergeMs: the time spent merging).
encodeMs/bytes: saving the document with full history (encodeCpuMs: the
process's CPU time meanwhile, on all cores); loadMs: loading those
bytes until the text can be read; openMs: loading them into an editable
document with full history; editUs: one keystroke change on that document
(mean of 1,000 at random places); heapBytes: Go heap held by the document.
--repeat N replays a sequential trace N times in a row (the text N times over).
ok: the final text equals the trace's endContent.

Flags:`)
		fs.PrintDefaults()
	}
	files, err := parseCommand(fs, args, 0, -1) // flags before or after the files
	if err != nil {
		return err
	}
	switch *history {
	case "compact":
		bench.NewHistory = func() crdt.History { return encoding.NewHistory() }
	case "slice":
		bench.NewHistory = func() crdt.History { return crdt.NewSliceHistory() }
	default:
		return fmt.Errorf("%w: --history is compact or slice, not %q", errUsage, *history)
	}
	if *runs < 1 || *repeat < 1 || *warmup < 0 {
		return fmt.Errorf("%w: --runs and --repeat are at least 1, --warmup at least 0", errUsage)
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, synopsis(fs))
		return fmt.Errorf("%w: name at least one trace file (e.g. ../shared/traces/*.json.gz)", errUsage)
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	failed := 0
	enc := json.NewEncoder(stdout)
	for _, f := range files {
		if isTerminal(stderr) {
			fmt.Fprintf(stderr, "replaying %s (%d runs)…\n", filepath.Base(f), *runs)
		}
		tr, err := trace.Load(f)
		if err != nil {
			return err
		}
		res := bench.Run(tr, bench.Options{Runs: *runs, Repeat: *repeat, Warmup: *warmup})
		if !res.OK {
			failed++
		}
		if err := enc.Encode(res); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d trace(s) did not reach their final text", failed)
	}
	return nil
}

// isTerminal reports whether w is a terminal, where progress lines help a
// person; scripts reading the output get none.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
