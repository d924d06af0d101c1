package state

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCurrentPhaseAndActiveOperations(t *testing.T) {
	tests := []struct {
		name       string
		states     []string
		wantPhase  string
		wantActive []string
		wantLinks  []string
	}{
		{name: "nothing started", states: []string{PhasePending, PhasePending}, wantActive: []string{}},
		{name: "the running one", states: []string{PhaseCompleted, PhaseRunning, PhasePending}, wantPhase: "P1", wantActive: []string{"P1"}, wantLinks: []string{"P0"}},
		{name: "the first running one in plan order", states: []string{PhaseRunning, PhaseRunning}, wantPhase: "P0", wantActive: []string{"P0", "P1"}},
		{name: "else the last that ended", states: []string{PhaseCompleted, PhaseSkipped, PhasePending}, wantPhase: "P1", wantActive: []string{}, wantLinks: []string{"P0", "P1"}},
		{name: "a failed phase ended", states: []string{PhaseFailed}, wantPhase: "P0", wantActive: []string{}, wantLinks: []string{"P0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(Limits{})
			o := BuildObservation{ID: "b"}
			for i, st := range tt.states {
				o.Phases = append(o.Phases, PhaseObservation{Name: "P" + string(rune('0'+i)), State: At(st, ts(1))})
			}
			s.Apply(Batch{Builds: []BuildObservation{o}})
			st, ok := s.BuildStatus("b")
			require.True(t, ok)
			assert.Equal(t, tt.wantPhase, st.Phase)
			assert.Equal(t, tt.wantActive, st.ActiveOperations)
			var links []string
			for p, link := range st.Reports.Phases {
				assert.Equal(t, "/v1/builds/b/phases/"+p+"/report", link)
				links = append(links, p)
			}
			assert.ElementsMatch(t, tt.wantLinks, links)
			assert.Empty(t, st.Reports.Build, "no build report while running")
			list := s.Builds(BuildFilter{})
			require.Len(t, list, 1)
			assert.Equal(t, tt.wantPhase, list[0].Phase)
		})
	}
}

func TestBuildStatusFields(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{
		Builds: []BuildObservation{{
			ID: "b", Resource: Resource{Pipeline: "p", Host: "h", Worker: "w", Repository: "r", Branch: "main", Revision: "abc"},
			State: At(BuildRunning, ts(5)), Result: At("success", ts(5)), Duration: At(5.0, ts(5)), Progress: At(0.1234, ts(5)),
			Paused: At(true, ts(5)),
			Phases: []PhaseObservation{{Name: "BUILD", State: At(PhaseRunning, ts(5)), Weight: At(0.4, ts(5)), StepsTotal: At(int64(3), ts(5))}},
		}},
		Hosts: []HostObservation{{Name: "h", CPU: At(0.5, ts(5)), MemTotal: At(int64(16), ts(5)), FSUtil: At(0.7, ts(5)), FSMount: "/data"}},
	})
	st, ok := s.BuildStatus("b")
	require.True(t, ok)
	assert.Equal(t, "w", st.Worker)
	assert.Equal(t, "abc", st.Revision)
	assert.Equal(t, BuildRunning, st.State)
	assert.Empty(t, st.Result, "no result while running")
	assert.Empty(t, st.FinishedAt)
	assert.Equal(t, 12.3, st.ProgressPercent)
	assert.True(t, st.Paused)
	require.NotNil(t, st.Phases[0].Weight)
	assert.Equal(t, 0.4, *st.Phases[0].Weight)
	assert.Equal(t, int64(3), st.Phases[0].StepsTotal)
	require.NotNil(t, st.HostResources)
	assert.Equal(t, 0.5, *st.HostResources.CPUUtilization)
	assert.Nil(t, st.HostResources.MemoryUtilization, "unknown stays null")
	assert.Equal(t, int64(16), *st.HostResources.MemoryTotalBytes)
	assert.Equal(t, "/data", st.HostResources.FilesystemMountpoint)
	assert.Equal(t, FormatTime(ts(5)), st.UpdatedAt)

	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", State: At(BuildFinished, ts(9)), Result: At("success", ts(9))}}})
	st, _ = s.BuildStatus("b")
	assert.Equal(t, "success", st.Result)
	assert.Equal(t, FormatTime(ts(9)), st.FinishedAt)
	assert.Equal(t, "/v1/builds/b/report", st.Reports.Build)

	_, ok = s.BuildStatus("nope")
	assert.False(t, ok)
	s.Apply(Batch{Builds: []BuildObservation{{ID: "alone", State: At(BuildRunning, ts(1))}}})
	st, _ = s.BuildStatus("alone")
	assert.Nil(t, st.HostResources, "no host, no resources")
	assert.Equal(t, []AlertStatus{}, st.Alerts)
}

