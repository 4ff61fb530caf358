// Package pipe is an in-memory transport.Conn pair, for tests and
// simulation: two ends joined by one bounded, in-order buffer per direction.
//
// It behaves like a socket where that matters to the session logic: Write
// copies the frame and blocks while the peer's buffer is full (so slow
// readers push back on writers), frames written before Close are still
// delivered, and the peer then sees the Close's code and reason. It differs
// where a socket's behaviour would only make tests slow or flaky: a Read or
// Write whose context ends returns ctx.Err() and leaves the connection open.
package pipe
