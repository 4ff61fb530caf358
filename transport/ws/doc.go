// Package ws is converge's WebSocket transport: one binary WebSocket message
// per frame, on top of github.com/coder/websocket, which does the protocol
// work (handshake, framing, masking, ping/pong, the close handshake and the
// read limit). This package only fits it to transport.Conn: it names the
// subprotocol, refuses text messages, turns close statuses into
// *transport.CloseError, bounds writes in time, and turns a refused
// handshake into a *HandshakeError a program can show ("401 unauthorized:
// token expired") instead of a generic dial failure.
//
// Subprotocol: Dial offers "converge.v1" and Accept selects it when offered.
// Accept still accepts a client that offers no subprotocol (or only others),
// because the protocol version is negotiated by the first frames (Hello and
// Welcome) anyway, and simple clients and some proxies do not send the
// header; a client that is not speaking converge fails at Hello instead.
//
// Compression (permessage-deflate) stays off, the library's default: frames
// are already compact, and per-connection compressors cost a server memory.
package ws
