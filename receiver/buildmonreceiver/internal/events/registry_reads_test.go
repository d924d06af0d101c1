package events

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTestRegistry(t *testing.T, evs ...Event) *Registry {
	t.Helper()
	r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: 10, FinishedTTL: time.Minute, DefaultHostname: "h"})
	if len(evs) > 0 {
		_, err := r.Apply(evs, collectorNow)
		require.NoError(t, err)
	}
	return r
}

// TakeDirty returns each changed build once; All returns every build and clears the changed
// set as well.
func TestTakeDirtyAndAll(t *testing.T) {
	r := newTestRegistry(t, started("b", collectorNow), started("a", collectorNow))
	assert.Equal(t, []string{"a", "b"}, ids(r.TakeDirty()), "sorted by id")
	assert.Empty(t, r.TakeDirty())

	_, err := r.Apply([]Event{phaseEvent(TypePhaseStarted, "b", "b1", collectorNow)}, collectorNow)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, ids(r.All()))
	assert.Empty(t, r.TakeDirty(), "All took the change")
	assert.Equal(t, []string{"a", "b"}, ids(r.All()), "All is not consumed")
}

// A request of duplicates only changes nothing: nothing to emit or store.
func TestApplyDuplicatesOnly(t *testing.T) {
	r := newTestRegistry(t, started("b", collectorNow), phaseEvent(TypePhaseStarted, "b", "b1", collectorNow))
	r.TakeDirty()
	r.TakeUnsaved()
	res, err := r.Apply([]Event{phaseEvent(TypePhaseStarted, "b", "b1", collectorNow), started("b", collectorNow)}, collectorNow)
	require.NoError(t, err)
	assert.Equal(t, Result{Duplicates: 2}, res)
	assert.Empty(t, r.TakeDirty())
	assert.Empty(t, r.TakeUnsaved())
}

// TakeUnsaved returns changed builds with their event ids and removed ones as removals;
// MarkUnsaved puts back what could not be written, as it is when taken again.
func TestTakeUnsavedAndMarkUnsaved(t *testing.T) {
	r := newTestRegistry(t, started("keep", collectorNow), started("gone", collectorNow), finished("gone", collectorNow))
	unsaved := r.TakeUnsaved()
	require.Equal(t, []string{"gone", "keep"}, ids(unsaved))
	assert.Equal(t, []string{"keep/start"}, unsaved[1].Build.EventIDs, "stored builds keep their ids")
	assert.Empty(t, r.TakeUnsaved())

	require.Equal(t, 1, r.Expire(collectorNow.Add(time.Hour)))
	failed := r.TakeUnsaved()
	require.Equal(t, []string{"gone (removed)"}, ids(failed))
	r.MarkUnsaved(append(failed, Change{Build: Build{ID: "keep"}}))
	assert.Equal(t, []string{"gone (removed)", "keep"}, ids(r.TakeUnsaved()), "as they are now: gone is removed, keep is tracked")

	// A build marked again after it changed is taken as it is then.
	r.MarkUnsaved([]Change{{Build: Build{ID: "keep"}}})
	_, err := r.Apply([]Event{phaseEvent(TypePhaseStarted, "keep", "k1", collectorNow)}, collectorNow)
	require.NoError(t, err)
	again := r.TakeUnsaved()
	require.Len(t, again, 1)
	assert.Equal(t, PhaseRunning, again[0].Build.Phases[0].State)
}

// Callers get copies: changing one changes nothing in the registry.
func TestGetReturnsACopy(t *testing.T) {
	r := newTestRegistry(t,
		Event{ID: "s", Type: TypeBuildStarted, BuildID: "b", Pipeline: "p", Phases: []PhasePlan{{Name: "M", Milestones: []string{"m1"}}}},
		Event{ID: "p", Type: TypePhaseStarted, BuildID: "b", Phase: "M"})
	b, ok := r.Get("b")
	require.True(t, ok)
	b.Phases[0].State = PhaseFailed
	b.Phases[0].Reached[0] = true
	b.Pipeline = "x"
	again, _ := r.Get("b")
	assert.Equal(t, PhaseRunning, again.Phases[0].State)
	assert.Equal(t, []bool{false}, again.Phases[0].Reached)
	assert.Equal(t, "p", again.Pipeline)
	assert.Nil(t, again.EventIDs)

	_, ok = r.Get("nope")
	assert.False(t, ok)
}

