package syncproto

import "strconv"

// Code is a stable error code: programs decide on it, people read Message.
// The numbers never change; new codes are added at the end.
type Code uint16

const (
	CodeProtocolVersion Code = 1  // the peer speaks a protocol version this side does not
	CodeMalformed       Code = 2  // a frame that does not decode
	CodeFrameTooLarge   Code = 3  // a frame over the agreed limit
	CodeUnauthorized    Code = 4  // no token, or a token that does not verify
	CodeForbidden       Code = 5  // the token does not allow this document
	CodeReadOnly        Code = 6  // changes sent with a read-only grant; nothing was stored
	CodeInvalidChange   Code = 7  // a change the document model refuses; nothing was stored
	CodeRateLimited     Code = 8  // too many changes per second
	CodeTooManyDocs     Code = 9  // too many subscriptions on one connection
	CodeUnavailable     Code = 10 // the server cannot serve now (storage failing, overloaded)
	CodeGoingAway       Code = 11 // the server is shutting down; reconnect elsewhere or later
	CodeInternal        Code = 12 // a bug on the sender's side
	CodeTokenExpired    Code = 13 // the token expired during the session
	CodeNotSubscribed   Code = 14 // a message about a document not subscribed
	CodeTooManyConns    Code = 15 // too many connections from one address
	CodeProtocol        Code = 16 // a message out of order (e.g. before Hello)
	CodeTooManyPending  Code = 17 // too many changes sent ahead of their dependencies
)

var codeNames = [...]string{"", "protocol_version", "malformed", "frame_too_large", "unauthorized",
	"forbidden", "read_only", "invalid_change", "rate_limited", "too_many_docs", "unavailable",
	"going_away", "internal", "token_expired", "not_subscribed", "too_many_connections", "protocol",
	"too_many_pending"}

func (c Code) String() string {
	if int(c) < len(codeNames) && c > 0 {
		return codeNames[c]
	}
	return "code_" + strconv.Itoa(int(c))
}
