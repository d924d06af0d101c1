package state

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
)

// A report that is due again keeps the folder and file it was given, and its version grows;
// a job of an older version written late does not take the mark back.
func TestReportDueAgainKeepsItsFile(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", State: At(BuildFinished, ts(1)), Result: At("success", ts(1))}}})
	_, v, err := s.Snapshot()
	require.NoError(t, err)
	s.MarkWritten(v)
	first := s.DueReports()
	require.Len(t, first, 1)
	assert.Equal(t, ReportJob{BuildID: "b", Dir: "dir-b", File: "build.json", Version: 1, Build: first[0].Build}, first[0])
	assert.True(t, s.Dirty(), "the names given to the report are part of the state")
	assert.Len(t, s.DueReports(), 1, "due until written")

	// A new result before the first job is written: version 2 is due.
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Result: At("failure", ts(2))}}})
	second := s.DueReports()
	require.Len(t, second, 1)
	assert.Equal(t, uint64(2), second[0].Version)
	assert.Equal(t, "build.json", second[0].File)
	assert.Equal(t, "failure", second[0].Build.Result.V)

	s.ReportWritten(second[0], 70)
	assert.Empty(t, s.DueReports())
	s.ReportWritten(first[0], 50)
	assert.Empty(t, s.DueReports(), "the older job does not make the newer version due again")
	_, _, written, known := s.ReportLocation("b", "")
	assert.True(t, known)
	assert.True(t, written)

	// Re-reporting the same values makes no report due; a changed value does.
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", State: At(BuildFinished, ts(3)), Result: At("failure", ts(3))}}})
	assert.Empty(t, s.DueReports())
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Duration: At(42.0, ts(4))}}})
	third := s.DueReports()
	require.Len(t, third, 1)
	assert.Equal(t, uint64(3), third[0].Version)
}

// The bytes of a report that is written again replace its old bytes in the MaxReportsBytes
// tally; phase and build reports both count.
func TestReportBytesAreReplacedNotAdded(t *testing.T) {
	for _, tc := range []struct {
		name         string
		first, again int64
		removed      bool
	}{
		{"smaller again: fits", 80, 20, false},
		{"larger again: over", 20, 80, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The phase report weighs 30; the bound is 100.
			s, c := newStore(Limits{MaxReportsBytes: 100})
			s.Apply(Batch{Builds: []BuildObservation{{ID: "b", State: At(BuildFinished, ts(1)),
				Phases: []PhaseObservation{phaseObs("INIT", PhaseCompleted, 1, 1, 1)}}}})
			for _, j := range s.DueReports() {
				n := tc.first
				if j.Phase != "" {
					n = 30
				}
				s.ReportWritten(j, n)
			}
			s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Result: At("success", ts(2))}}})
			jobs := s.DueReports()
			require.Len(t, jobs, 1)
			require.Empty(t, jobs[0].Phase)
			s.ReportWritten(jobs[0], tc.again)
			c.Advance(time.Second)
			exp := s.Expire()
			if tc.removed {
				assert.Equal(t, []Removed{{ID: "b", ReportDir: "dir-b", Evicted: true}}, exp.Removed)
			} else {
				assert.Empty(t, exp.Removed)
			}
		})
	}
}

// Jobs are sorted by build, the build report before its phases' reports, and all jobs of a
// build share one copy taken when they were listed.
func TestDueReportsOrderAndCopies(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{
		{ID: "z", Phases: []PhaseObservation{phaseObs("B", PhaseFailed, 0, 1, 1), phaseObs("A", PhaseSkipped, 0, 1, 1)}},
		{ID: "a", State: At(BuildFinished, ts(1)), Phases: []PhaseObservation{phaseObs("X", PhaseCompleted, 1, 1, 1), phaseObs("Y", PhaseRunning, 0, 1, 1)}},
	}})
	jobs := s.DueReports()
	var got []string
	for _, j := range jobs {
		got = append(got, j.BuildID+"/"+j.Phase+"/"+j.File)
	}
	assert.Equal(t, []string{"a//build.json", "a/X/phase-X.json", "z/A/phase-A.json", "z/B/phase-B.json"}, got)
	assert.Same(t, jobs[0].Build, jobs[1].Build)
	assert.Same(t, jobs[2].Build, jobs[3].Build)

	// Writing one job of a build leaves the others due.
	s.ReportWritten(jobs[2], 10)
	left := s.DueReports()
	got = got[:0]
	for _, j := range left {
		got = append(got, j.BuildID+"/"+j.Phase)
	}
	assert.Equal(t, []string{"a/", "a/X", "z/B"}, got)
}

