// Package prototest speaks the sync protocol by hand, for tests that must
// send what a well-behaved replica never would (changes out of order,
// forged duplicates, changes to documents a token does not allow) over any
// transport.Conn, and watch how the other side answers.
package prototest
