package progress

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestETA(t *testing.T) {
	tests := []struct {
		name       string
		p          float64
		elapsed    time.Duration
		median     time.Duration
		hasHistory bool
		want       time.Duration
		ok         bool
	}{
		{"unknown: no progress, no history", 0, time.Minute, 0, false, 0, false},
		{"unknown: progress but no elapsed time", 0.5, 0, 0, false, 0, false},
		{"own rate only", 0.25, time.Minute, 0, false, 3 * time.Minute, true},
		{"history only at start", 0, 0, 10 * time.Minute, true, 10 * time.Minute, true},
		{"history only, no elapsed yet", 0.5, 0, 10 * time.Minute, true, 5 * time.Minute, true},
		// own rate 0.5/60s, history rate 1/600s: rate = 0.5*0.5/60 + 0.5/600 = 0.005;
		// ETA = 0.5/0.005 = 100 s.
		{"blend half way", 0.5, time.Minute, 10 * time.Minute, true, 100 * time.Second, true},
		// p = 0 with history: the history rate alone, however long the build has run.
		{"stuck at zero uses history", 0, time.Hour, 10 * time.Minute, true, 10 * time.Minute, true},
		{"done", 1, time.Minute, 0, false, 0, true},
		{"history with zero median is no history", 0, time.Minute, 0, true, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ETA(tt.p, tt.elapsed, tt.median, tt.hasHistory)
			assert.Equal(t, tt.ok, ok)
			assert.InDelta(t, tt.want.Seconds(), got.Seconds(), 1e-6)
		})
	}
}

func TestETABlendMovesFromHistoryToOwnRate(t *testing.T) {
	// A build running twice as fast as its history: early the ETA leans on history, late on
	// the build's own pace; the estimate always lies between the two.
	median := 10 * time.Minute
	for _, p := range []float64{0.1, 0.3, 0.5, 0.7, 0.9} {
		elapsed := time.Duration(p * float64(5*time.Minute))
		own := time.Duration(float64(elapsed) * (1 - p) / p)
		hist := time.Duration(float64(median) * (1 - p))
		got, ok := ETA(p, elapsed, median, true)
		assert.True(t, ok)
		assert.LessOrEqual(t, got, hist+time.Millisecond, "p=%v", p)
		assert.GreaterOrEqual(t, got, own-time.Millisecond, "p=%v", p)
	}
}

func TestHistory(t *testing.T) {
	h := NewHistory(3)
	_, ok := h.Median()
	assert.False(t, ok)
	h.Add(30 * time.Second)
	m, ok := h.Median()
	assert.True(t, ok)
	assert.Equal(t, 30*time.Second, m)
	h.Add(10 * time.Second)
	m, _ = h.Median()
	assert.Equal(t, 20*time.Second, m)
	h.Add(50 * time.Second)
	m, _ = h.Median()
	assert.Equal(t, 30*time.Second, m)
	// The ring keeps the last 3: 30 s falls out, then 10 s.
	h.Add(100 * time.Second)
	h.Add(90 * time.Second)
	assert.Equal(t, 3, h.Len())
	m, _ = h.Median()
	assert.Equal(t, 90*time.Second, m) // {50, 100, 90}
}