func TestBuildFilterTable(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{
		{ID: "1", Resource: Resource{Host: "h1", Pipeline: "p1"}},
		{ID: "2", Resource: Resource{Host: "h1", Pipeline: "p2"}, State: At(BuildFinished, ts(1))},
		{ID: "3", Resource: Resource{Host: "h2", Pipeline: "p1"}, State: At(BuildRunning, ts(1))},
	}})
	tests := []struct {
		f    BuildFilter
		want []string
	}{
		{f: BuildFilter{}, want: []string{"1", "2", "3"}},
		{f: BuildFilter{State: BuildRunning}, want: []string{"1", "3"}},
		{f: BuildFilter{State: BuildFinished}, want: []string{"2"}},
		{f: BuildFilter{Host: "h1"}, want: []string{"1", "2"}},
		{f: BuildFilter{Pipeline: "p1", Host: "h2"}, want: []string{"3"}},
		{f: BuildFilter{Pipeline: "none"}, want: []string{}},
	}
	for _, tt := range tests {
		got := []string{}
		for _, b := range s.Builds(tt.f) {
			got = append(got, b.ID)
		}
		assert.Equal(t, tt.want, got, "%+v", tt.f)
	}
}

// A host's filesystem is its fullest mount, over all points of one batch and across batches
// (newer wins).
func TestHostFilesystemIsTheFullestMount(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h", FSUtil: At(0.7, ts(1)), FSMount: "/data"}}})
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h", FSUtil: At(0.2, ts(0)), FSMount: "/old"}}})
	hs, ok := s.Host("h")
	require.True(t, ok)
	assert.Equal(t, "/data", hs.Resources.FilesystemMountpoint, "an older point does not win")
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h", FSUtil: At(0.3, ts(2)), FSMount: "/"}}})
	hs, _ = s.Host("h")
	assert.Equal(t, "/", hs.Resources.FilesystemMountpoint)
	assert.Equal(t, 0.3, *hs.Resources.FilesystemUtilization)
	_, ok = s.Host("other")
	assert.False(t, ok)
}

func TestFormatTime(t *testing.T) {
	assert.Empty(t, FormatTime(0))
	assert.Equal(t, "2025-03-01T12:00:01Z", FormatTime(ts(1)))
	assert.Equal(t, "2025-03-01T12:00:00.5Z", FormatTime(ts(0)+int64(500*time.Millisecond)))
}

// Reports: due when a phase ends or the build finishes, located once written, gone with
// the build.
func TestReportLocations(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{phaseObs("A", PhaseCompleted, 1, 1, 1), phaseObs("B", PhaseRunning, 0, 1, 1)}}}})
	_, _, written, known := s.ReportLocation("b", "A")
	assert.True(t, known)
	assert.False(t, written)
	_, _, _, known = s.ReportLocation("b", "C")
	assert.False(t, known, "no such phase")
	_, _, _, known = s.ReportLocation("x", "")
	assert.False(t, known, "no such build")

	jobs := s.DueReports()
	require.Len(t, jobs, 1)
	assert.Equal(t, "A", jobs[0].Phase)
	assert.Equal(t, "b", jobs[0].Build.ID, "a copy of the build goes with the job")
	jobs[0].Build.Phases[0].Name = "changed"
	s.ReportWritten(jobs[0], 42)
	dir, file, written, known := s.ReportLocation("b", "A")
	assert.True(t, known)
	assert.True(t, written)
	assert.Equal(t, "dir-b", dir)
	assert.Equal(t, "phase-A.json", file)
	b, _ := s.BuildCopy("b")
	assert.Equal(t, "A", b.Phases[0].Name, "the job's copy is not the state")

	s.ReportWritten(ReportJob{BuildID: "gone"}, 1)          // an unknown build is ignored
	s.ReportWritten(ReportJob{BuildID: "b", Phase: "Z"}, 1) // and an unknown phase
	assert.Empty(t, s.DueReports())
}

