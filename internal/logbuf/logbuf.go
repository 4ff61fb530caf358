package logbuf

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer collects log lines; it is safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Line returns the first line holding every one of parts, or "".
func (l *Buffer) Line(parts ...string) string {
next:
	for _, ln := range strings.Split(l.String(), "\n") {
		for _, p := range parts {
			if !strings.Contains(ln, p) {
				continue next
			}
		}
		return ln
	}
	return ""
}
