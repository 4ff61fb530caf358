//go:build unix

package bench

import "syscall"

// cpuTime is the CPU time (user and system, all threads) the process has
// used, in nanoseconds: what a step costs the machine, next to the wall
// time it takes when it runs on several cores.
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
