package encoding

import (
	"testing"
)

// TestPaperColumns logs each history column's size, raw and compressed on
// its own, to see where the bytes go.
func TestPaperColumns(t *testing.T) {
	cs, st := paperHistory(t)
	set := newActorSet()
	set.addChanges(cs)
	tab := set.table()
	w := &historyWriter{actors: tab, lastSeq: make([]uint64, len(tab.ids))}
	for _, c := range cs {
		w.change(c)
	}
	w.raw[colTextSeg], w.raw[colText] = matchText(w.raw[colText], stateDict(st))
	total, ztotal := 0, 0
	for i := 0; i < numCols; i++ {
		col := w.column(i)
		z := len(deflate(col))
		if len(col) > 0 {
			t.Logf("%-12s %8d raw %8d deflated", colNames[i], len(col), z)
		}
		total += len(col)
		ztotal += min(z, len(col))
	}
	stb := appendState(nil, tab, st)
	t.Logf("history %d raw, %d columns deflated separately; state %d raw %d deflated", total, ztotal, len(stb), len(deflate(stb)))
}
