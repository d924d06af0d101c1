package state

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The ETA at the first report of 50 % and of 90 % is kept (once each, with its source and the
// build's duration then), the status shows the ETA's source, and Load refuses what Apply
// cannot hold.
func TestETAPredictions(t *testing.T) {
	s, _ := newStore(Limits{})
	report := func(sec int, progress, eta float64, source string) {
		o := BuildObservation{ID: "b", State: At(BuildRunning, ts(sec)), Duration: At(float64(sec), ts(sec)),
			Progress: At(progress, ts(sec)), ETA: At(eta, ts(sec)), ETASource: At(source, ts(sec))}
		s.Apply(Batch{Builds: []BuildObservation{o}})
	}
	report(10, 0.2, 90, "rate")
	report(50, 0.55, 60, "history")
	report(60, 0.6, 40, "blend") // 50 % is kept from the first report past it
	st, ok := s.BuildStatus("b")
	require.True(t, ok)
	assert.Equal(t, "blend", st.ETASource)
	report(95, 0.95, 6, "history")
	report(96, 0.97, 4, "history")
	// A report whose progress and ETA are of different batches is not a prediction.
	s.Apply(Batch{Builds: []BuildObservation{{ID: "late", Progress: At(0.9, ts(5)), ETA: At(1.0, ts(4))}}})

	b, _ := s.BuildCopy("b")
	assert.Equal(t, []ETAPrediction{
		{Mark: 0.5, Progress: 0.55, Elapsed: 50, ETA: 60, Source: "history", T: ts(50)},
		{Mark: 0.9, Progress: 0.95, Elapsed: 95, ETA: 6, Source: "history", T: ts(95)},
	}, b.ETAPredictions)
	late, _ := s.BuildCopy("late")
	assert.Empty(t, late.ETAPredictions)

	// The finished build keeps them, through a checkpoint.
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", State: At(BuildFinished, ts(100)), Result: At("success", ts(100)),
		Duration: At(100.0, ts(100)), Progress: At(1.0, ts(100)), ETA: At(0.0, ts(100)), ETASource: At("history", ts(100))}}})
	data, _, err := s.Snapshot()
	require.NoError(t, err)
	again, _ := newStore(Limits{})
	require.NoError(t, again.Load(data))
	b2, _ := again.BuildCopy("b")
	assert.Equal(t, b.ETAPredictions, b2.ETAPredictions)
	assert.Equal(t, "history", b2.ETASource.V)

	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"too many predictions", func(m map[string]any) {
			build0(m)["eta_predictions"] = []any{map[string]any{}, map[string]any{}, map[string]any{}}
		}, "3 ETA predictions"},
		{"long source", func(m map[string]any) {
			build0(m)["eta_predictions"] = []any{map[string]any{"source": strings.Repeat("s", MaxNameBytes+1)}}
		}, "eta_predictions[0].source"},
		{"long eta source", func(m map[string]any) {
			build0(m)["eta_source"] = map[string]any{"v": strings.Repeat("s", MaxNameBytes+1), "t": 1}
		}, "eta_source longer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(Limits{})
			err := s.Load(payloadWith(t, tc.edit))
			require.ErrorIs(t, err, errInvalid)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}
