package load

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts durations in log-linear buckets (64 per power of two,
// so a reported quantile is within 1% of the true value), with atomic
// counters: the receiving goroutines of every client record into one
// histogram without a lock.
type histogram struct {
	counts [64 * 64]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
	sum    atomic.Int64
}

const subBits = 6

func bucketOf(v uint64) int {
	if v < 2<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	top := v >> shift // in [64, 128)
	return 2<<subBits + (shift-1)<<subBits + int(top-1<<subBits)
}

// valueOf is the middle of bucket i.
func valueOf(i int) uint64 {
	if i < 2<<subBits {
		return uint64(i)
	}
	i -= 2 << subBits
	shift := i>>subBits + 1
	top := uint64(i&(1<<subBits-1)) + 1<<subBits
	return top<<shift + (1<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))].Add(1)
	h.n.Add(1)
	h.sum.Add(int64(d))
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// quantile returns the q-quantile (0 < q <= 1) of what was recorded, 0 if
// nothing was.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(time.Duration(valueOf(i)), h.maxDuration())
		}
	}
	return h.maxDuration()
}

func (h *histogram) maxDuration() time.Duration { return time.Duration(h.max.Load()) }

func (h *histogram) count() uint64 { return h.n.Load() }

func (h *histogram) mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / int64(n))
}