// Events without a time take the receiver's clock; a build's Updated never goes backwards;
// the receiver's clock records when a build was seen to finish, whatever the client says.
func TestApplyTimes(t *testing.T) {
	r := newTestRegistry(t)
	clientTime := collectorNow.Add(-time.Hour)
	_, err := r.Apply([]Event{{Type: TypeBuildStarted, BuildID: "b", Pipeline: "p", Phases: []PhasePlan{{Name: "A"}}}}, collectorNow)
	require.NoError(t, err)
	b, _ := r.Get("b")
	assert.Equal(t, collectorNow, b.Started)
	assert.Equal(t, collectorNow, b.Updated)

	_, err = r.Apply([]Event{{Type: TypePhaseStarted, BuildID: "b", Phase: "A", Time: collectorNow.Add(time.Minute)}}, collectorNow)
	require.NoError(t, err)
	b, _ = r.Get("b")
	assert.Equal(t, collectorNow.Add(time.Minute), b.Updated)

	_, err = r.Apply([]Event{{Type: TypeStepCompleted, BuildID: "b", Phase: "A", Count: 1, Time: collectorNow.Add(2 * time.Minute)}}, collectorNow)
	require.NoError(t, err)
	_, err = r.Apply([]Event{{Type: TypeBuildFinished, BuildID: "b", Result: "success", Time: collectorNow.Add(90 * time.Second)}}, collectorNow.Add(5*time.Second))
	require.NoError(t, err)
	b, _ = r.Get("b")
	assert.Equal(t, collectorNow.Add(2*time.Minute+time.Millisecond), b.Updated, "an older event does not move Updated back: a millisecond on")
	assert.Equal(t, collectorNow.Add(5*time.Second), b.FinishedObserved)
	assert.Equal(t, collectorNow.Add(90*time.Second), b.Finished)

	_, err = r.Apply([]Event{started("c", clientTime), finished("c", clientTime)}, collectorNow)
	require.NoError(t, err)
	c, _ := r.Get("c")
	assert.Equal(t, collectorNow, c.FinishedObserved, "a finish dated in the past is seen now")
}

// Requests whose events carry the same whole-second time still move Updated (a millisecond
// each), so that every emission of a changed build has a time of its own; the events of one
// request share one, and a new build's Updated is its start.
func TestApplyUpdatedMovesWithEveryChange(t *testing.T) {
	r := newTestRegistry(t)
	sec := collectorNow.Truncate(time.Second)
	_, err := r.Apply([]Event{started("b", sec), phaseEvent(TypePhaseStarted, "b", "b1", sec)}, collectorNow)
	require.NoError(t, err)
	b, _ := r.Get("b")
	assert.Equal(t, sec, b.Updated, "one request: the events' time")
	for i := 1; i <= 3; i++ {
		_, err = r.Apply([]Event{{Type: TypeStepCompleted, BuildID: "b", Phase: "BUILD", Count: 1, Time: sec}}, collectorNow)
		require.NoError(t, err)
		b, _ = r.Get("b")
		assert.Equal(t, sec.Add(time.Duration(i)*time.Millisecond), b.Updated, "request %d", i)
	}
	// Duplicates change nothing, so the time stays.
	_, err = r.Apply([]Event{phaseEvent(TypePhaseStarted, "b", "b1", sec)}, collectorNow)
	require.NoError(t, err)
	b, _ = r.Get("b")
	assert.Equal(t, sec.Add(3*time.Millisecond), b.Updated)
}

