package state

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func ts(s int) int64 { return t0.Add(time.Duration(s) * time.Second).UnixNano() }

type testNamer struct{}

func (testNamer) BuildDir(id string) string     { return "dir-" + id }
func (testNamer) BuildFile() string             { return "build.json" }
func (testNamer) PhaseFile(phase string) string { return "phase-" + phase + ".json" }

func newStore(limits Limits) (*Store, *clock.Fake) {
	c := clock.NewFake(t0)
	return New(c, limits, testNamer{}), c
}

func phaseObs(name, state string, done, total int64, at int) PhaseObservation {
	return PhaseObservation{Name: name, State: At(state, ts(at)), StepsCompleted: At(done, ts(at)), StepsTotal: At(total, ts(at))}
}

func TestNewerTimestampWinsPerField(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{{
		ID: "b", Resource: Resource{Pipeline: "p", Host: "h"},
		Phases: []PhaseObservation{phaseObs("BUILD", PhaseRunning, 2, 4, 10)},
		ETA:    At(30.0, ts(10)),
	}}})
	// Older steps, newer ETA in one observation: each field decides on its own.
	s.Apply(Batch{Builds: []BuildObservation{{
		ID:     "b",
		Phases: []PhaseObservation{{Name: "BUILD", StepsCompleted: At(int64(1), ts(5))}},
		ETA:    At(20.0, ts(12)),
	}}})
	st, ok := s.BuildStatus("b")
	require.True(t, ok)
	assert.Equal(t, int64(2), st.Phases[0].StepsCompleted)
	require.NotNil(t, st.ETASeconds)
	assert.Equal(t, 20.0, *st.ETASeconds)
	assert.Equal(t, "p", st.Pipeline, "resource attributes are kept when a later observation lacks them")
	assert.Equal(t, FormatTime(ts(12)), st.UpdatedAt)
}

func TestPhaseTransitionsAndUrgency(t *testing.T) {
	s, _ := newStore(Limits{})
	running := phaseObs("BUILD", PhaseRunning, 1, 2, 1)
	running.Start = At(float64(ts(1))/1e9, ts(1)) // the receiver's build.phase.start_time
	res := s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{running}}}})
	assert.False(t, res.Urgent)
	res = s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{phaseObs("BUILD", PhaseCompleted, 2, 2, 9)}}}})
	assert.True(t, res.Urgent, "a phase that ends makes a checkpoint due")
	b, _ := s.BuildCopy("b")
	p := b.Phases[0]
	assert.Equal(t, ts(1), PhaseStartedAt(p))
	assert.Equal(t, ts(9), p.EndedAt)
	assert.True(t, p.Report.Due())
	jobs := s.DueReports()
	require.Len(t, jobs, 1)
	assert.Equal(t, "BUILD", jobs[0].Phase)
	assert.Equal(t, "dir-b", jobs[0].Dir)
	assert.Equal(t, "phase-BUILD.json", jobs[0].File)
	s.ReportWritten(jobs[0], 100)
	assert.Empty(t, s.DueReports())

	// The same data again changes nothing; a late aggregate makes the report due again.
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{phaseObs("BUILD", PhaseCompleted, 2, 2, 9)}}}})
	assert.Empty(t, s.DueReports())
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{{Name: "BUILD", CPUAvg: At(0.4, ts(10))}}}}})
	assert.Len(t, s.DueReports(), 1)

	res = s.Apply(Batch{Builds: []BuildObservation{{ID: "b", State: At(BuildFinished, ts(11)), Result: At("success", ts(11))}}})
	assert.True(t, res.Urgent)
	jobs = s.DueReports()
	require.Len(t, jobs, 2)
	assert.Equal(t, "", jobs[0].Phase, "the build report sorts first")
}

func TestFailedPhaseIsAnIssue(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{phaseObs("TEST", PhaseFailed, 1, 2, 3)}}}})
	b, _ := s.BuildCopy("b")
	require.Len(t, b.Issues, 1)
	assert.Equal(t, Issue{Kind: IssueFailure, Phase: "TEST", FirstSeen: ts(3), LastSeen: ts(3)}, b.Issues[0])
	assert.Len(t, b.Phases[0].Issues, 1)
}

