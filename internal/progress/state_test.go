package progress

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/internal/schema"
)

// TestStateNamesAreTheSchema: a State's name is the build.phase.state value of the schema
// (internal/schema, tied to metadata.yaml by its tests), so the processor reads what the
// receiver writes.
func TestStateNamesAreTheSchema(t *testing.T) {
	for _, tc := range []struct {
		state State
		name  string
		ended bool
	}{
		{Pending, schema.PhasePending, false},
		{Running, schema.PhaseRunning, false},
		{Completed, schema.PhaseCompleted, true},
		{Failed, schema.PhaseFailed, true},
		{Skipped, schema.PhaseSkipped, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.name, tc.state.String())
			got, ok := ParseState(tc.name)
			require.True(t, ok)
			assert.Equal(t, tc.state, got)
			assert.Equal(t, tc.ended, tc.state.Ended())
		})
	}
	assert.Equal(t, "unknown", State(200).String())
	for _, bad := range []string{"", "Running", "RUNNING", " running", "paused"} {
		_, ok := ParseState(bad)
		assert.False(t, ok, "%q", bad)
	}
}

func TestStepShare(t *testing.T) {
	for _, tc := range []struct {
		name        string
		done, total int64
		want        float64
	}{
		{"unknown total", 3, 0, 0},
		{"negative total", 3, -1, 0},
		{"nothing done", 0, 4, 0},
		{"negative done", -2, 4, 0},
		{"half", 2, 4, 0.5},
		{"all", 4, 4, 1},
		{"more than all", 9, 4, 1},
		{"huge counts", math.MaxInt64 - 1, math.MaxInt64, 1 - 1.0/math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := stepShare(tc.done, tc.total)
			assert.InDelta(t, tc.want, got, 1e-12)
			assert.GreaterOrEqual(t, got, 0.0)
			assert.LessOrEqual(t, got, 1.0)
		})
	}
}

func TestDefaultWeightsSumToOne(t *testing.T) {
	w := DefaultWeights()
	assert.ElementsMatch(t, []string{"INIT", "SETUP", "BUILD", "TEST", "CLEANUP"}, keysOf(w))
	var sum float64
	for _, v := range w {
		sum += v
	}
	assert.InDelta(t, 1, sum, 1e-12)
	w["BUILD"] = 0 // a copy: the defaults stay as they are
	assert.InDelta(t, 0.40, DefaultWeights()["BUILD"], 1e-12)
}

func keysOf(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestBuildPhase(t *testing.T) {
	var b Build
	p, added := b.Phase("BUILD")
	require.True(t, added)
	assert.Equal(t, Phase{Name: "BUILD"}, *p)
	p.State, p.StepsTotal = Running, 10
	again, added := b.Phase("BUILD")
	assert.False(t, added)
	assert.Equal(t, Running, again.State, "the same phase, not a new one")
	_, added = b.Phase("build")
	assert.True(t, added, "phase names are case-sensitive in a build")
	assert.Len(t, b.Phases, 2)
	overall, phases := b.Progress(make([]float64, 2))
	assert.Len(t, phases, 2)
	assert.InDelta(t, 0, overall, 1e-12)
}

func TestHistoryBounds(t *testing.T) {
	h := NewHistory(0)
	h.Add(time.Second)
	h.Add(2 * time.Second)
	assert.Equal(t, 1, h.Len(), "size 0 keeps one run")
	m, ok := h.Median()
	require.True(t, ok)
	assert.Equal(t, 2*time.Second, m)

	// More runs than Median's stack buffer holds.
	h = NewHistory(41)
	for i := range 41 {
		h.Add(time.Duration(41-i) * time.Second)
	}
	m, _ = h.Median()
	assert.Equal(t, 21*time.Second, m)
	assert.Equal(t, time.Duration(41)*time.Second, h.runs[0], "Median sorts a copy")
}
