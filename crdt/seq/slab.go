package seq

// slab hands out one-element []Run slices carved from a shared backing
// array, so that Spans and SetVisible, which nearly always return one run,
// cost an allocation per slabSize calls rather than one per call. Each
// slice has its capacity cut to its length, so a caller's append copies
// instead of writing into a neighbour; the price is that a kept slice keeps
// its slab (a few KB) alive.
type slab struct {
	free []Run
}

const slabSize = 64

func (s *slab) one() []Run {
	if len(s.free) == 0 {
		s.free = make([]Run, slabSize)
	}
	r := s.free[:1:1]
	s.free = s.free[1:]
	return r
}
