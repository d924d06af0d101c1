package events

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ids(cs []Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Build.ID
		if c.Removed {
			out[i] += " (removed)"
		}
	}
	return out
}

// Expire removes only finished builds seen finishing more than FinishedTTL ago; removals are
// marked for storage and leave the set of builds to emit.
func TestExpire(t *testing.T) {
	const ttl = time.Minute
	r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: 10, FinishedTTL: ttl})
	_, err := r.Apply([]Event{started("old", collectorNow), finished("old", collectorNow), started("running", collectorNow)}, collectorNow)
	require.NoError(t, err)
	_, err = r.Apply([]Event{started("recent", collectorNow), finished("recent", collectorNow)}, collectorNow.Add(30*time.Second))
	require.NoError(t, err)
	r.TakeUnsaved()

	assert.Equal(t, 0, r.Expire(collectorNow.Add(ttl)), "exactly the TTL: still there")
	assert.Equal(t, 1, r.Expire(collectorNow.Add(ttl+time.Second)))
	_, ok := r.Get("old")
	assert.False(t, ok)
	assert.Equal(t, []string{"recent", "running"}, ids(r.TakeDirty()), "the expired build is not emitted")
	assert.Equal(t, []string{"old (removed)"}, ids(r.TakeUnsaved()))

	assert.Equal(t, 1, r.Expire(collectorNow.Add(time.Hour)))
	assert.Equal(t, 1, r.Len(), "a running build never expires")
	assert.Equal(t, 0, r.Expire(collectorNow.Add(1000*time.Hour)))
}

// Restore keeps the running builds first, then the most recently updated, up to MaxBuilds;
// the rest are dropped and marked removed in storage.
func TestRestoreOrderAndDrops(t *testing.T) {
	r := NewRegistry(Options{MaxBuilds: 3, MaxEventIDs: 10, FinishedTTL: time.Hour})
	b := func(id string, updated int, done bool) Build {
		out := Build{ID: id, Pipeline: "p", Started: sec(0), Updated: sec(updated)}
		if done {
			out.Finished, out.FinishedObserved, out.Result = sec(updated), collectorNow, "success"
		}
		return out
	}
	dropped := r.Restore([]Build{
		b("done-new", 50, true),
		b("run-old", 1, false),
		b("done-old", 10, true),
		b("run-new", 40, false),
		b("done-mid", 20, true),
	}, collectorNow)
	assert.ElementsMatch(t, []string{"done-mid", "done-old"}, dropped)
	assert.Equal(t, 3, r.Len())
	for _, id := range []string{"run-old", "run-new", "done-new"} {
		_, ok := r.Get(id)
		assert.True(t, ok, id)
	}
	assert.Equal(t, []string{"done-new", "run-new", "run-old"}, ids(r.TakeDirty()), "every restored build is emitted at once")
	assert.Equal(t, []string{"done-mid (removed)", "done-old (removed)"}, ids(r.TakeUnsaved()))
}

// A restored build keeps its newest MaxEventIDs event ids, so a retry of one is still a
// duplicate; the input slice is not reordered.
func TestRestoreEventIDs(t *testing.T) {
	r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: 2, FinishedTTL: time.Hour})
	in := []Build{
		{ID: "b", Pipeline: "p", Started: sec(0), Updated: sec(1), EventIDs: []string{"e1", "e2", "e3"},
			Phases: []Phase{{Name: "BUILD", Steps: 5, State: PhaseRunning, Start: sec(1)}}},
		{ID: "a", Pipeline: "p", Started: sec(0), Updated: sec(2)},
	}
	r.Restore(in, collectorNow)
	assert.Equal(t, "b", in[0].ID, "the caller's slice keeps its order")
	unsaved := r.TakeUnsaved()
	assert.Empty(t, unsaved, "running builds are stored as they are")

	res, err := r.Apply([]Event{phaseEvent(TypeStepCompleted, "b", "e3", collectorNow), phaseEvent(TypeStepCompleted, "b", "e1", collectorNow)}, collectorNow)
	require.NoError(t, err)
	assert.Equal(t, Result{Accepted: 1, Duplicates: 1}, res, "e3 is remembered, e1 fell out")
	b, _ := r.Get("b")
	assert.Equal(t, int64(1), b.Phases[0].Completed)
}

// A finished build stored without the time the receiver saw it finish counts from the
// restore, and is marked to be written with that time.
func TestRestoreFinishedObserved(t *testing.T) {
	r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: 10, FinishedTTL: time.Minute})
	seen := collectorNow.Add(-30 * time.Second)
	r.Restore([]Build{
		{ID: "legacy", Pipeline: "p", Started: sec(0), Finished: sec(1), Result: "success"},
		{ID: "seen", Pipeline: "p", Started: sec(0), Finished: sec(1), FinishedObserved: seen, Result: "success"},
	}, collectorNow)
	b, _ := r.Get("legacy")
	assert.Equal(t, collectorNow, b.FinishedObserved)
	b, _ = r.Get("seen")
	assert.Equal(t, seen, b.FinishedObserved, "a stored observation is kept")
	unsaved := r.TakeUnsaved()
	require.Len(t, unsaved, 1)
	assert.Equal(t, "legacy", unsaved[0].Build.ID)
	assert.Equal(t, collectorNow, unsaved[0].Build.FinishedObserved)

	assert.Equal(t, 1, r.Expire(collectorNow.Add(45*time.Second)), "seen expires on its stored time")
	assert.Equal(t, 1, r.Expire(collectorNow.Add(2*time.Minute)))
}
