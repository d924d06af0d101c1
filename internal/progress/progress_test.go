package progress

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// configured returns the five default phases with the seed's weights as configured weights.
func configured(phases ...Phase) []Phase {
	w := DefaultWeights()
	for i := range phases {
		if v, ok := w[phases[i].Name]; ok {
			phases[i].ConfigWeight, phases[i].HasConfigWeight = v, true
		}
	}
	return phases
}

func TestPhaseProgress(t *testing.T) {
	tests := []struct {
		name  string
		phase Phase
		want  float64
	}{
		{"pending", Phase{State: Pending, StepsTotal: 10, StepsCompleted: 3}, 0},
		{"running partial", Phase{State: Running, StepsTotal: 10, StepsCompleted: 3}, 0.3},
		{"running no steps done", Phase{State: Running, StepsTotal: 4}, 0},
		{"running all steps done", Phase{State: Running, StepsTotal: 4, StepsCompleted: 4}, 1},
		{"running more steps than planned", Phase{State: Running, StepsTotal: 4, StepsCompleted: 9}, 1},
		{"running unknown step count", Phase{State: Running, StepsCompleted: 7}, 0},
		{"completed", Phase{State: Completed, StepsTotal: 10, StepsCompleted: 3}, 1},
		{"completed unknown step count", Phase{State: Completed}, 1},
		{"skipped", Phase{State: Skipped, StepsTotal: 10}, 1},
		{"failed keeps its progress", Phase{State: Failed, StepsTotal: 8, StepsCompleted: 2}, 0.25},
		{"failed unknown step count", Phase{State: Failed}, 0},
		{"negative counts", Phase{State: Running, StepsTotal: -3, StepsCompleted: -1}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, tt.want, PhaseProgress(tt.phase), 1e-12)
		})
	}
}

func TestOverall(t *testing.T) {
	tests := []struct {
		name   string
		phases []Phase
		want   float64
	}{
		{
			name:   "no plan",
			phases: nil,
			want:   0,
		},
		{
			name: "default plan, INIT and SETUP done, BUILD half way",
			phases: configured(
				Phase{Name: "INIT", State: Completed},
				Phase{Name: "SETUP", State: Completed},
				Phase{Name: "BUILD", State: Running, StepsTotal: 10, StepsCompleted: 5},
				Phase{Name: "TEST", State: Pending},
				Phase{Name: "CLEANUP", State: Pending},
			),
			want: 0.05 + 0.15 + 0.40*0.5,
		},
		{
			name: "all done",
			phases: configured(
				Phase{Name: "INIT", State: Completed},
				Phase{Name: "SETUP", State: Completed},
				Phase{Name: "BUILD", State: Completed},
				Phase{Name: "TEST", State: Completed},
				Phase{Name: "CLEANUP", State: Completed},
			),
			want: 1,
		},
		{
			name: "weights renormalised over the phases the build has",
			phases: configured(
				Phase{Name: "BUILD", State: Completed},
				Phase{Name: "TEST", State: Running, StepsTotal: 4, StepsCompleted: 1},
			),
			want: 0.40/0.70 + 0.30/0.70*0.25,
		},
		{
			name: "skipped phase counts as done",
			phases: configured(
				Phase{Name: "SETUP", State: Skipped},
				Phase{Name: "BUILD", State: Pending},
			),
			want: 0.15 / 0.55,
		},
		{
			name: "failed phase counts with its progress at failure",
			phases: configured(
				Phase{Name: "BUILD", State: Completed},
				Phase{Name: "TEST", State: Failed, StepsTotal: 10, StepsCompleted: 4},
			),
			want: 0.40/0.70 + 0.30/0.70*0.4,
		},
		{
			name: "plan weights win over configured weights",
			phases: []Phase{
				{Name: "BUILD", State: Completed, ConfigWeight: 0.4, HasConfigWeight: true, PlanWeight: 0.9, HasPlanWeight: true},
				{Name: "TEST", State: Pending, ConfigWeight: 0.3, HasConfigWeight: true, PlanWeight: 0.1, HasPlanWeight: true},
			},
			want: 0.9,
		},
		{
			name: "custom phase gets the mean weight of the named ones",
			phases: configured(
				Phase{Name: "BUILD", State: Completed},
				Phase{Name: "PACKAGE", State: Completed},
				Phase{Name: "TEST", State: Pending},
			),
			// BUILD 0.4, TEST 0.3, PACKAGE mean 0.35; total 1.05
			want: (0.40 + 0.35) / 1.05,
		},
		{
			name: "only custom phases: equal weights",
			phases: []Phase{
				{Name: "compile", State: Completed},
				{Name: "lint", State: Running, StepsTotal: 2, StepsCompleted: 1},
				{Name: "ship", State: Pending},
				{Name: "notify", State: Pending},
			},
			want: 0.25 + 0.25*0.5,
		},
		{
			name: "all weights zero: equal weights",
			phases: []Phase{
				{Name: "A", State: Completed, ConfigWeight: 0, HasConfigWeight: true},
				{Name: "B", State: Pending, ConfigWeight: 0, HasConfigWeight: true},
			},
			want: 0.5,
		},
		{
			name: "zero weight phase does not count",
			phases: []Phase{
				{Name: "A", State: Pending, ConfigWeight: 0, HasConfigWeight: true},
				{Name: "B", State: Completed, ConfigWeight: 2, HasConfigWeight: true},
			},
			want: 1,
		},
		{
			name: "unknown step counts: running 0, completed 1",
			phases: configured(
				Phase{Name: "INIT", State: Completed},
				Phase{Name: "SETUP", State: Running, StepsCompleted: 3},
				Phase{Name: "BUILD", State: Pending},
				Phase{Name: "TEST", State: Pending},
				Phase{Name: "CLEANUP", State: Pending},
			),
			want: 0.05,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, tt.want, Overall(tt.phases), 1e-12)
		})
	}
}

