// Package transporttest is the contract every transport.Conn implementation
// passes: Run checks, on a fresh connected pair per case, what the session
// logic relies on (order, integrity, full duplex, close codes, limits), so
// the session can be tested over pipes and trusted over WebSockets.
package transporttest
