//go:build windows

package sqlite

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"

	"github.com/converge-sync/converge/store"
)

// lockFile opens (creating) path and takes an exclusive lock on its first
// byte without waiting. Windows drops the lock when the process exits.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	ol := new(windows.Overlapped)
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if err != nil {
		f.Close()
		if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
			return nil, store.ErrLocked
		}
		return nil, err
	}
	return f, nil
}

func unlockFile(f *os.File) error { return f.Close() }