func TestNormalizedWeightsSumToOne(t *testing.T) {
	phases := []Phase{
		{Name: "A", ConfigWeight: 3, HasConfigWeight: true},
		{Name: "B"},
		{Name: "C", PlanWeight: 1, HasPlanWeight: true},
	}
	w := NormalizedWeights(phases, make([]float64, 3))
	assert.InDelta(t, 3.0/6, w[0], 1e-12)
	assert.InDelta(t, 2.0/6, w[1], 1e-12)
	assert.InDelta(t, 1.0/6, w[2], 1e-12)
}

func TestWeightTable(t *testing.T) {
	table := NewWeightTable(
		map[string]float64{"init": 0.1, "BUILD": 0.5},
		map[string]map[string]float64{"release": {"Build": 0.9, "PACKAGE": 0.2}},
	)
	tests := []struct {
		pipeline, phase string
		want            float64
		ok              bool
	}{
		{"ci", "INIT", 0.1, true},
		{"ci", "build", 0.5, true},
		{"release", "BUILD", 0.9, true},
		{"release", "package", 0.2, true},
		{"release", "INIT", 0.1, true},
		{"ci", "PACKAGE", 0, false},
		{"ci", "TEST", 0, false},
	}
	for _, tt := range tests {
		got, ok := table.Lookup(tt.pipeline, tt.phase)
		assert.Equal(t, tt.ok, ok, "%s/%s", tt.pipeline, tt.phase)
		assert.InDelta(t, tt.want, got, 1e-12, "%s/%s", tt.pipeline, tt.phase)
	}
}

func TestBuildProgressNeverDecreases(t *testing.T) {
	var b Build
	add := func(name string, total int64) *Phase {
		p, added := b.Phase(name)
		require.True(t, added)
		p.StepsTotal = total
		w := DefaultWeights()[name]
		p.ConfigWeight, p.HasConfigWeight = w, true
		return p
	}
	add("BUILD", 4)
	add("TEST", 2)
	build, test := &b.Phases[0], &b.Phases[1]
	out := make([]float64, 2)

	build.State, build.StepsCompleted = Running, 2
	overall, phases := b.Progress(out)
	assert.InDelta(t, 0.4/0.7*0.5, overall, 1e-12)
	assert.Equal(t, []float64{0.5, 0}, phases)

	// The step total grows: the computed share falls to 2/8, the reported one stays.
	build.StepsTotal = 8
	overall2, phases := b.Progress(out)
	assert.InDelta(t, overall, overall2, 1e-12)
	assert.Equal(t, []float64{0.5, 0}, phases)

	// A plan weight that makes the finished share smaller does not lower progress either.
	build.State = Completed
	test.State = Running
	overall3, _ := b.Progress(out)
	assert.InDelta(t, 0.4/0.7, overall3, 1e-12)
	test.PlanWeight, test.HasPlanWeight = 100, true
	overall4, _ := b.Progress(out)
	assert.InDelta(t, overall3, overall4, 1e-12)

	p, added := b.Phase("TEST")
	assert.False(t, added)
	assert.Same(t, test, p)
}

func TestBuildFinishedSuccessfullyIsComplete(t *testing.T) {
	tests := []struct {
		name      string
		succeeded bool
		want      float64
	}{
		{"success", true, 1},
		{"failure keeps progress at failure", false, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Build
			a, _ := b.Phase("A")
			a.State = Completed
			_, _ = b.Phase("B")
			b.Finished, b.Succeeded = true, tt.succeeded
			overall, _ := b.Progress(make([]float64, 2))
			assert.InDelta(t, tt.want, overall, 1e-12)
		})
	}
}

func TestParseState(t *testing.T) {
	for _, s := range []State{Pending, Running, Completed, Failed, Skipped} {
		got, ok := ParseState(s.String())
		require.True(t, ok)
		assert.Equal(t, s, got)
	}
	_, ok := ParseState("paused")
	assert.False(t, ok)
	assert.True(t, Skipped.Ended())
	assert.False(t, Running.Ended())
	assert.False(t, math.IsNaN(Overall([]Phase{{Name: "A", ConfigWeight: math.Inf(1), HasConfigWeight: true}})))
}
