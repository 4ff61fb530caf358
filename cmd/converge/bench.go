package main

import (
	"fmt"
	"io"
)

func runBench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, "Usage: converge bench trace [--runs N] FILE...\n\nReplays editing traces (see bench/README.md).")
		if len(args) == 0 {
			return fmt.Errorf("%w: name a benchmark", errUsage)
		}
		return nil
	}
	switch args[0] {
	case "trace":
		return runBenchTrace(args[1:], stdout, stderr)
	}
	return fmt.Errorf("%w: unknown benchmark %q", errUsage, args[0])
}
