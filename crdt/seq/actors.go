package seq

import "github.com/converge-sync/converge/causal"

// actorTable gives every actor seen a small index, so that runs hold 4-byte
// actor numbers instead of 16-byte IDs. Indexes are in order of first
// appearance and differ between replicas; anything that orders elements
// compares the real ActorIDs.
type actorTable struct {
	ids   []causal.ActorID
	index map[causal.ActorID]uint32
	idx   []*actorIndex // per actor: where its elements are

	// The last actor looked up: an editing session asks for its own actor
	// over and over, and a 16-byte compare is cheaper than a map lookup.
	lastID  causal.ActorID
	lastIdx uint32
	lastOK  bool
}

func (t *actorTable) lookup(a causal.ActorID) (uint32, bool) {
	if t.lastOK && a == t.lastID {
		return t.lastIdx, true
	}
	i, ok := t.index[a]
	if ok {
		t.lastID, t.lastIdx, t.lastOK = a, i, true
	}
	return i, ok
}

// intern returns a's index, adding a to the table if it is new.
func (t *actorTable) intern(a causal.ActorID) uint32 {
	if i, ok := t.lookup(a); ok {
		return i
	}
	if t.index == nil {
		t.index = make(map[causal.ActorID]uint32)
	}
	i := uint32(len(t.ids))
	t.ids = append(t.ids, a)
	t.idx = append(t.idx, &actorIndex{})
	t.index[a] = i
	t.lastID, t.lastIdx, t.lastOK = a, i, true
	return i
}

// id converts a compact ID back to an OpID.
func (t *actorTable) id(c cid) ID {
	if c.ctr == 0 {
		return ID{}
	}
	return ID{Counter: c.ctr, Actor: t.ids[c.act]}
}

// setID writes the OpID of c to *dst, field by field: building the ID and
// copying it whole was slower (an ID holds a 16-byte array).
func (t *actorTable) setID(dst *ID, c cid) {
	if c.ctr == 0 {
		*dst = ID{}
		return
	}
	dst.Counter = c.ctr
	dst.Actor = t.ids[c.act]
}

// compact converts an OpID of a known actor; ok is false for an actor never
// seen, which therefore has no elements. The zero ID maps to counter 0.
func (t *actorTable) compact(id ID) (cid, bool) {
	if id.IsZero() {
		return cid{}, true
	}
	a, ok := t.lookup(id.Actor)
	return cid{id.Counter, a}, ok
}
