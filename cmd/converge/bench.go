package main

import (
	"fmt"
	"io"
)

func runBench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, `Usage: converge bench trace [--runs N] FILE...
       converge bench sync --server URL [--clients C] [--docs D] [--rate R] [--duration T]

trace: replays editing traces into documents (see bench/README.md).
sync:  loads a running sync server with many clients and measures fan-out latency.
Run 'converge bench trace -h' or 'converge bench sync -h' for the options.`)
		if len(args) == 0 {
			return fmt.Errorf("%w: name a benchmark", errUsage)
		}
		return nil
	}
	switch args[0] {
	case "trace":
		return inSubcommand("bench trace", runBenchTrace(args[1:], stdout, stderr))
	case "sync":
		return inSubcommand("bench sync", runBenchSync(args[1:], stdout, stderr))
	}
	return fmt.Errorf("%w: unknown benchmark %q", errUsage, args[0])
}
