// Package auth is converge's access control: tokens that say who a client
// is and which documents it may read or write, and the rules that match
// document IDs against a token's grants.
//
// A token is a JWT (RFC 7519) signed with HMAC-SHA256 (a shared secret) or
// EdDSA (Ed25519: the server holds only the public key, so an
// application's own auth service can mint tokens the server cannot). Its
// claims are the subject ("sub", recorded with every change it sends),
// the expiry ("exp", required) and the documents allowed ("allow": a list
// of grants such as "notes/*:rw" and "public/**:r").
//
// The package knows nothing of the network: a server verifies the token a
// connection presents and consults the resulting Claims on every message.
package auth
