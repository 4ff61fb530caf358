package causal

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// OpID identifies one operation: a Lamport counter and the actor that made
// it. Counters start at 1; the zero OpID means "none" (for example the start
// of a sequence, or the document root).
//
// OpIDs are totally ordered: by counter, then by actor. Because an actor's
// counter is always greater than every counter it had seen, an op that
// causally follows another has a greater OpID. The order of two concurrent ops
// is arbitrary but the same on every replica.
type OpID struct {
	Counter uint64
	Actor   ActorID
}

// IsZero reports whether id is the zero OpID.
func (id OpID) IsZero() bool { return id == OpID{} }

// Compare returns -1, 0 or +1 as id sorts before, equal to or after b.
func (id OpID) Compare(b OpID) int {
	switch {
	case id.Counter < b.Counter:
		return -1
	case id.Counter > b.Counter:
		return 1
	}
	return id.Actor.Compare(b.Actor)
}

// Less reports whether id sorts before b.
func (id OpID) Less(b OpID) bool { return id.Compare(b) < 0 }

// Add returns the OpID n counters after id, by the same actor: the ID of the
// n-th element of a run of elements inserted by one operation.
func (id OpID) Add(n uint64) OpID { return OpID{id.Counter + n, id.Actor} }

// String formats id as "counter@actor".
func (id OpID) String() string {
	if id.IsZero() {
		return "0@-"
	}
	return strconv.FormatUint(id.Counter, 10) + "@" + id.Actor.String()
}

// ErrBadOpID is returned when a string is not a valid op ID.
var ErrBadOpID = errors.New("causal: op ID must look like counter@actor")

// ParseOpID parses the form produced by OpID.String.
func ParseOpID(s string) (OpID, error) {
	c, a, ok := strings.Cut(s, "@")
	if !ok {
		return OpID{}, fmt.Errorf("%w: %q", ErrBadOpID, s)
	}
	if s == "0@-" {
		return OpID{}, nil
	}
	n, err := strconv.ParseUint(c, 10, 64)
	if err != nil || n == 0 {
		return OpID{}, fmt.Errorf("%w: %q", ErrBadOpID, s)
	}
	actor, err := ParseActorID(a)
	if err != nil {
		return OpID{}, fmt.Errorf("%w: %q", ErrBadOpID, s)
	}
	return OpID{n, actor}, nil
}

// ChangeID identifies one change: the actor that made it and the change's
// sequence number among that actor's changes (1, 2, 3, … with no gaps).
type ChangeID struct {
	Actor ActorID
	Seq   uint64
}

// String formats the change ID as "actor/seq".
func (c ChangeID) String() string { return c.Actor.Short() + "/" + strconv.FormatUint(c.Seq, 10) }

// Compare orders change IDs by actor, then sequence number.
func (c ChangeID) Compare(b ChangeID) int {
	if r := c.Actor.Compare(b.Actor); r != 0 {
		return r
	}
	switch {
	case c.Seq < b.Seq:
		return -1
	case c.Seq > b.Seq:
		return 1
	}
	return 0
}