func alertObs(rule, level, state string, active bool, at int) AlertObservation {
	return AlertObservation{Rule: rule, Level: level, State: state, Active: active, Value: 0.9, HasValue: true, TS: ts(at)}
}

func TestBuildAlerts(t *testing.T) {
	s, c := newStore(Limits{AlertStaleAfter: 15 * time.Second})
	obs := func(at int, complete bool, alerts ...AlertObservation) ApplyResult {
		return s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Resource: Resource{Host: "h", Pipeline: "p"},
			Progress: At(0.1, ts(at)), Alerts: alerts, AlertsComplete: complete, AlertsAt: ts(at)}}})
	}
	res := obs(1, true, alertObs("mem", "ERROR", AlertPending, true, 1))
	assert.Empty(t, res.Changes, "pending alerts are not notified")
	res = obs(2, true, alertObs("mem", "ERROR", AlertFiring, true, 2))
	require.Len(t, res.Changes, 1)
	assert.Equal(t, AlertChange{Scope: ScopeBuild, BuildID: "b", Pipeline: "p", Host: "h", Rule: "mem", Level: "ERROR",
		Value: 0.9, Since: ts(1), At: ts(2)}, res.Changes[0])

	res = obs(3, true, alertObs("mem", "CRITICAL", AlertFiring, true, 3))
	require.Len(t, res.Changes, 2)
	assert.True(t, res.Changes[0].Resolved)
	assert.Equal(t, "ERROR", res.Changes[0].Level)
	assert.Equal(t, "CRITICAL", res.Changes[1].Level)
	assert.Equal(t, ts(3), res.Changes[1].Since)

	// A snapshot that is older than the alert does not clear it.
	res = s.Apply(Batch{Builds: []BuildObservation{{ID: "b", AlertsComplete: true, AlertsAt: ts(2)}}})
	assert.Empty(t, res.Changes)
	st, _ := s.BuildStatus("b")
	assert.Len(t, st.Alerts, 1)

	// A newer snapshot without it clears it.
	res = obs(4, true)
	require.Len(t, res.Changes, 1)
	assert.True(t, res.Changes[0].Resolved)
	assert.Equal(t, c.Now().UnixNano(), res.Changes[0].At)

	// Without a snapshot (e.g. the processor's pause-only resource), alerts stay.
	obs(5, true, alertObs("disk", "ERROR", AlertFiring, true, 5))
	res = s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Paused: At(true, ts(6))}}})
	assert.Empty(t, res.Changes)
	// An explicit 0 clears it.
	res = obs(7, false, alertObs("disk", "ERROR", AlertFiring, false, 7))
	require.Len(t, res.Changes, 1)
	assert.True(t, res.Changes[0].Resolved)

	// Issues remember what fired.
	b, _ := s.BuildCopy("b")
	var rules []string
	for _, is := range b.Issues {
		rules = append(rules, is.Rule+"/"+is.Level)
	}
	assert.Equal(t, []string{"mem/ERROR", "mem/CRITICAL", "disk/ERROR"}, rules)
}

func TestHostAlertsGoStaleAndReachBuilds(t *testing.T) {
	s, c := newStore(Limits{AlertStaleAfter: 15 * time.Second})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Resource: Resource{Host: "h"},
		Phases: []PhaseObservation{phaseObs("BUILD", PhaseRunning, 0, 3, 0)}}}})
	res := s.Apply(Batch{Hosts: []HostObservation{{Name: "h", CPU: At(0.99, ts(1)), MemUtil: At(0.5, ts(1)),
		Alerts: []AlertObservation{alertObs("cpu", "CRITICAL", AlertFiring, true, 1)}}}})
	require.Len(t, res.Changes, 1)
	assert.Equal(t, ScopeHost, res.Changes[0].Scope)
	st, _ := s.BuildStatus("b")
	require.Len(t, st.Alerts, 1)
	assert.Equal(t, ScopeHost, st.Alerts[0].Scope)
	b, _ := s.BuildCopy("b")
	assert.False(t, b.Phases[0].Resources.Any(), "phase resources come from the processor, not from host samples")
	require.Len(t, b.Phases[0].Issues, 1)
	assert.Equal(t, "cpu", b.Phases[0].Issues[0].Rule)

	c.Advance(10 * time.Second)
	assert.Empty(t, s.Expire().Changes, "still fresh")
	// Host metrics without the alert do not clear it (the processor may put it on another
	// resource); only time does.
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h", CPU: At(0.5, ts(11))}}})
	c.Advance(6 * time.Second)
	exp := s.Expire()
	require.Len(t, exp.Changes, 1)
	assert.True(t, exp.Changes[0].Resolved)
	hs, _ := s.Host("h")
	assert.Empty(t, hs.Alerts)
}

