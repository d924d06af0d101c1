package events

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The receiver's clock in these tests; client times are set apart from it on purpose.
var collectorNow = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func started(id string, at time.Time) Event {
	return Event{ID: id + "/start", Type: TypeBuildStarted, BuildID: id, Time: at, Pipeline: "p", Phases: []PhasePlan{{Name: "BUILD", Steps: 5}}}
}

func finished(id string, at time.Time) Event {
	return Event{ID: id + "/finish", Type: TypeBuildFinished, BuildID: id, Time: at, Result: "success"}
}

func phaseEvent(typ Type, id, eid string, at time.Time) Event {
	return Event{ID: eid, Type: typ, BuildID: id, Phase: "BUILD", Time: at, Count: 1}
}

func errorField(t *testing.T, err error) string {
	t.Helper()
	var e *Error
	require.True(t, errors.As(err, &e), "an *Error, got %v", err)
	return e.Field
}

// A finished build stays FinishedTTL after the receiver saw it finish, whatever the client's
// time says: dated in the past it does not leave at once (a retry is a duplicate and a
// retried build_started does not bring it back as running), dated 2100 it still leaves.
func TestExpiryRunsOnTheCollectorClock(t *testing.T) {
	const ttl = 5 * time.Minute
	tests := []struct {
		name       string
		clientTime time.Time
	}{
		{"dated a year in the past", collectorNow.AddDate(-1, 0, 0)},
		{"dated ten minutes in the past", collectorNow.Add(-10 * time.Minute)},
		{"dated 2100", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"without a time", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: 10, FinishedTTL: ttl})
			start := tt.clientTime
			if !start.IsZero() {
				start = start.Add(-time.Minute)
			}
			_, err := r.Apply([]Event{started("b", start), finished("b", tt.clientTime)}, collectorNow)
			require.NoError(t, err)
			b, _ := r.Get("b")
			assert.Equal(t, collectorNow, b.FinishedObserved)

			assert.Equal(t, 0, r.Expire(collectorNow.Add(ttl-time.Second)), "kept for the TTL")
			res, err := r.Apply([]Event{finished("b", tt.clientTime)}, collectorNow.Add(ttl-time.Second))
			require.NoError(t, err, "a retry within the TTL is no 404")
			assert.Equal(t, Result{Duplicates: 1}, res)
			res, err = r.Apply([]Event{started("b", start)}, collectorNow.Add(ttl-time.Second))
			require.NoError(t, err)
			assert.Equal(t, Result{Duplicates: 1}, res)
			b, _ = r.Get("b")
			assert.True(t, b.Done(), "not resurrected as running")

			assert.Equal(t, 1, r.Expire(collectorNow.Add(ttl+time.Second)), "gone after the TTL")
			assert.Equal(t, 0, r.Len())
		})
	}
}

// Builds finishing with past dates used to expire at the next report tick, so new ids got
// past max_builds without limit; now they count until the TTL ends.
func TestPastDatedFinishesDoNotBypassMaxBuilds(t *testing.T) {
	const maxBuilds = 5
	r := NewRegistry(Options{MaxBuilds: maxBuilds, MaxEventIDs: 10, FinishedTTL: 5 * time.Minute})
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	now := collectorNow
	accepted := 0
	for i := range 25 { // 250 s: within the TTL
		id := fmt.Sprintf("b%d", i)
		if _, err := r.Apply([]Event{started(id, past), finished(id, past.Add(time.Second))}, now); err == nil {
			accepted++
		} else {
			var e *Error
			require.True(t, errors.As(err, &e))
			assert.Equal(t, KindTooManyBuilds, e.Kind)
		}
		now = now.Add(10 * time.Second) // a report tick
		r.Expire(now)
		require.LessOrEqual(t, r.Len(), maxBuilds)
	}
	assert.Equal(t, maxBuilds, accepted)
}

// A finished build restored from storage without the time the receiver saw it finish counts
// from the restore, and is marked to be written with that time.
func TestRestoredFinishedBuildCountsFromRestore(t *testing.T) {
	const ttl = 5 * time.Minute
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: 10, FinishedTTL: ttl})
	assert.Empty(t, r.Restore([]Build{
		{ID: "old", Pipeline: "p", Started: past, Updated: past, Finished: past, Result: "success"},
		{ID: "seen", Pipeline: "p", Started: past, Updated: past, Finished: past, Result: "success", FinishedObserved: collectorNow.Add(-ttl)},
	}, collectorNow))
	unsaved := r.TakeUnsaved()
	require.Len(t, unsaved, 1)
	assert.Equal(t, "old", unsaved[0].Build.ID)
	assert.Equal(t, collectorNow, unsaved[0].Build.FinishedObserved)

	assert.Equal(t, 1, r.Expire(collectorNow.Add(time.Second)), "the build stored with its time expires on it")
	_, ok := r.Get("old")
	assert.True(t, ok)
	assert.Equal(t, 1, r.Expire(collectorNow.Add(ttl+time.Second)))
}

