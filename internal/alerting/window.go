package alerting

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Aggregation is how a window's values reduce to the one value compared with thresholds.
type Aggregation uint8

// Aggregations.
const (
	Last Aggregation = iota
	Avg
	Max
	Min
	P95
)

var aggregationNames = [...]string{"last", "avg", "max", "min", "p95"}

// String returns the aggregation's configuration name.
func (a Aggregation) String() string {
	if int(a) < len(aggregationNames) {
		return aggregationNames[a]
	}
	return "unknown"
}

// ParseAggregation parses last, avg, max, min or p95.
func ParseAggregation(s string) (Aggregation, error) {
	for i, n := range aggregationNames {
		if n == s {
			return Aggregation(i), nil
		}
	}
	return Last, fmt.Errorf("unknown aggregation %q (want last, avg, max, min or p95)", s)
}

// MaxWindowSlots bounds the ring buffer of one window (window / interval).
const MaxWindowSlots = 10000

// WindowSlots returns how many slots a window of that span holds when values arrive every
// interval: ⌈window / interval⌉ + 1 (the extra slot covers a window boundary that falls
// inside a slot), at least 1; 1 for Last, which only needs the newest value. An interval
// longer than the window counts as the window.
func WindowSlots(window, interval time.Duration, agg Aggregation) int {
	if agg == Last || window <= 0 {
		return 1
	}
	if interval <= 0 || interval > window {
		interval = window
	}
	n := (window + interval - 1) / interval
	return int(min(n, MaxWindowSlots-1)) + 1
}

// slot holds what one interval of a window contributes. What v means depends on the
// aggregation: the newest value (last), the sum (avg, p95; n counts the values), the
// largest (max) or the smallest (min) value.
type slot struct {
	start, end int64 // unix nanoseconds of the slot's first and newest value
	v          float64
	n          uint32
}

// Window is a rolling window of values over a time span, kept in a ring buffer of slots
// that each cover one expected interval; values arriving faster than that are merged into
// the current slot, so memory stays bounded by WindowSlots whatever the data rate. Value
// timestamps (not the clock) move the window: it covers the span before its newest value.
//
// The slice grows only as values arrive, so a series that sees few values stays small.
// The zero Window is not usable; use NewWindow.
type Window struct {
	span, interval int64
	agg            Aggregation
	capacity       int32
	head           int32 // index of the newest slot
	slots          []slot
}

// NewWindow returns an empty window of the given span, expected interval between values and
// aggregation.
func NewWindow(span, interval time.Duration, agg Aggregation) Window {
	if interval <= 0 || interval > span {
		interval = span
	}
	return Window{
		span:     int64(span),
		interval: int64(interval),
		agg:      agg,
		capacity: int32(WindowSlots(span, interval, agg)),
	}
}

// Len returns the number of slots in use.
func (w *Window) Len() int { return len(w.slots) }

// Add adds a value observed at t. A value older than the newest one counts as observed with
// the newest one (windows never move backwards). NaN values are ignored.
func (w *Window) Add(t time.Time, v float64) {
	if math.IsNaN(v) {
		return
	}
	ts := t.UnixNano()
	if len(w.slots) > 0 {
		cur := &w.slots[w.head]
		if ts < cur.end {
			ts = cur.end
		}
		if w.agg == Last || ts-cur.start < w.interval {
			cur.end = ts
			w.merge(cur, v)
			return
		}
	}
	s := slot{start: ts, end: ts, v: v, n: 1}
	switch {
	case len(w.slots) < int(w.capacity):
		w.slots = append(w.slots, s)
		w.head = int32(len(w.slots) - 1)
	default:
		w.head = (w.head + 1) % w.capacity
		w.slots[w.head] = s
	}
}

func (w *Window) merge(s *slot, v float64) {
	switch w.agg {
	case Last:
		s.v = v
	case Max:
		s.v = max(s.v, v)
	case Min:
		s.v = min(s.v, v)
	default:
		s.v += v
	}
	s.n++
}

// Newest returns the time of the newest value; ok is false for an empty window.
func (w *Window) Newest() (t time.Time, ok bool) {
	if len(w.slots) == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, w.slots[w.head].end), true
}

// Aggregate reduces the values of the last span before the newest value. p95 is the
// nearest-rank 95th percentile of the per-slot means (one value per interval). scratch is
// reused for p95 and may be nil. ok is false for an empty window.
func (w *Window) Aggregate(scratch *[]float64) (v float64, ok bool) {
	n := len(w.slots)
	if n == 0 {
		return 0, false
	}
	newest := w.slots[w.head].end
	cutoff := newest - w.span
	if w.agg == Last {
		return w.slots[w.head].v, true
	}
	var sum float64
	var count uint64
	var vals []float64
	if w.agg == P95 {
		if scratch == nil {
			scratch = new([]float64)
		}
		vals = (*scratch)[:0]
	}
	first := true
	for i, idx := 0, int(w.head); i < n; i++ {
		s := &w.slots[idx]
		if i > 0 && s.end < cutoff {
			break // ring order: every older slot is out of the window too
		}
		switch w.agg {
		case Max:
			if first || s.v > v {
				v = s.v
			}
		case Min:
			if first || s.v < v {
				v = s.v
			}
		case Avg:
			sum += s.v
			count += uint64(s.n)
		case P95:
			vals = append(vals, s.v/float64(s.n))
		}
		first = false
		idx--
		if idx < 0 {
			idx = n - 1
		}
	}
	switch w.agg {
	case Avg:
		v = sum / float64(count)
	case P95:
		slices.Sort(vals)
		rank := int(math.Ceil(0.95*float64(len(vals)))) - 1
		v = vals[max(rank, 0)]
		*scratch = vals
	}
	return v, true
}
