package causal

import (
	"slices"
	"strconv"
	"strings"
)

// VersionVector records, for each actor, the highest sequence number of its
// changes that a replica holds. Because a replica applies an actor's changes
// in sequence order and only after their dependencies, a version vector names
// a causally closed set of changes exactly, and comparing two of them tells
// what one side lacks.
//
// A nil VersionVector is the empty version. Methods that return a vector
// never alias their receiver.
type VersionVector map[ActorID]uint64

// Get returns the highest sequence number held for actor (0 if none).
func (v VersionVector) Get(actor ActorID) uint64 { return v[actor] }

// Includes reports whether the change c is part of this version.
func (v VersionVector) Includes(c ChangeID) bool { return v[c.Actor] >= c.Seq }

// Clone returns a copy of v.
func (v VersionVector) Clone() VersionVector {
	out := make(VersionVector, len(v))
	for a, s := range v {
		out[a] = s
	}
	return out
}

// Observe raises v's entry for c.Actor to at least c.Seq.
func (v VersionVector) Observe(c ChangeID) {
	if v[c.Actor] < c.Seq {
		v[c.Actor] = c.Seq
	}
}

// Merge raises every entry of v to at least the matching entry of o.
func (v VersionVector) Merge(o VersionVector) {
	for a, s := range o {
		if v[a] < s {
			v[a] = s
		}
	}
}

// Ordering is how two versions relate.
type Ordering int

// The four ways two versions can relate.
const (
	Equal      Ordering = iota // the same changes
	Before                     // the receiver is strictly contained in the other
	After                      // the receiver strictly contains the other
	Concurrent                 // each holds changes the other lacks
)

func (o Ordering) String() string {
	return [...]string{"equal", "before", "after", "concurrent"}[o]
}

// Compare tells how v relates to o.
func (v VersionVector) Compare(o VersionVector) Ordering {
	less, more := false, false
	for a, s := range v {
		if t := o[a]; s > t {
			more = true
		} else if s < t {
			less = true
		}
	}
	for a, t := range o {
		if _, ok := v[a]; !ok && t > 0 {
			less = true
		}
	}
	switch {
	case less && more:
		return Concurrent
	case less:
		return Before
	case more:
		return After
	}
	return Equal
}

// Contains reports whether v holds every change that o holds.
func (v VersionVector) Contains(o VersionVector) bool {
	for a, t := range o {
		if v[a] < t {
			return false
		}
	}
	return true
}

// Actors returns the actors with a non-zero entry, in ActorID order, so that
// iteration is deterministic.
func (v VersionVector) Actors() []ActorID {
	out := make([]ActorID, 0, len(v))
	for a, s := range v {
		if s > 0 {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, ActorID.Compare)
	return out
}

// Total is the number of changes the version holds.
func (v VersionVector) Total() uint64 {
	var n uint64
	for _, s := range v {
		n += s
	}
	return n
}

// String formats the vector deterministically, for logs and tests.
func (v VersionVector) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, a := range v.Actors() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.Short())
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(v[a], 10))
	}
	b.WriteByte('}')
	return b.String()
}
