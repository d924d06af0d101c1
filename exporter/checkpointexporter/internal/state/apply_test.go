package state

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What one observation changes, and whether that makes a checkpoint or a report due.
func TestApplyChangeTracking(t *testing.T) {
	base := func() BuildObservation {
		return BuildObservation{ID: "b", State: At(BuildFinished, ts(1)), Result: At("success", ts(1)),
			Phases: []PhaseObservation{phaseObs("A", PhaseCompleted, 1, 1, 1)}}
	}
	tests := []struct {
		name       string
		second     func(o *BuildObservation)
		wantDirty  bool
		wantTouch  bool
		wantReport bool // a report due again
	}{
		{name: "the same again", second: func(*BuildObservation) {}},
		{name: "the same values, newer timestamps", second: func(o *BuildObservation) {
			o.State, o.Result = At(BuildFinished, ts(2)), At("success", ts(2))
			o.Phases[0] = phaseObs("A", PhaseCompleted, 1, 1, 2)
		}, wantTouch: true},
		{name: "an older value", second: func(o *BuildObservation) { o.Result = At("failure", ts(0)) }},
		{name: "a newer result", second: func(o *BuildObservation) { o.Result = At("failure", ts(2)) }, wantDirty: true, wantTouch: true, wantReport: true},
		{name: "a late phase aggregate", second: func(o *BuildObservation) {
			o.Phases = []PhaseObservation{{Name: "A", NetReceive: At(int64(5), ts(2))}}
		}, wantDirty: true, wantTouch: true, wantReport: true},
		{name: "a new resource attribute", second: func(o *BuildObservation) { o.Resource.Branch = "main" }, wantDirty: true, wantTouch: true, wantReport: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(Limits{})
			s.Apply(Batch{Builds: []BuildObservation{base()}})
			for _, j := range s.DueReports() {
				s.ReportWritten(j, 1)
			}
			_, v, err := s.Snapshot()
			require.NoError(t, err)
			s.MarkWritten(v)
			require.False(t, s.Touched())
			o := base()
			tt.second(&o)
			s.Apply(Batch{Builds: []BuildObservation{o}})
			assert.Equal(t, tt.wantDirty, s.Dirty(), "dirty")
			assert.Equal(t, tt.wantTouch, s.Touched(), "touched")
			assert.Equal(t, tt.wantReport, len(s.DueReports()) > 0, "report due")
		})
	}
}

// Urgent: a phase or the build ended in this batch.
func TestApplyUrgency(t *testing.T) {
	tests := []struct {
		name  string
		first []PhaseObservation
		state string
		next  []PhaseObservation
		want  bool
	}{
		{name: "a phase starts", next: []PhaseObservation{phaseObs("A", PhaseRunning, 0, 1, 2)}},
		{name: "a phase completes", first: []PhaseObservation{phaseObs("A", PhaseRunning, 0, 1, 1)}, next: []PhaseObservation{phaseObs("A", PhaseCompleted, 1, 1, 2)}, want: true},
		{name: "a phase is skipped", next: []PhaseObservation{phaseObs("A", PhaseSkipped, 0, 0, 2)}, want: true},
		{name: "an ended phase reported again", first: []PhaseObservation{phaseObs("A", PhaseFailed, 0, 1, 1)}, next: []PhaseObservation{phaseObs("A", PhaseFailed, 0, 1, 2)}},
		{name: "the build finishes", state: BuildFinished, want: true},
		{name: "steps move", first: []PhaseObservation{phaseObs("A", PhaseRunning, 0, 4, 1)}, next: []PhaseObservation{phaseObs("A", PhaseRunning, 2, 4, 2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(Limits{})
			s.Apply(Batch{Builds: []BuildObservation{{ID: "b", State: At(BuildRunning, ts(1)), Phases: tt.first}}})
			o := BuildObservation{ID: "b", Phases: tt.next}
			if tt.state != "" {
				o.State = At(tt.state, ts(2))
			}
			assert.Equal(t, tt.want, s.Apply(Batch{Builds: []BuildObservation{o}}).Urgent)
		})
	}
}

// A phase that goes back to running or pending is no longer ended.
func TestPhaseEndResetsWhenItRunsAgain(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{phaseObs("A", PhaseCompleted, 1, 1, 1)}}}})
	st, _ := s.BuildStatus("b")
	assert.Equal(t, FormatTime(ts(1)), st.Phases[0].EndedAt)
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{phaseObs("A", PhaseRunning, 0, 1, 2)}}}})
	st, _ = s.BuildStatus("b")
	assert.Empty(t, st.Phases[0].EndedAt)
	assert.Equal(t, []string{"A"}, st.ActiveOperations)
}

// A build that is running again after it finished (a rerun with the same id) is indexed as
// running and keeps no finish time.
func TestBuildRunningAgain(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Resource: Resource{Host: "h"}, State: At(BuildFinished, ts(1))}}})
	hs := func() []string {
		s.Apply(Batch{Hosts: []HostObservation{{Name: "h"}}})
		h, _ := s.Host("h")
		return h.Builds
	}
	assert.Empty(t, hs())
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", State: At(BuildRunning, ts(2))}}})
	assert.Equal(t, []string{"b"}, hs())
	assert.Zero(t, s.builds["b"].FinishedObservedAt)
	// A move to another host moves it in the index.
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Resource: Resource{Host: "h2"}, Duration: At(1.0, ts(3))}}})
	assert.Empty(t, hs())
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h2"}}})
	h2, ok := s.Host("h2")
	require.True(t, ok, "h2 is known once it sent data")
	assert.Equal(t, []string{"b"}, h2.Builds)
}

