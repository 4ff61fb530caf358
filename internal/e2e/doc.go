// Package e2e holds the end-to-end tests: the converge binary, built once,
// run as a server and as clients on loopback, checked from outside through
// its commands and HTTP endpoints. It has no code of its own.
package e2e
