//go:build !linux

package load

import "errors"

// ProcUsage is what the OS says a process has used.
type ProcUsage struct {
	CPUS      float64
	RSSBytes  int64
	PeakBytes int64
}

// Usage reads process pid's CPU time and memory; only Linux is supported.
func Usage(pid int) (ProcUsage, error) {
	return ProcUsage{}, errors.New("load: reading another process's usage needs Linux's /proc")
}
