package progress

import (
	"math"
	"slices"
	"time"
)

// ETA estimates the time until a build finishes from its progress p (0..1), the time it has
// run so far (elapsed) and, when the pipeline has history, the median duration of its earlier
// successful runs (median; hasHistory false when there is none).
//
// It divides the remaining work by a blended rate:
//
//	own rate     = p / elapsed           (the build's average rate so far)
//	history rate = 1 / median            (a typical run of the pipeline)
//	rate         = p × own rate + (1 − p) × history rate
//	ETA          = (1 − p) / rate
//
// so a build that has just started is estimated from history and one that is nearly done
// from its own pace. Without history ETA = elapsed × (1 − p) / p; without an own rate (no
// progress or no elapsed time yet) ETA = (1 − p) × median. The ETA is unknown (ok false)
// while neither rate exists. A build at p ≥ 1 has ETA 0.
func ETA(p float64, elapsed, median time.Duration, hasHistory bool) (eta time.Duration, ok bool) {
	if p >= 1 {
		return 0, true
	}
	if p < 0 || math.IsNaN(p) {
		p = 0
	}
	var rate float64 // progress per second
	haveOwn := p > 0 && elapsed > 0
	haveHist := hasHistory && median > 0
	switch {
	case haveOwn && haveHist:
		rate = p*(p/elapsed.Seconds()) + (1-p)/median.Seconds()
	case haveOwn:
		rate = p / elapsed.Seconds()
	case haveHist:
		rate = 1 / median.Seconds()
	default:
		return 0, false
	}
	if rate <= 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return 0, false
	}
	secs := (1 - p) / rate
	if secs > math.MaxInt64/float64(time.Second) {
		return 0, false
	}
	return time.Duration(secs * float64(time.Second)), true
}

// History holds the durations of the last runs of one pipeline in a ring buffer.
// It is not safe for concurrent use.
type History struct {
	runs []time.Duration
	next int // index of the oldest run once the ring is full
}

// NewHistory returns a History that keeps the last size runs (size ≥ 1).
func NewHistory(size int) *History {
	return &History{runs: make([]time.Duration, 0, max(size, 1))}
}

// Add records the duration of a finished run, replacing the oldest once the ring is full.
func (h *History) Add(d time.Duration) {
	if len(h.runs) < cap(h.runs) {
		h.runs = append(h.runs, d)
		return
	}
	h.runs[h.next] = d
	h.next = (h.next + 1) % len(h.runs)
}

// Len returns how many runs are recorded.
func (h *History) Len() int { return len(h.runs) }

// Median returns the median recorded duration (the mean of the two middle ones for an even
// count); ok is false while nothing is recorded.
func (h *History) Median() (median time.Duration, ok bool) {
	n := len(h.runs)
	if n == 0 {
		return 0, false
	}
	var buf [32]time.Duration
	s := append(buf[:0], h.runs...)
	slices.Sort(s)
	if n%2 == 1 {
		return s[n/2], true
	}
	return (s[n/2-1] + s[n/2]) / 2, true
}
