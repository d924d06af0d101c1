package plan

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/internal/wire"
)

func TestParsePhases(t *testing.T) {
	tests := []struct {
		in      string
		want    []wire.PhasePlan
		wantErr string
	}{
		{
			in: "INIT:3,SETUP,BUILD:10,TEST:unit|e2e,CLEANUP",
			want: []wire.PhasePlan{
				{Name: "INIT", Steps: 3}, {Name: "SETUP"}, {Name: "BUILD", Steps: 10},
				{Name: "TEST", Milestones: []string{"unit", "e2e"}}, {Name: "CLEANUP"},
			},
		},
		{in: " BUILD : 0 , lint ", want: []wire.PhasePlan{{Name: "BUILD"}, {Name: "lint"}}},
		{in: "TEST:smoke", want: []wire.PhasePlan{{Name: "TEST", Milestones: []string{"smoke"}}}},
		{in: "", wantErr: "empty phase list"},
		{in: "BUILD,,TEST", wantErr: "phase 2: missing name"},
		{in: ":3", wantErr: "phase 1: missing name"},
		{in: "BUILD,BUILD:2", wantErr: "BUILD listed twice"},
		{in: "BUILD:", wantErr: "nothing after ':'"},
		{in: "TEST:unit||e2e", wantErr: "empty milestone name"},
		{in: "TEST:unit|unit", wantErr: "milestone unit listed twice"},
		{in: "BUILD:-3", wantErr: "must not be negative"},
		{in: "BUILD:99999999999999999999999", wantErr: "step count"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePhases(tt.in)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDefault(t *testing.T) {
	assert.Equal(t, []wire.PhasePlan{{Name: "INIT"}, {Name: "SETUP"}, {Name: "BUILD"}, {Name: "TEST"}, {Name: "CLEANUP"}}, Default())
}

func TestWeights(t *testing.T) {
	w, err := ParseWeights([]string{"BUILD=0.5", "TEST=0.3, INIT=0"})
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"BUILD": 0.5, "TEST": 0.3, "INIT": 0}, w)

	phases := Default()
	require.NoError(t, ApplyWeights(phases, w))
	assert.Nil(t, phases[1].Weight)
	require.NotNil(t, phases[2].Weight)
	assert.InDelta(t, 0.5, *phases[2].Weight, 0)
	require.NotNil(t, phases[0].Weight)
	assert.InDelta(t, 0, *phases[0].Weight, 0)

	err = ApplyWeights([]wire.PhasePlan{{Name: "BUILD"}}, map[string]float64{"BUILD": 1, "ZED": 1, "DEPLOY": 1})
	require.Error(t, err)
	assert.Equal(t, "weight for DEPLOY: no such phase in the plan\nweight for ZED: no such phase in the plan", err.Error())

	for _, bad := range []string{"BUILD", "=1", "BUILD=", "BUILD=x", "BUILD=-1", "BUILD=NaN", "BUILD=Inf"} {
		_, err := ParseWeights([]string{bad})
		assert.Error(t, err, bad)
	}
	_, err = ParseWeights([]string{"BUILD=1", "BUILD=2"})
	assert.ErrorContains(t, err, "given twice")
}