func TestRetentionAndTombstones(t *testing.T) {
	s, c := newStore(Limits{FinishedRetention: time.Hour})
	s.Apply(Batch{Builds: []BuildObservation{
		{ID: "done", State: At(BuildFinished, ts(1))},
		{ID: "running", State: At(BuildRunning, ts(1))},
	}})
	jobs := s.DueReports()
	require.Len(t, jobs, 1)
	s.ReportWritten(jobs[0], 10)
	c.Advance(59 * time.Minute)
	assert.Empty(t, s.Expire().Removed)
	c.Advance(2 * time.Minute)
	exp := s.Expire()
	assert.Equal(t, []Removed{{ID: "done", ReportDir: "dir-done"}}, exp.Removed)
	assert.Equal(t, 1, s.Len())

	// Late data does not resurrect it; newer data (a rerun with the same id) does.
	s.Apply(Batch{Builds: []BuildObservation{{ID: "done", State: At(BuildFinished, ts(1))}}})
	assert.Equal(t, 1, s.Len())
	s.Apply(Batch{Builds: []BuildObservation{{ID: "done", State: At(BuildRunning, ts(5000))}}})
	assert.Equal(t, 2, s.Len())
}

func TestMaxReportsBytes(t *testing.T) {
	s, c := newStore(Limits{MaxReportsBytes: 250})
	for i, id := range []string{"a", "b", "c"} {
		c.Advance(time.Second)
		s.Apply(Batch{Builds: []BuildObservation{{ID: id, State: At(BuildFinished, ts(i))}}})
		for _, j := range s.DueReports() {
			s.ReportWritten(j, 100)
		}
	}
	exp := s.Expire()
	assert.Equal(t, []Removed{{ID: "a", ReportDir: "dir-a", Evicted: true}}, exp.Removed)
	assert.Equal(t, 2, s.Len())
}

func TestMaxBuilds(t *testing.T) {
	s, c := newStore(Limits{MaxBuilds: 2})
	c.Advance(time.Second)
	s.Apply(Batch{Builds: []BuildObservation{{ID: "old-running", State: At(BuildRunning, ts(1))}}})
	c.Advance(time.Second)
	s.Apply(Batch{Builds: []BuildObservation{{ID: "finished", State: At(BuildFinished, ts(2))}}})
	c.Advance(time.Second)
	res := s.Apply(Batch{Builds: []BuildObservation{{ID: "new", State: At(BuildRunning, ts(3))}}})
	assert.Equal(t, 1, res.Evicted)
	_, ok := s.BuildStatus("finished")
	assert.False(t, ok, "finished builds go first")
	res = s.Apply(Batch{Builds: []BuildObservation{{ID: "newer", State: At(BuildRunning, ts(4))}}})
	assert.Equal(t, 1, res.Evicted)
	_, ok = s.BuildStatus("old-running")
	assert.False(t, ok, "then the least recently changed")
	assert.Equal(t, 2, s.Len())
}