// An end before the start is rejected naming "time", and changes nothing; an end at the
// start is fine.
func TestEndBeforeStartIsRejected(t *testing.T) {
	at := func(s int) time.Time { return collectorNow.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name string
		evs  []Event
		ok   bool
	}{
		{"phase completed before it started", []Event{phaseEvent(TypePhaseStarted, "b", "e1", at(10)), phaseEvent(TypePhaseCompleted, "b", "e2", at(5))}, false},
		{"phase failed before it started", []Event{phaseEvent(TypePhaseStarted, "b", "e1", at(10)), phaseEvent(TypePhaseFailed, "b", "e2", at(9))}, false},
		{"build finished before it started", []Event{finished("b", at(-1))}, false},
		{"build finished before its running phase started", []Event{phaseEvent(TypePhaseStarted, "b", "e1", at(10)), finished("b", at(5))}, false},
		{"phase completed when it started", []Event{phaseEvent(TypePhaseStarted, "b", "e1", at(10)), phaseEvent(TypePhaseCompleted, "b", "e2", at(10))}, true},
		{"pending phase failed before the build started", []Event{phaseEvent(TypePhaseFailed, "b", "e2", at(1))}, true},
		{"build finished when it started", []Event{finished("b", at(0))}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: 10, FinishedTTL: time.Minute})
			_, err := r.Apply([]Event{started("b", at(0))}, collectorNow)
			require.NoError(t, err)
			before, _ := r.Get("b")
			_, err = r.Apply(tt.evs, collectorNow)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, "time", errorField(t, err))
			assert.Contains(t, err.Error(), "before")
			after, _ := r.Get("b")
			assert.Equal(t, before, after, "nothing changed")
		})
	}
}

// A stage applies requests on top of each other without touching the registry; dropped, it
// leaves nothing; committed, the registry holds what Changes returned, event ids included.
func TestStageCommitsOnlyWhenTold(t *testing.T) {
	r := NewRegistry(Options{MaxBuilds: 2, MaxEventIDs: 3, FinishedTTL: time.Minute})
	_, err := r.Apply([]Event{started("a", collectorNow), phaseEvent(TypePhaseStarted, "a", "a1", collectorNow)}, collectorNow)
	require.NoError(t, err)
	r.TakeUnsaved()
	r.TakeDirty()
	committed, _ := r.Get("a")

	stage := func() (*Stage, []Result, []error) {
		st := r.NewStage()
		reqs := [][]Event{
			{phaseEvent(TypeStepCompleted, "a", "a2", collectorNow), phaseEvent(TypeStepCompleted, "a", "a3", collectorNow)},
			{started("b", collectorNow)},
			{phaseEvent(TypeStepCompleted, "a", "a3", collectorNow), phaseEvent(TypeStepCompleted, "a", "a4", collectorNow)}, // a retry within the group
			{started("c", collectorNow)}, // max_builds: b counts
			{phaseEvent(TypePhaseStarted, "b", "b1", collectorNow), phaseEvent(TypeStepCompleted, "b", "b2", collectorNow.Add(-time.Hour)), phaseEvent(TypePhaseStarted, "b", "b1x", collectorNow)}, // invalid: nothing of it stays
		}
		var res []Result
		var errs []error
		for _, evs := range reqs {
			rs, err := st.Apply(evs, collectorNow)
			res = append(res, rs)
			errs = append(errs, err)
		}
		return st, res, errs
	}

	st, res, errs := stage()
	assert.Equal(t, []Result{{Accepted: 2}, {Accepted: 1}, {Accepted: 1, Duplicates: 1}, {}, {}}, res)
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.NoError(t, errs[2])
	assert.Equal(t, "build_id", errorField(t, errs[3]))
	assert.Equal(t, "phase", errorField(t, errs[4]))
	require.True(t, st.Changed())
	changes := st.Changes()
	require.Len(t, changes, 2)

	// Dropped: the registry is as it was.
	a, _ := r.Get("a")
	assert.Equal(t, committed, a)
	_, ok := r.Get("b")
	assert.False(t, ok)
	assert.Empty(t, r.TakeDirty())
	assert.Empty(t, r.TakeUnsaved())

	// Staged again and committed: the registry holds what was to be written.
	st, _, _ = stage()
	changes = st.Changes()
	st.Commit()
	assert.Empty(t, r.TakeUnsaved(), "a committed stage is written already")
	for _, c := range changes {
		b, ok := r.Get(c.Build.ID)
		require.True(t, ok)
		want := c.Build
		want.EventIDs = nil
		assert.Equal(t, want, b)
	}
	assert.Equal(t, []string{"a2", "a3", "a4"}, changes[0].Build.EventIDs, "the newest max_event_ids_per_build ids")
	res2, err := r.Apply([]Event{phaseEvent(TypeStepCompleted, "a", "a4", collectorNow), phaseEvent(TypeStepCompleted, "a", "a1", collectorNow)}, collectorNow)
	require.NoError(t, err)
	assert.Equal(t, Result{Accepted: 1, Duplicates: 1}, res2, "the committed ids are the written ones: a1 fell out")
	assert.Len(t, r.TakeDirty(), 2)
}

// A build a staged request only looked at (a duplicate) is not committed over the registry:
// a finished build that expires while the stage is written stays gone.
func TestStageDoesNotResurrectExpiredBuilds(t *testing.T) {
	r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: 10, FinishedTTL: time.Minute})
	_, err := r.Apply([]Event{started("done", collectorNow), finished("done", collectorNow), started("run", collectorNow), phaseEvent(TypePhaseStarted, "run", "r1", collectorNow)}, collectorNow)
	require.NoError(t, err)
	st := r.NewStage()
	res, err := st.Apply([]Event{finished("done", collectorNow), phaseEvent(TypeStepCompleted, "run", "r2", collectorNow)}, collectorNow)
	require.NoError(t, err)
	assert.Equal(t, Result{Accepted: 1, Duplicates: 1}, res)
	changes := st.Changes()
	require.Len(t, changes, 1)
	assert.Equal(t, "run", changes[0].Build.ID)
	require.Equal(t, 1, r.Expire(collectorNow.Add(2*time.Minute)))
	st.Commit()
	_, ok := r.Get("done")
	assert.False(t, ok)
	b, _ := r.Get("run")
	assert.Equal(t, int64(1), b.Phases[0].Completed)
}
