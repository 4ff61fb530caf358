// Package transport carries sync frames between two peers. A frame is one
// encoded syncproto message; a Conn moves whole frames, in order, so the
// session logic above never deals with partial reads, message boundaries or
// the wire protocol underneath.
//
// Two implementations exist: transport/ws (WebSocket, for real peers) and
// transport/pipe (in memory, for tests and simulation). transport/transporttest
// holds the contract tests every implementation passes.
//
// The portable rules, on top of the Conn method comments:
//
//   - Every error from Read that ends the connection wraps ErrClosed, so a read
//     loop ends on errors.Is(err, ErrClosed). A peer's Close shows up as a
//     *CloseError with its code and reason; an abrupt end (network failure,
//     process killed) wraps ErrClosed and the underlying error, without a
//     *CloseError.
//   - Frames written before Close are delivered before the peer sees the close.
//   - A frame over the reader's limit closes the connection with CloseTooBig;
//     the reader's Read returns an error wrapping ErrTooBig and ErrClosed.
//   - Give Read one context that lives as long as the connection: when a
//     Read's context ends, an implementation may close the connection (ws
//     does, as the WebSocket library cannot abandon a read half way). The
//     same holds for a Write whose context ends while the frame is being sent.
//     End a connection with Close, which tells the peer why.
//   - After Close, Read and Write return errors wrapping ErrClosed, and
//     further Close calls return nil.
package transport
