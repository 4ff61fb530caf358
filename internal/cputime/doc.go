// Package cputime reads the CPU time the process has used, for benchmarks
// and load tools. On a machine shared with other work CPU time is a
// steadier measure than wall time, which counts the time spent waiting
// for a core, and it counts the work of every goroutine, background ones
// (a collector, a compaction, a writer) included.
package cputime
