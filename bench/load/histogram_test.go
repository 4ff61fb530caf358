package load

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 12345, 1 << 20, 1<<40 + 12345, 1<<62 + 1} {
		b := bucketOf(v)
		mid := valueOf(b)
		if bucketOf(mid) != b {
			t.Errorf("value %d: bucket %d, whose middle %d falls in bucket %d", v, b, mid, bucketOf(mid))
		}
		if v >= 128 {
			if err := float64(max(mid, v)-min(mid, v)) / float64(v); err > 0.01 {
				t.Errorf("value %d reported as %d: %.2f%% off", v, mid, 100*err)
			}
		} else if mid != v {
			t.Errorf("small value %d reported as %d", v, mid)
		}
	}
	if b := bucketOf(^uint64(0)); b >= 64*64 {
		t.Errorf("the largest value falls in bucket %d, past the array", b)
	}
}

func TestQuantilesAgainstSorting(t *testing.T) {
	var h histogram
	rng := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	for range 100_000 {
		d := time.Duration(rng.ExpFloat64() * float64(2*time.Millisecond))
		all = append(all, d)
		h.record(d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := all[int(q*float64(len(all)))-1]
		got := h.quantile(q)
		if diff := float64(got-want) / float64(want); diff > 0.01 || diff < -0.01 {
			t.Errorf("q%v: got %v, exact %v", q, got, want)
		}
	}
	if h.maxDuration() != all[len(all)-1] {
		t.Errorf("max %v, want %v", h.maxDuration(), all[len(all)-1])
	}
	if h.count() != uint64(len(all)) {
		t.Errorf("count %d", h.count())
	}
}
