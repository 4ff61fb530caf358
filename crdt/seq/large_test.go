package seq

import (
	"strings"
	"testing"

	"github.com/converge-sync/converge/causal"
)

// replayRepeated appends automerge-paper to s times times in a row, each
// copy edited at the end of the one before: a document of ~10M characters
// for times = 100.
func replayRepeated(s Sequence, t *trace, times int) error {
	e := &localEditor{s: s, actor: causal.ActorID{1}}
	for k := 0; k < times; k++ {
		base := s.Len()
		for _, x := range t.txns {
			for _, p := range x.patches {
				p.pos += base
				if err := e.apply(p); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func TestLargeDocument(t *testing.T) {
	if testing.Short() {
		t.Skip("26M edits")
	}
	tr := loadTrace(t, "automerge-paper")
	f := NewFast()
	if err := replayRepeated(f, tr, 100); err != nil {
		t.Fatal(err)
	}
	if f.Text() != strings.Repeat(tr.end, 100) {
		t.Fatalf("text differs (%d chars)", f.Len())
	}
	if got, _ := f.Slice(50*len(tr.end)-3, 6); got != tr.end[len(tr.end)-3:]+tr.end[:3] {
		t.Fatalf("slice across copies %q", got)
	}
}

func BenchmarkLarge(b *testing.B) {
	tr := loadTrace(b, "automerge-paper")
	measure(b, 100*tr.ops, func() any {
		f := NewFast()
		if err := replayRepeated(f, tr, 100); err != nil {
			b.Fatal(err)
		}
		return f
	})
}
