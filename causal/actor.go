package causal

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// ActorID identifies one replica (one device, one process that writes). It is
// 16 random bytes, chosen once when a replica is created and kept for its
// life. Two replicas must never share an ActorID: op IDs would collide.
type ActorID [16]byte

// ErrBadActorID is returned when a string is not a valid actor ID.
var ErrBadActorID = errors.New("causal: actor ID must be 32 hex digits")

// NewActorID returns a fresh random actor ID. It panics only if the operating
// system's random source fails, which leaves no safe way to continue.
func NewActorID() ActorID {
	var a ActorID
	if _, err := rand.Read(a[:]); err != nil {
		panic("causal: reading random bytes: " + err.Error())
	}
	return a
}

// ParseActorID parses the 32-hex-digit form produced by ActorID.String.
func ParseActorID(s string) (ActorID, error) {
	var a ActorID
	if len(s) != 2*len(a) {
		return a, fmt.Errorf("%w: %q", ErrBadActorID, s)
	}
	if _, err := hex.Decode(a[:], []byte(s)); err != nil {
		return a, fmt.Errorf("%w: %q", ErrBadActorID, s)
	}
	return a, nil
}

// String returns the actor ID as 32 lowercase hex digits.
func (a ActorID) String() string { return hex.EncodeToString(a[:]) }

// Short returns the first 8 hex digits, for logs and terminals.
func (a ActorID) Short() string { return hex.EncodeToString(a[:4]) }

// IsZero reports whether a is the zero actor, which no replica may use.
func (a ActorID) IsZero() bool { return a == ActorID{} }

// Compare orders actor IDs by their bytes. Every replica uses this order to
// break ties, so it must never change.
func (a ActorID) Compare(b ActorID) int { return bytes.Compare(a[:], b[:]) }
