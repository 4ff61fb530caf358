// Package syncproto is converge's sync protocol: the messages two replicas
// exchange to bring each other's documents up to date, their binary framing,
// and the stable error codes. The protocol is symmetric (client with server,
// or replica with replica) and specified in docs/protocol.md.
//
// The package is pure: no I/O, goroutines or clock. Transports carry its
// frames (one message per WebSocket binary message, or per length-prefixed
// frame on a byte stream); the session logic that drives them is built on
// top of these messages.
package syncproto
