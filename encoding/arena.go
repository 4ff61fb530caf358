package encoding

import (
	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/crdt"
)

// arena hands out the slices a history decode fills: changes, ops,
// dependencies and predecessors are cut from a few large arrays instead of
// one allocation each. Decoding a long history of keystrokes would
// otherwise make a quarter of a million small allocations; this way a
// decode makes a handful, and the GC has a handful of objects to trace.
// A decoded change keeps its whole array alive; that is the price, and the
// changes of one decode are normally used and dropped together.
type arena struct {
	changes []crdt.Change
	ops     []crdt.Op
	deps    []causal.ChangeID
	preds   []causal.OpID
}

// minArena is the smallest array take allocates for counts it cannot know
// in advance (dependencies and predecessors arrive change by change).
const minArena = 64

// take cuts n elements from *buf, allocating a new array of at least least
// elements when it is short.
func take[T any](buf *[]T, n, least int) []T {
	if n == 0 {
		return nil
	}
	if len(*buf) < n {
		*buf = make([]T, max(n, least))
	}
	s := (*buf)[:n:n]
	*buf = (*buf)[n:]
	return s
}
