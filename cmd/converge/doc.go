// Command converge is converge's command line: a walk-through of the merge
// model (demo) and benchmarks on editing traces (bench). Later layers add
// the server, sync, and commands to read and edit documents in a replica.
//
//	converge demo          two replicas edit apart, merge, show and resolve a conflict
//	converge bench trace   replay editing traces and report speed and size
package main
