//go:build !unix && !windows

package sqlite

import (
	"fmt"
	"os"
	"runtime"
)

// Without an OS file lock, one writer per folder cannot be guaranteed, and
// a store that might be corrupted by a second process is worse than none.
func lockFile(path string) (*os.File, error) {
	return nil, fmt.Errorf("store/sqlite: no file locking on %s", runtime.GOOS)
}

func unlockFile(f *os.File) error { return f.Close() }