// Spans are recorded only while switched on, and at most maxPendingSpans wait to be taken.
func TestSpansRecording(t *testing.T) {
	r := newTestRegistry(t)
	_, err := r.Apply([]Event{started("a", collectorNow), finished("a", collectorNow)}, collectorNow)
	require.NoError(t, err)
	assert.Empty(t, r.TakeSpans(), "off by default")

	r.RecordSpans(true)
	_, err = r.Apply([]Event{started("b", collectorNow), finished("b", collectorNow)}, collectorNow)
	require.NoError(t, err)
	spans := r.TakeSpans()
	require.Len(t, spans, 1)
	assert.Equal(t, "b", spans[0].Build.ID)
	assert.Empty(t, r.TakeSpans())

	r.mu.Lock()
	st := r.newStage(nil)
	st.spans = make([]SpanRecord, maxPendingSpans+5)
	r.commit(st, false)
	st.spans = make([]SpanRecord, 3)
	r.commit(st, false)
	r.mu.Unlock()
	assert.Len(t, r.TakeSpans(), maxPendingSpans)

	r.RecordSpans(false)
	_, err = r.Apply([]Event{started("c", collectorNow), finished("c", collectorNow)}, collectorNow)
	require.NoError(t, err)
	assert.Empty(t, r.TakeSpans())
}

// Event ids are remembered up to MaxEventIDs per build, oldest out first; with 0, none.
func TestRemember(t *testing.T) {
	for _, tt := range []struct {
		max  int
		add  []string
		want []string
	}{
		{0, []string{"a", "b"}, nil},
		{1, []string{"a", "b"}, []string{"b"}},
		{3, []string{"a", "b"}, []string{"a", "b"}},
		{3, []string{"a", "b", "c", "d", "e"}, []string{"c", "d", "e"}},
	} {
		r := NewRegistry(Options{MaxEventIDs: tt.max})
		b := &Build{ID: "b"}
		for _, id := range tt.add {
			r.remember(b, id)
		}
		assert.Equal(t, tt.want, b.EventIDs, "max %d", tt.max)
		assert.Len(t, b.ids, len(tt.want))
		for _, id := range tt.want {
			assert.Contains(t, b.ids, id)
		}
		assert.Equal(t, tt.want, r.keptIDs(nil, tt.add), "keptIDs agrees with remember")
	}
}

// A batch whose last event is invalid changes nothing: no build, no state, no spans, nothing
// to emit or store, and none of its event ids is remembered, so the corrected batch is
// accepted whole.
func TestApplyBatchIsAllOrNothing(t *testing.T) {
	r := newTestRegistry(t, started("b", collectorNow))
	r.RecordSpans(true)
	r.TakeDirty()
	r.TakeUnsaved()
	before, _ := r.Get("b")
	batch := []Event{
		started("new", collectorNow),
		phaseEvent(TypePhaseStarted, "b", "e1", collectorNow),
		phaseEvent(TypeStepCompleted, "b", "e2", collectorNow),
		phaseEvent(TypePhaseCompleted, "b", "e3", collectorNow),
		phaseEvent(TypeStepCompleted, "b", "e4", collectorNow), // the phase is completed
	}
	_, err := r.Apply(batch, collectorNow)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 4, e.Index)
	assert.Equal(t, "phase", e.Field)

	after, _ := r.Get("b")
	assert.Equal(t, before, after)
	_, ok := r.Get("new")
	assert.False(t, ok)
	assert.Empty(t, r.TakeSpans())
	assert.Empty(t, r.TakeDirty())
	assert.Empty(t, r.TakeUnsaved())

	res, err := r.Apply(batch[:4], collectorNow)
	require.NoError(t, err)
	assert.Equal(t, Result{Accepted: 4}, res, "no id of the refused batch counts as seen")
	assert.Len(t, r.TakeSpans(), 2, "the step and the phase")
	assert.Equal(t, []string{"b", "new"}, ids(r.TakeDirty()))
}