func TestSnapshotLoadRoundTrip(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{
		Builds: []BuildObservation{{ID: "b", Resource: Resource{Host: "h", Pipeline: "p", Branch: "main"},
			Phases:   []PhaseObservation{phaseObs("INIT", PhaseCompleted, 1, 1, 1), phaseObs("BUILD", PhaseRunning, 2, 4, 2)},
			Progress: At(0.4, ts(2)), Paused: At(true, ts(2)), AlertsComplete: true, AlertsAt: ts(2),
			Alerts: []AlertObservation{alertObs("mem", "ERROR", AlertFiring, true, 2)}}},
		Hosts: []HostObservation{{Name: "h", CPU: At(0.3, ts(2)), FSUtil: At(0.5, ts(2)), FSMount: "/"}},
	})
	require.True(t, s.Dirty())
	data, version, err := s.Snapshot()
	require.NoError(t, err)
	s.MarkWritten(version)
	assert.False(t, s.Dirty())

	s2, _ := newStore(Limits{})
	require.NoError(t, s2.Load(data))
	want, _ := s.BuildStatus("b")
	got, ok := s2.BuildStatus("b")
	require.True(t, ok)
	assert.Equal(t, want, got)
	wantHost, _ := s.Host("h")
	gotHost, _ := s2.Host("h")
	assert.Equal(t, wantHost, gotHost)
	assert.Len(t, s2.FiringAlerts(), 1)
	assert.False(t, s2.Dirty())

	// The cached encoding of a build is refreshed when it changes.
	s2.Apply(Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{{Name: "BUILD", StepsCompleted: At(int64(3), ts(3))}}}}})
	data2, _, err := s2.Snapshot()
	require.NoError(t, err)
	var snap snapshot
	require.NoError(t, json.Unmarshal(data2, &snap))
	assert.Equal(t, int64(3), snap.Builds[0].Phases[1].StepsCompleted.V)

	assert.ErrorContains(t, s2.Load([]byte(`{"format":99}`)), "format 99")
	assert.Error(t, s2.Load([]byte(`{"format":1,"builds":[`)))
}

// Without the buildprogress processor the exporter computes no progress of its own (it used
// to weigh steps with its own copy of the default weights: 0.15 here) and says so.
func TestNoProgressWithoutProcessor(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{
		phaseObs("INIT", PhaseCompleted, 1, 1, 1),
		phaseObs("BUILD", PhaseRunning, 1, 4, 1),
		phaseObs("TEST", PhasePending, 0, 2, 1),
		phaseObs("custom", PhasePending, 0, 0, 1),
	}}}})
	st, _ := s.BuildStatus("b")
	assert.False(t, st.Derived)
	assert.Equal(t, NoProcessorNote, st.Note)
	assert.Zero(t, st.Progress)
	assert.Zero(t, st.Phases[1].Progress)
	assert.Nil(t, st.ETASeconds)
	assert.Equal(t, "BUILD", st.Phase)
	list := s.Builds(BuildFilter{})
	require.Len(t, list, 1)
	assert.False(t, list[0].Derived)

	// Once the processor's values arrive they are shown as they are.
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Progress: At(0.37, ts(2)), ETA: At(12.5, ts(2)),
		Phases: []PhaseObservation{{Name: "BUILD", Progress: At(0.3, ts(2))}}}}})
	st, _ = s.BuildStatus("b")
	assert.True(t, st.Derived)
	assert.Empty(t, st.Note)
	assert.Equal(t, 0.37, st.Progress)
	assert.Equal(t, 37.0, st.ProgressPercent)
	assert.Equal(t, 0.3, st.Phases[1].Progress)
	require.NotNil(t, st.ETASeconds)
	assert.Equal(t, 12.5, *st.ETASeconds)
}

func TestBuildsFilterAndHosts(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{
		{ID: "z", Resource: Resource{Host: "h1", Pipeline: "p1"}, State: At(BuildRunning, ts(1))},
		{ID: "a", Resource: Resource{Host: "h2", Pipeline: "p1"}, State: At(BuildFinished, ts(1)), Result: At("failure", ts(1))},
	}})
	var ids []string
	for _, b := range s.Builds(BuildFilter{}) {
		ids = append(ids, b.ID)
	}
	assert.Equal(t, []string{"a", "z"}, ids)
	assert.Len(t, s.Builds(BuildFilter{State: BuildFinished, Pipeline: "p1"}), 1)
	assert.Equal(t, "failure", s.Builds(BuildFilter{Host: "h2"})[0].Result)
	assert.Empty(t, s.Hosts(), "hosts come from host metrics only")
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h1", CPU: At(0.1, ts(2))}}})
	hs, ok := s.Host("h1")
	require.True(t, ok)
	assert.Equal(t, []string{"z"}, hs.Builds)
}

