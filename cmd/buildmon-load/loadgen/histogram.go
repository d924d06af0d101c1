package loadgen

import (
	"math"
	"time"
)

// Histogram bounds: buckets grow by histGrowth from histFloor, so a quantile read from the
// histogram is at most 1% above the true value, and memory stays fixed however many requests
// a run makes.
const (
	histFloor   = time.Microsecond
	histGrowth  = 1.01
	histBuckets = 1900 // 1µs·1.01^1900 ≈ 160 s
)

var logGrowth = math.Log(histGrowth)

// Histogram counts latencies. The zero value is ready to use; it is not safe for concurrent
// use (each worker keeps its own and Merge combines them).
type Histogram struct {
	counts   [histBuckets]uint64
	total    uint64
	min, max time.Duration
	sum      time.Duration
}

func bucketOf(d time.Duration) int {
	if d <= histFloor {
		return 0
	}
	i := int(math.Ceil(math.Log(float64(d)/float64(histFloor)) / logGrowth))
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// upperBound is the largest duration that falls into bucket i.
func upperBound(i int) time.Duration {
	return time.Duration(float64(histFloor) * math.Pow(histGrowth, float64(i)))
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(d)]++
	if h.total == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.total++
	h.sum += d
}

// Merge adds every latency of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.total += o.total
	h.sum += o.sum
}

// Count is the number of recorded latencies.
func (h *Histogram) Count() uint64 { return h.total }

// Mean is the average latency, 0 when nothing was recorded.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return h.sum / time.Duration(h.total)
}

// Max is the largest recorded latency.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the latency below or at which a fraction q (0..1) of the recorded latencies
// lie, overestimated by at most 1%; 0 when nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			if i == histBuckets-1 {
				return h.max // the overflow bucket has no upper bound of its own
			}
			ub := upperBound(i)
			if ub > h.max {
				ub = h.max
			}
			if ub < h.min {
				ub = h.min
			}
			return ub
		}
	}
	return h.max
}
