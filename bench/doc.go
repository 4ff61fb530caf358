// Package bench replays editing traces into converge documents and measures
// what users feel: time to apply, to save, to load, bytes saved and memory
// held. `converge bench trace` prints its results; trace_test.go runs the
// same replays as testing.B benchmarks; bench/anchors runs the same traces
// through other engines for side-by-side ratios (see bench/README.md).
package bench
