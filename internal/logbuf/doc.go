// Package logbuf is a log sink for tests: a buffer that servers and
// commands may write to from many goroutines while a test reads it.
package logbuf