// A removed build's reports are no longer due, and its report bytes no longer count.
func TestRemovedBuildsLeaveNoDueReports(t *testing.T) {
	s, c := newStore(Limits{MaxBuilds: 1})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "old", State: At(BuildFinished, ts(1))}}})
	c.Advance(time.Second)
	res := s.Apply(Batch{Builds: []BuildObservation{{ID: "new", State: At(BuildRunning, ts(2))}}})
	assert.Equal(t, 1, res.Evicted)
	assert.Empty(t, s.DueReports())
	_, _, _, known := s.ReportLocation("old", "")
	assert.False(t, known)
}

// The status links the reports of a finished build and of its ended phases only.
func TestStatusReportLinksAndPendingPhases(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{
		phaseObs("INIT", PhaseCompleted, 1, 1, 1),
		{Name: "BUILD", StepsTotal: At(int64(4), ts(1))},
		phaseObs("TEST", PhaseFailed, 0, 1, 1),
		{Name: ""},
	}}}})
	st, ok := s.BuildStatus("b")
	require.True(t, ok)
	assert.Equal(t, BuildRunning, st.State, "a build without a state is running")
	require.Len(t, st.Phases, 3, "a phase without name is skipped")
	assert.Equal(t, PhasePending, st.Phases[1].State, "a phase without a state is pending")
	assert.Equal(t, int64(4), st.Phases[1].StepsTotal)
	assert.Nil(t, st.Phases[1].Weight)
	assert.Empty(t, st.Reports.Build)
	assert.Equal(t, map[string]string{"INIT": "/v1/builds/b/phases/INIT/report", "TEST": "/v1/builds/b/phases/TEST/report"}, st.Reports.Phases)
	assert.Equal(t, "TEST", st.Phase, "the last ended phase while none runs")
	assert.Empty(t, st.FinishedAt)
	assert.Equal(t, []string{}, st.ActiveOperations)

	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", State: At(BuildFinished, ts(2)), Result: At("failure", ts(2)),
		Phases: []PhaseObservation{{Name: "BUILD", Weight: At(0.5, ts(2))}}}}})
	st, _ = s.BuildStatus("b")
	assert.Equal(t, "/v1/builds/b/report", st.Reports.Build)
	assert.Equal(t, FormatTime(ts(2)), st.FinishedAt)
	assert.Equal(t, "failure", st.Result)
	require.NotNil(t, st.Phases[1].Weight)
	assert.Equal(t, 0.5, *st.Phases[1].Weight)
	_, ok = s.BuildStatus("nope")
	assert.False(t, ok)
}

// A build's FirstSeen and UpdatedAt are the oldest and newest timestamps applied, whichever
// order they arrive in.
func TestBuildFirstSeenAndUpdatedAt(t *testing.T) {
	s, _ := newStore(Limits{})
	for _, at := range []int{5, 9, 3, 7} {
		s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{{Name: fmt.Sprint("P", at), State: At(PhaseRunning, ts(at))}}}}})
	}
	b, _ := s.BuildCopy("b")
	assert.Equal(t, ts(3), b.FirstSeen)
	assert.Equal(t, ts(9), b.UpdatedAt)
	assert.Len(t, b.Phases, 4)
}

// MarkWritten of an older snapshot does not undo a newer one.
func TestMarkWrittenKeepsTheNewestVersion(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "a", State: At(BuildRunning, ts(1))}}})
	_, v1, err := s.Snapshot()
	require.NoError(t, err)
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", State: At(BuildRunning, ts(1))}}})
	_, v2, err := s.Snapshot()
	require.NoError(t, err)
	assert.Greater(t, v2, v1)
	s.MarkWritten(v2)
	s.MarkWritten(v1)
	assert.False(t, s.Dirty())
	assert.False(t, s.Touched())

	s.Apply(Batch{Builds: []BuildObservation{{ID: "c", State: At(BuildRunning, ts(1))}}})
	s.MarkWritten(v2)
	assert.True(t, s.Dirty(), "the change after the snapshot is not written")
}

