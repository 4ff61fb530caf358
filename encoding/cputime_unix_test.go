//go:build unix

package encoding

import "syscall"

// cpuTime is the CPU time (user and system, all threads) the process has
// used, in nanoseconds. On a machine shared with other work it is a steadier
// measure than wall time, which counts the time spent waiting for a core.
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
