package events

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A request of a group sees the builds and event ids of the requests staged before it.
func TestStageRequestsSeeEachOther(t *testing.T) {
	r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: 10, FinishedTTL: time.Minute})
	st := r.NewStage()
	res, err := st.Apply([]Event{started("b", collectorNow)}, collectorNow)
	require.NoError(t, err)
	assert.Equal(t, Result{Accepted: 1}, res)
	res, err = st.Apply([]Event{phaseEvent(TypePhaseStarted, "b", "p1", collectorNow)}, collectorNow)
	require.NoError(t, err, "the build started by the request before")
	assert.Equal(t, Result{Accepted: 1}, res)
	res, err = st.Apply([]Event{phaseEvent(TypeStepCompleted, "b", "p1", collectorNow), started("b", collectorNow)}, collectorNow)
	require.NoError(t, err)
	assert.Equal(t, Result{Duplicates: 2}, res, "an id staged before, and the same build_started again")
	assert.Equal(t, 0, r.Len(), "nothing is in the registry before Commit")

	changes := st.Changes()
	require.Len(t, changes, 1)
	assert.Equal(t, []string{"b/start", "p1"}, changes[0].Build.EventIDs)
	assert.Equal(t, PhaseRunning, changes[0].Build.Phases[0].State)
	st.Commit()
	b, ok := r.Get("b")
	require.True(t, ok)
	assert.Equal(t, PhaseRunning, b.Phases[0].State)
	assert.Nil(t, b.EventIDs, "callers get no event ids")
}

// A stage of rejected or duplicate-only requests has nothing to write.
func TestStageUnchanged(t *testing.T) {
	r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: 10, FinishedTTL: time.Minute})
	_, err := r.Apply([]Event{started("b", collectorNow)}, collectorNow)
	require.NoError(t, err)
	r.TakeDirty()
	st := r.NewStage()
	_, err = st.Apply([]Event{phaseEvent(TypeStepCompleted, "b", "x", collectorNow)}, collectorNow)
	require.Error(t, err)
	res, err := st.Apply([]Event{started("b", collectorNow)}, collectorNow)
	require.NoError(t, err)
	assert.Equal(t, Result{Duplicates: 1}, res)
	assert.False(t, st.Changed())
	assert.Empty(t, st.Changes())
	st.Commit()
	assert.Empty(t, r.TakeDirty())
}

// max_builds counts the builds staged by earlier requests of the group as well as the
// registry's.
func TestStageCountsStagedBuildsAgainstMaxBuilds(t *testing.T) {
	r := NewRegistry(Options{MaxBuilds: 3, MaxEventIDs: 10, FinishedTTL: time.Minute})
	_, err := r.Apply([]Event{started("a", collectorNow)}, collectorNow)
	require.NoError(t, err)
	st := r.NewStage()
	_, err = st.Apply([]Event{started("b", collectorNow)}, collectorNow)
	require.NoError(t, err)
	_, err = st.Apply([]Event{started("c", collectorNow)}, collectorNow)
	require.NoError(t, err)
	_, err = st.Apply([]Event{started("d", collectorNow)}, collectorNow)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, KindTooManyBuilds, e.Kind)
	st.Commit()
	assert.Equal(t, 3, r.Len())
}

// Spans of a stage reach the registry only when it is committed.
func TestStageSpansOnCommit(t *testing.T) {
	r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: 10, FinishedTTL: time.Minute})
	r.RecordSpans(true)
	st := r.NewStage()
	_, err := st.Apply([]Event{started("b", collectorNow), phaseEvent(TypePhaseStarted, "b", "1", collectorNow), phaseEvent(TypeStepCompleted, "b", "2", collectorNow)}, collectorNow)
	require.NoError(t, err)
	_, err = st.Apply([]Event{phaseEvent(TypePhaseCompleted, "b", "3", collectorNow)}, collectorNow)
	require.NoError(t, err)
	assert.Empty(t, r.TakeSpans())
	st.Commit()
	spans := r.TakeSpans()
	require.Len(t, spans, 2)
	assert.Equal(t, int64(1), spans[0].StepNumber)
	assert.Equal(t, "success", spans[1].Result)

	dropped := r.NewStage()
	_, err = dropped.Apply([]Event{finished("b", collectorNow)}, collectorNow)
	require.NoError(t, err)
	assert.Empty(t, r.TakeSpans(), "a dropped stage leaves no spans")
}

// Changes of a stage for a build the registry holds keep the registry's ids before the new
// ones, trimmed to MaxEventIDs; with MaxEventIDs 0 no ids are kept at all.
func TestStageChangesEventIDs(t *testing.T) {
	for _, tt := range []struct {
		max  int
		want []string
	}{
		{0, nil},
		{2, []string{"e2", "e3"}},
		{10, []string{"b/start", "e1", "e2", "e3"}},
	} {
		r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: tt.max, FinishedTTL: time.Minute})
		_, err := r.Apply([]Event{started("b", collectorNow), phaseEvent(TypePhaseStarted, "b", "e1", collectorNow)}, collectorNow)
		require.NoError(t, err)
		st := r.NewStage()
		_, err = st.Apply([]Event{phaseEvent(TypeStepCompleted, "b", "e2", collectorNow), phaseEvent(TypeStepCompleted, "b", "e3", collectorNow)}, collectorNow)
		require.NoError(t, err)
		changes := st.Changes()
		require.Len(t, changes, 1)
		assert.Equal(t, tt.want, changes[0].Build.EventIDs, "max %d", tt.max)
	}
}
