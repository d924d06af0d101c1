package alerting

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2025, 5, 31, 12, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func TestWindowAggregations(t *testing.T) {
	// One value a second for 10 s: 1..10. Window 5 s, interval 1 s.
	tests := []struct {
		agg  Aggregation
		want float64
	}{
		{Last, 10},
		{Avg, (5 + 6 + 7 + 8 + 9 + 10) / 6.0}, // values at 5..10 s: newest − 5 s is inside
		{Max, 10},
		{Min, 5},
		{P95, 10},
	}
	for _, tt := range tests {
		t.Run(tt.agg.String(), func(t *testing.T) {
			w := NewWindow(5*time.Second, time.Second, tt.agg)
			for i := 1; i <= 10; i++ {
				w.Add(at(float64(i)), float64(i))
			}
			v, ok := w.Aggregate(nil)
			require.True(t, ok)
			assert.InDelta(t, tt.want, v, 1e-12)
		})
	}
}

func TestWindowP95(t *testing.T) {
	w := NewWindow(100*time.Second, time.Second, P95)
	for i := 1; i <= 100; i++ {
		w.Add(at(float64(i)), float64(i))
	}
	var scratch []float64
	v, ok := w.Aggregate(&scratch)
	require.True(t, ok)
	assert.InDelta(t, 95.0, v, 1e-12) // 101 slots fit; values 1..100, rank ⌈0.95×100⌉ = 95
}

func TestWindowEmpty(t *testing.T) {
	w := NewWindow(time.Minute, time.Second, Avg)
	_, ok := w.Aggregate(nil)
	assert.False(t, ok)
	_, ok = w.Newest()
	assert.False(t, ok)
	w.Add(t0, math.NaN())
	_, ok = w.Aggregate(nil)
	assert.False(t, ok)
}

func TestWindowIsBoundedAndMergesFastValues(t *testing.T) {
	// 5 s window at an expected 1 s interval: 6 slots. Ten values a second for a minute
	// merge into one slot per second and the ring keeps only the newest slots.
	w := NewWindow(5*time.Second, time.Second, Max)
	for i := 0; i < 600; i++ {
		w.Add(at(float64(i)/10), float64(i%10))
	}
	assert.Equal(t, WindowSlots(5*time.Second, time.Second, Max), w.Len())
	assert.Equal(t, 6, w.Len())
	v, ok := w.Aggregate(nil)
	require.True(t, ok)
	assert.InDelta(t, 9.0, v, 1e-12)

	avg := NewWindow(5*time.Second, time.Second, Avg)
	for i := 0; i < 600; i++ {
		avg.Add(at(float64(i)/10), 2)
	}
	v, _ = avg.Aggregate(nil)
	assert.InDelta(t, 2.0, v, 1e-12)

	last := NewWindow(15*time.Minute, 10*time.Second, Last)
	for i := 0; i < 100; i++ {
		last.Add(at(float64(i)), float64(i))
	}
	assert.Equal(t, 1, last.Len())
	v, _ = last.Aggregate(nil)
	assert.InDelta(t, 99.0, v, 1e-12)
}

func TestWindowDropsOldValues(t *testing.T) {
	w := NewWindow(3*time.Second, time.Second, Max)
	w.Add(at(0), 100)
	w.Add(at(1), 1)
	v, _ := w.Aggregate(nil)
	assert.InDelta(t, 100.0, v, 1e-12)
	w.Add(at(3.5), 2) // 100 at 0 s is older than 3.5 − 3 s
	v, _ = w.Aggregate(nil)
	assert.InDelta(t, 2.0, v, 1e-12)
	newest, ok := w.Newest()
	require.True(t, ok)
	assert.True(t, at(3.5).Equal(newest), "newest %v", newest)
}

func TestWindowOutOfOrderValueJoinsTheNewest(t *testing.T) {
	w := NewWindow(10*time.Second, time.Second, Min)
	w.Add(at(5), 3)
	w.Add(at(1), 7) // late: counted at 5 s, does not move the window back
	newest, _ := w.Newest()
	assert.True(t, at(5).Equal(newest), "newest %v", newest)
	v, _ := w.Aggregate(nil)
	assert.InDelta(t, 3.0, v, 1e-12)
	assert.Equal(t, 1, w.Len())
}

func TestWindowSlots(t *testing.T) {
	assert.Equal(t, 301, WindowSlots(5*time.Minute, time.Second, Avg))
	assert.Equal(t, 13, WindowSlots(time.Minute, 5*time.Second, Max))
	assert.Equal(t, 91, WindowSlots(15*time.Minute, 10*time.Second, P95))
	assert.Equal(t, 2, WindowSlots(3*time.Second, 5*time.Second, Max))
	assert.Equal(t, 1, WindowSlots(5*time.Minute, time.Second, Last))
	assert.Equal(t, MaxWindowSlots, WindowSlots(time.Hour, time.Millisecond, Avg))
}

func TestParseAggregation(t *testing.T) {
	for _, a := range []Aggregation{Last, Avg, Max, Min, P95} {
		got, err := ParseAggregation(a.String())
		require.NoError(t, err)
		assert.Equal(t, a, got)
	}
	_, err := ParseAggregation("median")
	assert.EqualError(t, err, `unknown aggregation "median" (want last, avg, max, min or p95)`)
}
