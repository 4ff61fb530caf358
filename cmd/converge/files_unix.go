//go:build unix

package main

import (
	"fmt"
	"io"
	"syscall"
)

// ensureFiles makes sure this process may open n files (one per client
// connection, plus a margin). Go raises the soft limit to the hard one at
// startup; past the hard limit only the system's administrator can help.
func ensureFiles(n int, stderr io.Writer) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // unknown: try anyway
	}
	if lim.Cur >= uint64(n) {
		return nil
	}
	if lim.Max < uint64(n) {
		return fmt.Errorf("%d connections need %d open files; the hard limit is %d (raise it: ulimit -Hn, or limits.conf)", n-64, n, lim.Max)
	}
	old := lim.Cur
	lim.Cur = uint64(n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raising the open-file limit from %d to %d: %w", old, n, err)
	}
	fmt.Fprintf(stderr, "raised the open-file limit from %d to %d\n", old, n)
	return nil
}
