//go:build unix

package sqlite

import (
	"errors"
	"os"
	"syscall"

	"github.com/converge-sync/converge/store"
)

// lockFile opens (creating) path and takes an exclusive, non-blocking flock
// on it. The kernel drops the lock when the process dies, so a crash never
// leaves a store locked. A lock held through another open file of the same
// process also refuses, so two Stores in one process cannot share a folder
// either.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, store.ErrLocked
		}
		return nil, err
	}
	return f, nil
}

// unlockFile releases the lock. The file is left in place: removing it
// would let a process that opened it just before lock an unlinked file
// while another locks a new one.
func unlockFile(f *os.File) error {
	return f.Close() // closing the only descriptor releases the flock
}