// Firing alerts of builds and hosts are listed for the notifiers after a restore; pending
// ones are not.
func TestFiringAlertsForNotifiers(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{
		Builds: []BuildObservation{{ID: "b", Resource: Resource{Host: "h", Pipeline: "p"}, Alerts: []AlertObservation{
			alertObs("slow", "ERROR", AlertFiring, true, 1), alertObs("soon", "ERROR", AlertPending, true, 1)}}},
		Hosts: []HostObservation{{Name: "h", Alerts: []AlertObservation{alertObs("cpu", "CRITICAL", AlertFiring, true, 2)}}},
	})
	data, _, err := s.Snapshot()
	require.NoError(t, err)
	s2, _ := newStore(Limits{})
	require.NoError(t, s2.Load(data))
	got := map[string]AlertChange{}
	for _, c := range s2.FiringAlerts() {
		got[c.Rule] = c
	}
	require.Len(t, got, 2)
	assert.Equal(t, AlertChange{Scope: ScopeBuild, BuildID: "b", Pipeline: "p", Host: "h", Rule: "slow", Level: "ERROR", Value: 0.9, Since: ts(1), At: ts(1)}, got["slow"])
	assert.Equal(t, ScopeHost, got["cpu"].Scope)
	assert.False(t, got["cpu"].Resolved)
}

// Expire: alerts of finished builds go stale, idle hosts without running builds go with
// retention, tombstones too.
func TestExpireTable(t *testing.T) {
	s, c := newStore(Limits{AlertStaleAfter: 10 * time.Second, FinishedRetention: time.Minute})
	s.Apply(Batch{
		Builds: []BuildObservation{
			{ID: "done", Resource: Resource{Host: "idle"}, State: At(BuildFinished, ts(1)), Alerts: []AlertObservation{alertObs("slow", "ERROR", AlertFiring, true, 1)}},
			{ID: "run", Resource: Resource{Host: "busy"}, State: At(BuildRunning, ts(1)), Alerts: []AlertObservation{alertObs("slow", "ERROR", AlertFiring, true, 1)}},
		},
		Hosts: []HostObservation{{Name: "idle", CPU: At(0.1, ts(1))}, {Name: "busy", CPU: At(0.1, ts(1))}},
	})
	c.Advance(11 * time.Second)
	exp := s.Expire()
	require.Len(t, exp.Changes, 1, "only the finished build's alert goes stale")
	assert.Equal(t, "done", exp.Changes[0].BuildID)
	assert.True(t, exp.Changes[0].Resolved)
	run, _ := s.BuildStatus("run")
	assert.Len(t, run.Alerts, 1, "a running build's alerts end with the processor's snapshot or 0")

	c.Advance(time.Minute)
	exp = s.Expire()
	assert.Equal(t, []Removed{{ID: "done"}}, exp.Removed)
	_, ok := s.Host("idle")
	assert.False(t, ok, "an idle host without running builds goes")
	_, ok = s.Host("busy")
	assert.True(t, ok, "a host with a running build stays")
	assert.Contains(t, s.tombstones, "done")
	c.Advance(2 * time.Minute)
	s.Expire()
	assert.NotContains(t, s.tombstones, "done", "tombstones go after the retention too")
	assert.True(t, s.Dirty())
}

// A snapshot reuses the encoding of builds that did not change and re-encodes those that did.
func TestSnapshotCachesUnchangedBuilds(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "a", Duration: At(1.0, ts(1))}, {ID: "b", Duration: At(1.0, ts(1))}}})
	_, v, err := s.Snapshot()
	require.NoError(t, err)
	s.MarkWritten(v)
	require.NotNil(t, s.builds["a"].encoded)
	cachedA := s.builds["a"].encoded
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Duration: At(2.0, ts(2))}}})
	assert.Nil(t, s.builds["b"].encoded, "a change drops the cache")
	data, _, err := s.Snapshot()
	require.NoError(t, err)
	assert.Same(t, &cachedA[0], &s.builds["a"].encoded[0], "the unchanged build's encoding is reused")
	s2, _ := newStore(Limits{})
	require.NoError(t, s2.Load(data))
	b, _ := s2.BuildCopy("b")
	assert.Equal(t, 2.0, b.Duration.V)
	assert.Equal(t, 2, s2.Len())
}
