package progress

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func secs(xs ...float64) []time.Duration {
	out := make([]time.Duration, len(xs))
	for i, x := range xs {
		out[i] = time.Duration(x * float64(time.Second))
	}
	return out
}

func TestHistoryValuesAndTrimmedMean(t *testing.T) {
	h := NewHistory(5)
	_, ok := h.TrimmedMean()
	assert.False(t, ok)
	for _, d := range secs(10, 20, 30) {
		h.Add(d)
	}
	assert.Equal(t, secs(10, 20, 30), h.Values())
	m, _ := h.TrimmedMean()
	assert.Equal(t, 20*time.Second, m, "fewer than five: plain mean")
	for _, d := range secs(40, 1000, 50) { // the ring drops 10
		h.Add(d)
	}
	assert.Equal(t, secs(20, 30, 40, 1000, 50), h.Values(), "oldest first")
	m, _ = h.TrimmedMean()
	assert.Equal(t, 40*time.Second, m, "20 and 1000 dropped: mean of 30, 40, 50")
	med, _ := h.Estimate(EstimateMedian)
	assert.Equal(t, 40*time.Second, med)
}

func TestPipelineHistoryBounds(t *testing.T) {
	h := NewPipelineHistory(3, 2)
	at := time.Unix(100, 0)
	assert.False(t, h.AddRun(0, true, []PhaseDuration{{"A", 0}, {"", time.Second}}, at), "nothing positive")
	assert.True(t, h.LastUsed.IsZero())
	require.True(t, h.AddRun(100*time.Second, true, []PhaseDuration{{"A", 10 * time.Second}, {"B", 90 * time.Second}}, at))
	assert.True(t, h.AddRun(0, false, []PhaseDuration{{"A", 20 * time.Second}}, at.Add(time.Second)), "a failed run's completed phases count")
	total, ok := h.ExpectedTotal(EstimateMedian)
	assert.True(t, ok)
	assert.Equal(t, 100*time.Second, total, "only successful runs have a total")
	a, _ := h.Expected("A", EstimateMedian)
	assert.Equal(t, 15*time.Second, a)
	assert.Equal(t, 2, h.Runs("A"))
	assert.Equal(t, 1, h.Runs("B"))

	// A third phase: B, recorded longest ago, makes room.
	h.AddRun(0, false, []PhaseDuration{{"A", 30 * time.Second}, {"C", 5 * time.Second}}, at)
	_, ok = h.Expected("B", EstimateMedian)
	assert.False(t, ok)
	assert.Equal(t, 0, h.Runs("B"))
	for range 5 {
		h.AddRun(0, false, []PhaseDuration{{"A", time.Second}}, at)
	}
	assert.Equal(t, 3, h.Runs("A"), "size runs per phase")
}

func TestPipelineRecordRoundTrip(t *testing.T) {
	h := NewPipelineHistory(4, 3)
	at := time.Unix(1000, 0).UTC()
	h.AddRun(60*time.Second, true, []PhaseDuration{{"A", 10 * time.Second}, {"B", 50 * time.Second}}, at)
	h.AddRun(70*time.Second, true, []PhaseDuration{{"A", 12 * time.Second}, {"C", 58 * time.Second}}, at)
	rec := h.Record()
	assert.Equal(t, []string{"B", "A", "C"}, rec.Order, "least recently recorded first")
	back := RestorePipelineHistory(rec, 4, 3)
	assert.Equal(t, rec, back.Record())

	// Restored into smaller bounds: the newest runs and the most recently recorded phases.
	small := RestorePipelineHistory(rec, 1, 2)
	a, _ := small.Expected("A", EstimateMedian)
	assert.Equal(t, 12*time.Second, a)
	_, ok := small.Expected("B", EstimateMedian)
	assert.False(t, ok)

	// Hostile records: non-positive durations and empty names are dropped, unordered names kept.
	odd := RestorePipelineHistory(PipelineRecord{Total: secs(-1, 0), Phases: map[string][]time.Duration{"": secs(1), "X": secs(-5, 3)}}, 4, 3)
	_, ok = odd.ExpectedTotal(EstimateMedian)
	assert.False(t, ok)
	x, _ := odd.Expected("X", EstimateMedian)
	assert.Equal(t, 3*time.Second, x)
	assert.Equal(t, []string{"X"}, odd.Record().Order)
}

func TestLearnedWeights(t *testing.T) {
	configured := []float64{0.05, 0.15, 0.4, 0.3, 0.1}
	expected := secs(30, 220, 550, 150, 50)
	out := LearnedWeights(configured, expected, 5, 5, make([]float64, 5))
	assert.InDeltaSlice(t, []float64{0.04, 0.185, 0.475, 0.225, 0.075}, out, 1e-9)
	out = LearnedWeights(configured, expected, 5, 0, out)
	assert.InDeltaSlice(t, []float64{0.03, 0.22, 0.55, 0.15, 0.05}, out, 1e-9, "no prior: the time shares")
	// TEST without history keeps 0.3; the others share the remaining 0.7 by time.
	out = LearnedWeights(configured, secs(30, 220, 550, 0, 50), 10, 0, out)
	assert.InDelta(t, 0.3, out[3], 1e-9)
	assert.InDelta(t, 0.7*550/850, out[2], 1e-9)
	var sum float64
	for _, w := range out {
		sum += w
	}
	assert.InDelta(t, 1, sum, 1e-9)
}