func TestIssuesAreBounded(t *testing.T) {
	s, _ := newStore(Limits{})
	for i := 0; i < maxBuildIssues+10; i++ {
		rule := "rule-" + strings.Repeat("x", i)
		s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Alerts: []AlertObservation{alertObs(rule, "ERROR", AlertFiring, true, i+1)}}}})
	}
	b, _ := s.BuildCopy("b")
	assert.Len(t, b.Issues, maxBuildIssues)
	assert.Equal(t, 10, b.IssuesDropped)
}

func TestHostUtilizationAloneMakesNoCheckpointDue(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Resource: Resource{Host: "h"}, Phases: []PhaseObservation{phaseObs("BUILD", PhaseRunning, 0, 3, 0)}}},
		Hosts: []HostObservation{{Name: "h", CPU: At(0.1, ts(1))}}})
	_, v, err := s.Snapshot()
	require.NoError(t, err)
	s.MarkWritten(v)
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h", CPU: At(0.7, ts(2))}}})
	assert.False(t, s.Dirty(), "a new utilization sample is no reason to write")
	// It still goes into the next checkpoint.
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{{Name: "BUILD", StepsCompleted: At(int64(1), ts(3))}}}}})
	require.True(t, s.Dirty())
	data, _, err := s.Snapshot()
	require.NoError(t, err)
	s2, _ := newStore(Limits{})
	require.NoError(t, s2.Load(data))
	hs, _ := s2.Host("h")
	assert.Equal(t, 0.7, *hs.Resources.CPUUtilization)
	b, _ := s2.BuildCopy("b")
	assert.Equal(t, int64(1), b.Phases[0].StepsCompleted.V)
	assert.False(t, b.Phases[0].Resources.Any(), "host samples are not tallied into the build")
	// Host alerts do make a checkpoint due.
	s2.Apply(Batch{Hosts: []HostObservation{{Name: "h", Alerts: []AlertObservation{alertObs("cpu", "ERROR", AlertFiring, true, 4)}}}})
	assert.True(t, s2.Dirty())
}

func TestNewerTimestampsAloneMakeNoCheckpointDue(t *testing.T) {
	s, _ := newStore(Limits{})
	report := func(at int, done int64) {
		s.Apply(Batch{Builds: []BuildObservation{{ID: "b", State: At(BuildFinished, ts(at)), Result: At("success", ts(at)),
			Phases: []PhaseObservation{phaseObs("BUILD", PhaseCompleted, done, 4, at)}, Progress: At(1.0, ts(at)),
			AlertsComplete: true, AlertsAt: ts(at)}}})
	}
	report(1, 4)
	_, v, err := s.Snapshot()
	require.NoError(t, err)
	s.MarkWritten(v)
	// The same values re-reported with the report's time, as the receiver does every interval.
	report(2, 4)
	report(3, 4)
	assert.False(t, s.Dirty())
	st, _ := s.BuildStatus("b")
	assert.Equal(t, FormatTime(ts(3)), st.UpdatedAt, "the timestamps were still taken")
	data, _, err := s.Snapshot()
	require.NoError(t, err)
	assert.Contains(t, string(data), `"t":`+strconv.FormatInt(ts(3), 10), "and ride along with the next checkpoint")
	report(4, 3)
	assert.True(t, s.Dirty(), "a new value does make one due")
}

func TestTouchedTracksChangesThatAreNotDue(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Resource: Resource{Host: "h"}, State: At(BuildRunning, ts(1))}},
		Hosts: []HostObservation{{Name: "h", CPU: At(0.1, ts(1))}}})
	_, v, err := s.Snapshot()
	require.NoError(t, err)
	s.MarkWritten(v)
	assert.False(t, s.Touched())
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h", CPU: At(0.5, ts(2))}}})
	assert.False(t, s.Dirty())
	assert.True(t, s.Touched())
	_, v, err = s.Snapshot()
	require.NoError(t, err)
	s.MarkWritten(v)
	assert.False(t, s.Touched())
}