// Observations without an id or name are ignored; those beyond the bounds are counted.
func TestApplyIgnores(t *testing.T) {
	long := strings.Repeat("x", MaxNameBytes+1)
	tests := []struct {
		name        string
		batch       Batch
		wantIgnored int
		wantBuilds  int
	}{
		{name: "no id", batch: Batch{Builds: []BuildObservation{{ID: ""}}}},
		{name: "id too long", batch: Batch{Builds: []BuildObservation{{ID: long}}}, wantIgnored: 1},
		{name: "host name too long", batch: Batch{Hosts: []HostObservation{{Name: long}}}, wantIgnored: 1},
		{name: "unnamed phase", batch: Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{{State: At(PhaseRunning, ts(1))}}}}}, wantBuilds: 1},
		{name: "alert rule too long", batch: Batch{Builds: []BuildObservation{{ID: "b", Alerts: []AlertObservation{alertObs(long, "ERROR", AlertFiring, true, 1)}}}}, wantIgnored: 1, wantBuilds: 1},
		{name: "mount point too long", batch: Batch{Hosts: []HostObservation{{Name: "h", FSMount: strings.Repeat("/", MaxTextBytes+1), FSUtil: At(0.5, ts(1))}}}, wantIgnored: 1},
		{name: "alert without a rule", batch: Batch{Hosts: []HostObservation{{Name: "h", Alerts: []AlertObservation{{Active: true, TS: ts(1)}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(Limits{})
			res := s.Apply(tt.batch)
			assert.Equal(t, tt.wantIgnored, res.Ignored)
			assert.Equal(t, tt.wantBuilds, s.Len())
		})
	}
}

// Past MaxAlerts a new alert is ignored and counted; known alerts still update.
func TestMaxAlertsPerHost(t *testing.T) {
	s, _ := newStore(Limits{})
	var obs []AlertObservation
	for i := 0; i < MaxAlerts; i++ {
		obs = append(obs, alertObs(fmt.Sprintf("r%03d", i), "WARNING", AlertPending, true, 1))
	}
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h", Alerts: obs}}})
	res := s.Apply(Batch{Hosts: []HostObservation{{Name: "h", Alerts: []AlertObservation{
		alertObs("one-too-many", "ERROR", AlertFiring, true, 2), alertObs("r000", "ERROR", AlertFiring, true, 2)}}}})
	assert.Equal(t, 1, res.Ignored)
	require.Len(t, res.Changes, 1)
	assert.Equal(t, "r000", res.Changes[0].Rule)
	hs, _ := s.Host("h")
	assert.Len(t, hs.Alerts, MaxAlerts)
	assert.Equal(t, "ERROR", hs.Alerts[0].Level, "alerts sort by rule")
}

// The alert's value follows the processor; a point without a value keeps the last one.
func TestAlertValueUpdates(t *testing.T) {
	s, _ := newStore(Limits{})
	a := alertObs("cpu", "ERROR", AlertFiring, true, 1)
	a.Value = 0.91
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h", Alerts: []AlertObservation{a}}}})
	a.Value, a.TS = 0.95, ts(2)
	res := s.Apply(Batch{Hosts: []HostObservation{{Name: "h", Alerts: []AlertObservation{a}}}})
	assert.Empty(t, res.Changes, "a new value is no notification")
	assert.True(t, s.Dirty())
	hs, _ := s.Host("h")
	assert.Equal(t, 0.95, hs.Alerts[0].Value)
	a.HasValue, a.Value, a.TS = false, 0, ts(3)
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h", Alerts: []AlertObservation{a}}}})
	hs, _ = s.Host("h")
	assert.Equal(t, 0.95, hs.Alerts[0].Value)
	// firing -> pending at the same level resolves the notification.
	p := alertObs("cpu", "ERROR", AlertPending, true, 4)
	res = s.Apply(Batch{Hosts: []HostObservation{{Name: "h", Alerts: []AlertObservation{p}}}})
	require.Len(t, res.Changes, 1)
	assert.True(t, res.Changes[0].Resolved)
}

// Removing a build resolves its firing alerts and leaves a tombstone that only newer data
// passes.
func TestEvictionResolvesAlertsAndLeavesTombstones(t *testing.T) {
	s, c := newStore(Limits{MaxBuilds: 1})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "old", Duration: At(1.0, ts(5)), Alerts: []AlertObservation{alertObs("slow", "ERROR", AlertFiring, true, 5)}}}})
	c.Advance(time.Second)
	res := s.Apply(Batch{Builds: []BuildObservation{{ID: "new", Duration: At(1.0, ts(6))}}})
	assert.Equal(t, 1, res.Evicted)
	require.Len(t, res.Changes, 1)
	assert.True(t, res.Changes[0].Resolved)
	assert.Equal(t, "old", res.Changes[0].BuildID)
	res = s.Apply(Batch{Builds: []BuildObservation{{ID: "old", Duration: At(2.0, ts(5))}}})
	assert.Zero(t, res.Evicted, "late data of a removed build is dropped")
	_, ok := s.BuildCopy("old")
	assert.False(t, ok)
}
