package encoding

import (
	"slices"

	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// actorSet gathers every actor a chunk refers to. Its table is sorted by
// actor bytes, so the table, and every index into it, depends only on the
// content written.
type actorSet struct {
	seen  map[causal.ActorID]struct{}
	lastA causal.ActorID
	any   bool
}

func newActorSet() *actorSet { return &actorSet{seen: map[causal.ActorID]struct{}{}} }

func (s *actorSet) add(a causal.ActorID) {
	if s.any && a == s.lastA {
		return
	}
	s.seen[a] = struct{}{}
	s.lastA, s.any = a, true
}

func (s *actorSet) addID(id causal.OpID) {
	if !id.IsZero() {
		s.add(id.Actor)
	}
}

func (s *actorSet) addChanges(cs []*crdt.Change) {
	for _, c := range cs {
		s.add(c.Actor)
		for _, d := range c.Deps {
			s.add(d.Actor)
		}
		for i := range c.Ops {
			op := &c.Ops[i]
			s.addID(op.Obj)
			s.addID(op.Elem)
			s.addID(op.Left)
			s.addID(op.Right)
			for _, p := range op.Pred {
				s.addID(p)
			}
		}
	}
}

func (s *actorSet) table() *actorTable {
	ids := make([]causal.ActorID, 0, len(s.seen))
	for a := range s.seen {
		ids = append(ids, a)
	}
	slices.SortFunc(ids, causal.ActorID.Compare)
	return newActorTable(ids)
}
