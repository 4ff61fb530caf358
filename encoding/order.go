package encoding

import (
	"container/heap"
	"fmt"
	"slices"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// Canonical order of a history: repeatedly take, among the changes whose
// dependencies (including the actor's previous change) have all been taken,
// the one with the smallest (StartOp, Actor, Seq). It depends only on the set
// of changes, never on the order they arrived in, which is what makes two
// replicas holding the same changes save the same bytes.
//
// Because a change's StartOp exceeds every counter of its dependencies,
// sorting by that key is almost always already a topological order, and
// then the two orders are the same (the smallest remaining change is always
// ready). Only empty changes can tie with a dependency; for those the
// ready-set walk runs.

func changeKeyCompare(a, b *crdt.Change) int {
	switch {
	case a.StartOp < b.StartOp:
		return -1
	case a.StartOp > b.StartOp:
		return 1
	}
	if c := a.Actor.Compare(b.Actor); c != 0 {
		return c
	}
	switch {
	case a.Seq < b.Seq:
		return -1
	case a.Seq > b.Seq:
		return 1
	}
	return 0
}

// canonicalOrder returns the changes in canonical order. The history must be
// complete: every actor's changes numbered 1…n, every dependency present,
// nothing twice; otherwise it returns an ErrInvalid error.
func canonicalOrder(changes []*crdt.Change) ([]*crdt.Change, error) {
	out := slices.Clone(changes)
	if !slices.IsSortedFunc(out, changeKeyCompare) {
		slices.SortStableFunc(out, changeKeyCompare)
	}
	if topological(out) {
		return out, nil
	}
	return readyWalk(out)
}

// taken tracks, per actor, the highest seq taken so far. The pointer to the
// last actor's entry is cached: histories come in long runs by one actor.
type taken struct {
	seq   map[causal.ActorID]*uint64
	lastA causal.ActorID
	lastP *uint64
}

func newTaken() *taken { return &taken{seq: map[causal.ActorID]*uint64{}} }

func (t *taken) entry(a causal.ActorID) *uint64 {
	if t.lastP != nil && a == t.lastA {
		return t.lastP
	}
	p := t.seq[a]
	if p == nil {
		p = new(uint64)
		t.seq[a] = p
	}
	t.lastA, t.lastP = a, p
	return p
}

func (t *taken) get(a causal.ActorID) uint64    { return *t.entry(a) }
func (t *taken) set(a causal.ActorID, s uint64) { *t.entry(a) = s }

func (t *taken) ready(c *crdt.Change) bool {
	if t.get(c.Actor) != c.Seq-1 {
		return false
	}
	for _, d := range c.Deps {
		if t.get(d.Actor) < d.Seq {
			return false
		}
	}
	return true
}

func topological(cs []*crdt.Change) bool {
	t := newTaken()
	for _, c := range cs {
		if !t.ready(c) {
			return false
		}
		t.set(c.Actor, c.Seq)
	}
	return true
}

type changeHeap []*crdt.Change

func (h changeHeap) Len() int           { return len(h) }
func (h changeHeap) Less(i, j int) bool { return changeKeyCompare(h[i], h[j]) < 0 }
func (h changeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *changeHeap) Push(x any)        { *h = append(*h, x.(*crdt.Change)) }
func (h *changeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// readyWalk is the definition of the canonical order, run literally.
func readyWalk(sorted []*crdt.Change) ([]*crdt.Change, error) {
	t := newTaken()
	waiting := map[causal.ChangeID][]*crdt.Change{} // by one dependency not yet taken
	h := &changeHeap{}
	var dup *crdt.Change
	park := func(c *crdt.Change) {
		if t.get(c.Actor) >= c.Seq {
			dup = c
			return
		}
		if c.Seq > 1 && t.get(c.Actor) < c.Seq-1 {
			id := causal.ChangeID{Actor: c.Actor, Seq: c.Seq - 1}
			waiting[id] = append(waiting[id], c)
			return
		}
		for _, d := range c.Deps {
			if t.get(d.Actor) < d.Seq {
				waiting[d] = append(waiting[d], c)
				return
			}
		}
		heap.Push(h, c)
	}
	for _, c := range sorted {
		park(c)
	}
	out := make([]*crdt.Change, 0, len(sorted))
	for h.Len() > 0 {
		c := heap.Pop(h).(*crdt.Change)
		if t.get(c.Actor) != c.Seq-1 {
			dup = c
			break
		}
		t.set(c.Actor, c.Seq)
		out = append(out, c)
		// Everything waiting on a change of this actor up to c.Seq may be ready.
		id := c.ID()
		woken := waiting[id]
		delete(waiting, id)
		for _, w := range woken {
			park(w)
		}
	}
	if dup != nil {
		return nil, fmt.Errorf("%w: change %v appears twice", ErrInvalid, dup.ID())
	}
	if len(out) != len(sorted) {
		for _, ws := range waiting {
			for _, w := range ws {
				return nil, fmt.Errorf("%w: change %v lacks a dependency (history incomplete or duplicated)", ErrInvalid, w.ID())
			}
		}
	}
	return out, nil
}
