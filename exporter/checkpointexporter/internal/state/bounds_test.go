package state

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// payloadWith returns a checkpoint payload of one valid build changed by edit.
func payloadWith(t *testing.T, edit func(m map[string]any)) []byte {
	t.Helper()
	s, _ := newStore(Limits{})
	s.Apply(Batch{
		Builds: []BuildObservation{{ID: "b", Resource: Resource{Host: "h"},
			Phases: []PhaseObservation{phaseObs("INIT", PhaseCompleted, 1, 1, 1)}}},
		Hosts: []HostObservation{{Name: "h", CPU: At(0.3, ts(1))}},
	})
	s.DueReports()
	data, _, err := s.Snapshot()
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m))
	edit(m)
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

func build0(m map[string]any) map[string]any { return m["builds"].([]any)[0].(map[string]any) }

func TestLoadRejectsWhatApplyCannotHold(t *testing.T) {
	long := strings.Repeat("a", MaxNameBytes+1)
	manyPhases := make([]any, MaxPhases+1)
	for i := range manyPhases {
		manyPhases[i] = map[string]any{"name": fmt.Sprintf("P%d", i)}
	}
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"long build id", func(m map[string]any) { build0(m)["id"] = long }, "builds[0].id of 257 bytes"},
		{"duplicate build", func(m map[string]any) { m["builds"] = append(m["builds"].([]any), build0(m)) }, "appears twice"},
		{"long pipeline", func(m map[string]any) { build0(m)["pipeline"] = strings.Repeat("p", MaxTextBytes+1) }, "builds[0].pipeline"},
		{"too many phases", func(m map[string]any) { build0(m)["phases"] = manyPhases }, "65 phases"},
		{"empty phase name", func(m map[string]any) {
			build0(m)["phases"] = []any{map[string]any{"name": ""}}
		}, "phases[0].name is empty"},
		{"report folder outside reports", func(m map[string]any) { build0(m)["report_dir"] = "../../etc" }, "report_dir"},
		{"report folder dot", func(m map[string]any) { build0(m)["report_dir"] = ".." }, "report_dir"},
		{"report file with a slash", func(m map[string]any) {
			build0(m)["phases"].([]any)[0].(map[string]any)["report"] = map[string]any{"file": "a/b.json"}
		}, "report.file"},
		{"long host", func(m map[string]any) { m["hosts"].([]any)[0].(map[string]any)["name"] = long }, "hosts[0].name"},
		{"long tombstone", func(m map[string]any) { m["tombstones"] = map[string]any{long: map[string]any{}} }, "tombstones"},
		{"too many issues", func(m map[string]any) {
			issues := make([]any, maxBuildIssues+1)
			for i := range issues {
				issues[i] = map[string]any{"kind": "alert"}
			}
			build0(m)["issues"] = issues
		}, "65 issues"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(Limits{})
			err := s.Load(payloadWith(t, tc.edit))
			require.ErrorIs(t, err, errInvalid)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	s, _ := newStore(Limits{})
	require.NoError(t, s.Load(payloadWith(t, func(map[string]any) {})), "the unedited payload loads")
}

func TestApplyKeepsTheBounds(t *testing.T) {
	s, _ := newStore(Limits{})
	long := strings.Repeat("a", MaxNameBytes+1)
	res := s.Apply(Batch{Builds: []BuildObservation{{ID: long, State: At(BuildRunning, ts(1))}}})
	assert.Equal(t, 1, res.Ignored)
	assert.Zero(t, s.Len())

	var phases []PhaseObservation
	for i := range MaxPhases + 3 {
		phases = append(phases, phaseObs(fmt.Sprintf("P%d", i), PhasePending, 0, 1, 1))
	}
	phases = append(phases, phaseObs(long, PhasePending, 0, 1, 1))
	res = s.Apply(Batch{
		Builds: []BuildObservation{{ID: "b", Resource: Resource{Pipeline: strings.Repeat("p", MaxTextBytes+1)}, Phases: phases,
			Alerts: []AlertObservation{alertObs(long, "ERROR", AlertFiring, true, 1)}}},
		Hosts: []HostObservation{{Name: long, CPU: At(0.1, ts(1))}, {Name: "h", FSMount: strings.Repeat("m", MaxTextBytes+1), FSUtil: At(0.1, ts(1))}},
	})
	assert.Equal(t, 3+1+1+1+1+1, res.Ignored)
	b, ok := s.BuildCopy("b")
	require.True(t, ok)
	assert.Len(t, b.Phases, MaxPhases)
	assert.Empty(t, b.Pipeline)
	assert.Empty(t, b.Alerts)

	// What Apply holds, Load takes back.
	data, _, err := s.Snapshot()
	require.NoError(t, err)
	s2, _ := newStore(Limits{})
	require.NoError(t, s2.Load(data))
}

// A checkpoint written with a larger max_builds keeps the builds Apply would evict last.
func TestLoadTrimsToMaxBuilds(t *testing.T) {
	s, fc := newStore(Limits{})
	for i := range 5 {
		fc.Advance(1)
		st := BuildRunning
		if i < 3 {
			st = BuildFinished
		}
		s.Apply(Batch{Builds: []BuildObservation{{ID: fmt.Sprintf("b%d", i), State: At(st, ts(i+1))}}})
	}
	data, _, err := s.Snapshot()
	require.NoError(t, err)
	s2, _ := newStore(Limits{MaxBuilds: 2})
	require.NoError(t, s2.Load(data))
	assert.Equal(t, 3, s2.LoadTrimmed())
	var ids []string
	for _, b := range s2.Builds(BuildFilter{}) {
		ids = append(ids, b.ID)
	}
	assert.Equal(t, []string{"b3", "b4"}, ids, "the running builds stay, finished ones go first")
}

func TestPayloadLimit(t *testing.T) {
	assert.Zero(t, PayloadLimit(0))
	assert.Equal(t, int64(4<<20+10000*(9<<10+512)), PayloadLimit(10000))
	// A typical state of max_builds builds fits well within it.
	s, _ := newStore(Limits{MaxBuilds: 1000})
	var batch Batch
	for i := range 1000 {
		batch.Builds = append(batch.Builds, BuildObservation{
			ID: fmt.Sprintf("build-%06d", i), Resource: Resource{Pipeline: "pipeline", Host: fmt.Sprintf("host-%d", i)},
			State: At(BuildRunning, ts(1)),
			Phases: []PhaseObservation{phaseObs("INIT", PhaseCompleted, 1, 1, 1), phaseObs("SETUP", PhaseCompleted, 1, 1, 1),
				phaseObs("BUILD", PhaseRunning, 1, 4, 1), phaseObs("TEST", PhasePending, 0, 2, 1), phaseObs("CLEANUP", PhasePending, 0, 1, 1)},
		})
		batch.Hosts = append(batch.Hosts, HostObservation{Name: fmt.Sprintf("host-%d", i), CPU: At(0.5, ts(1)), MemUtil: At(0.5, ts(1))})
	}
	s.Apply(batch)
	data, _, err := s.Snapshot()
	require.NoError(t, err)
	assert.Less(t, int64(len(data))*3, PayloadLimit(1000)-payloadBase, "%d bytes", len(data))
}