// A stale entry of the tombstone queue (its build came back and was removed again) is
// skipped: the oldest live tombstone goes when there are more than MaxBuilds.
func TestTombstoneQueueSkipsStaleEntries(t *testing.T) {
	s, c := newStore(Limits{MaxBuilds: 2})
	step := func(o BuildObservation) {
		c.Advance(time.Second)
		s.Apply(Batch{Builds: []BuildObservation{o}})
	}
	step(BuildObservation{ID: "a", State: At(BuildFinished, ts(1))})
	step(BuildObservation{ID: "x", State: At(BuildRunning, ts(1))})
	step(BuildObservation{ID: "y", State: At(BuildRunning, ts(1))}) // evicts a (finished)
	assert.Equal(t, map[string]bool{"a": true}, clonedKeys(s.tombstones))
	step(BuildObservation{ID: "a", State: At(BuildRunning, ts(10))}) // a is back; evicts x
	assert.Equal(t, map[string]bool{"x": true}, clonedKeys(s.tombstones))
	step(BuildObservation{ID: "z", State: At(BuildRunning, ts(1))}) // evicts y
	step(BuildObservation{ID: "w", State: At(BuildRunning, ts(1))}) // evicts a again
	assert.Equal(t, map[string]bool{"y": true, "a": true}, clonedKeys(s.tombstones),
		"x is the oldest live tombstone; a's first removal is stale")

	// Late data of a is still held back; x may come back.
	c.Advance(time.Second)
	s.Apply(Batch{Builds: []BuildObservation{{ID: "a", State: At(BuildRunning, ts(10))}}})
	_, ok := s.BuildStatus("a")
	assert.False(t, ok)
	s.Apply(Batch{Builds: []BuildObservation{{ID: "x", State: At(BuildRunning, ts(1))}}})
	_, ok = s.BuildStatus("x")
	assert.True(t, ok)
}

// A build removed and revived again and again leaves stale queue entries; the queue is
// rebuilt before they outnumber the live tombstones by much.
func TestTombstoneQueueStaysBounded(t *testing.T) {
	s, c := newStore(Limits{FinishedRetention: time.Minute})
	for i := range 200 {
		s.Apply(Batch{Builds: []BuildObservation{{ID: "b", State: At(BuildFinished, ts(i+1))}}})
		c.Advance(2 * time.Minute)
		exp := s.Expire()
		require.Equal(t, []Removed{{ID: "b"}}, exp.Removed, "round %d", i)
		assert.LessOrEqual(t, s.tombQueue.Len(), 2*len(s.tombstones)+64, "round %d", i)
	}
	assert.Equal(t, map[string]bool{"b": true}, clonedKeys(s.tombstones))
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", State: At(BuildFinished, ts(200))}}})
	_, ok := s.BuildStatus("b")
	assert.False(t, ok, "the live tombstone still holds back late data")
}

// rotatingNamer names each build folder differently, as a keyed hash does after a key
// rotation.
type rotatingNamer struct{ n *int }

func (r rotatingNamer) BuildDir(id string) string {
	*r.n++
	return fmt.Sprintf("%s-key%d", id, *r.n)
}
func (rotatingNamer) BuildFile() string             { return "build.json" }
func (rotatingNamer) PhaseFile(phase string) string { return phase + ".json" }

// A build's report folder is fixed when its first report is due: later reports, and reports
// after a restore, go to the same folder even when the namer would now name it differently.
func TestReportFolderIsFixedOnce(t *testing.T) {
	n := 0
	s := New(clock.NewFake(t0), Limits{}, rotatingNamer{&n})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{phaseObs("INIT", PhaseCompleted, 1, 1, 1)}}}})
	jobs := s.DueReports()
	require.Len(t, jobs, 1)
	assert.Equal(t, "b-key1", jobs[0].Dir)
	s.ReportWritten(jobs[0], 1)
	data, _, err := s.Snapshot()
	require.NoError(t, err)

	s2 := New(clock.NewFake(t0), Limits{}, rotatingNamer{&n})
	require.NoError(t, s2.Load(data))
	s2.Apply(Batch{Builds: []BuildObservation{{ID: "b", State: At(BuildFinished, ts(2))}}})
	jobs = s2.DueReports()
	require.Len(t, jobs, 1)
	assert.Equal(t, "b-key1", jobs[0].Dir)
	assert.Equal(t, 1, n, "the namer was asked once")
}
