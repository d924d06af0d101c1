package state

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func host0(m map[string]any) map[string]any { return m["hosts"].([]any)[0].(map[string]any) }

func phase0(m map[string]any) map[string]any {
	return build0(m)["phases"].([]any)[0].(map[string]any)
}

func manyOf(n int, item func(i int) any) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = item(i)
	}
	return out
}

// Each bound Load checks that TestLoadRejectsWhatApplyCannotHold does not: alerts, issues and
// dropped issue keys of builds, phases and hosts, duplicate phases and hosts, report fields.
func TestLoadRejectsMoreBounds(t *testing.T) {
	long := strings.Repeat("a", MaxNameBytes+1)
	alert := func(i int) any {
		return map[string]any{"rule": fmt.Sprintf("r%d", i), "level": "ERROR", "state": AlertFiring}
	}
	issue := func(int) any { return map[string]any{"kind": IssueAlert} }
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"too many build alerts", func(m map[string]any) { build0(m)["alerts"] = manyOf(MaxAlerts+1, alert) }, "builds[0]: 257 alerts"},
		{"alert without rule", func(m map[string]any) {
			build0(m)["alerts"] = []any{map[string]any{"rule": "", "level": "ERROR"}}
		}, "builds[0].alerts[0].rule is empty"},
		{"alert with long rule", func(m map[string]any) {
			build0(m)["alerts"] = []any{alert(0), map[string]any{"rule": long}}
		}, "builds[0].alerts[1].rule of 257 bytes"},
		{"alert with long level", func(m map[string]any) {
			build0(m)["alerts"] = []any{map[string]any{"rule": "r", "level": long}}
		}, "builds[0].alerts[0]: level or state longer than 256"},
		{"alert with long state", func(m map[string]any) {
			build0(m)["alerts"] = []any{map[string]any{"rule": "r", "state": long}}
		}, "builds[0].alerts[0]: level or state"},
		{"too many host alerts", func(m map[string]any) { host0(m)["alerts"] = manyOf(MaxAlerts+1, alert) }, "hosts[0]: 257 alerts"},
		{"host alert without rule", func(m map[string]any) {
			host0(m)["alerts"] = []any{map[string]any{"rule": ""}}
		}, "hosts[0].alerts[0].rule is empty"},
		{"duplicate host", func(m map[string]any) { m["hosts"] = append(m["hosts"].([]any), host0(m)) }, `hosts[1]: host "h" appears twice`},
		{"empty host name", func(m map[string]any) { host0(m)["name"] = "" }, "hosts[0].name is empty"},
		{"long mount point", func(m map[string]any) { host0(m)["fs_mount"] = strings.Repeat("/", MaxTextBytes+1) }, "hosts[0].fs_mount of 1025 bytes"},
		{"empty build id", func(m map[string]any) { build0(m)["id"] = "" }, "builds[0].id is empty"},
		{"long worker", func(m map[string]any) { build0(m)["worker"] = strings.Repeat("w", MaxTextBytes+1) }, "builds[0].worker"},
		{"long revision", func(m map[string]any) { build0(m)["revision"] = strings.Repeat("r", MaxTextBytes+1) }, "builds[0].revision"},
		{"duplicate phase", func(m map[string]any) {
			build0(m)["phases"] = append(build0(m)["phases"].([]any), phase0(m))
		}, `builds[0].phases[1]: phase "INIT" appears twice`},
		{"long phase name", func(m map[string]any) { phase0(m)["name"] = long }, "builds[0].phases[0].name of 257 bytes"},
		{"too many phase issues", func(m map[string]any) {
			phase0(m)["issues"] = manyOf(maxPhaseIssues+1, issue)
		}, "builds[0].phases[0]: 33 issues, more than 32"},
		{"phase issue with long rule", func(m map[string]any) {
			phase0(m)["issues"] = []any{map[string]any{"kind": IssueAlert, "rule": long}}
		}, "builds[0].phases[0].issues[0]: a field longer than 256"},
		{"build issue with long level", func(m map[string]any) {
			build0(m)["issues"] = []any{issue(0), map[string]any{"kind": IssueAlert, "level": long}}
		}, "builds[0].issues[1]: a field"},
		{"negative dropped count", func(m map[string]any) { build0(m)["issues_dropped"] = -1 }, "builds[0]: 0 dropped issue keys"},
		{"too many dropped keys", func(m map[string]any) {
			build0(m)["dropped_issue_keys"] = manyOf(maxDroppedKeys+1, func(i int) any { return fmt.Sprint(i) })
		}, "builds[0]: 257 dropped issue keys, more than 256"},
		{"long dropped key", func(m map[string]any) {
			phase0(m)["dropped_issue_keys"] = []any{"k", strings.Repeat("k", 5*(MaxNameBytes+1)+1)}
		}, "builds[0].phases[0].dropped_issue_keys[1] of 1286 bytes"},
		{"build report file with a slash", func(m map[string]any) {
			build0(m)["report"] = map[string]any{"file": "x/build.json"}
		}, "builds[0].report.file"},
		{"dot file report", func(m map[string]any) { build0(m)["report"] = map[string]any{"file": ".hidden"} }, "builds[0].report.file"},
		{"negative report bytes", func(m map[string]any) {
			build0(m)["report"] = map[string]any{"file": "build.json", "bytes": -5}
		}, "builds[0].report.bytes is negative"},
		{"empty tombstone key", func(m map[string]any) { m["tombstones"] = map[string]any{"": map[string]any{}} }, "tombstones key is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(Limits{})
			s.Apply(Batch{Builds: []BuildObservation{{ID: "kept", State: At(BuildRunning, ts(1))}}})
			err := s.Load(payloadWith(t, tc.edit))
			require.ErrorIs(t, err, errInvalid)
			assert.ErrorContains(t, err, tc.want)
			_, ok := s.BuildStatus("kept")
			assert.True(t, ok, "a rejected checkpoint leaves the state as it was")
		})
	}
}

// What Load accepts at the bounds: exactly MaxAlerts alerts, the issue limits, maxDroppedKeys
// keys, file names of 255 characters.
func TestLoadAcceptsTheBounds(t *testing.T) {
	alert := func(i int) any { return map[string]any{"rule": fmt.Sprintf("r%03d", i), "state": AlertPending} }
	issue := func(i int) any { return map[string]any{"kind": IssueAlert, "rule": fmt.Sprint(i)} }
	for _, tc := range []struct {
		name  string
		edit  func(m map[string]any)
		check func(t *testing.T, s *Store)
	}{
		{"max alerts", func(m map[string]any) { build0(m)["alerts"] = manyOf(MaxAlerts, alert) }, func(t *testing.T, s *Store) {
			st, _ := s.BuildStatus("b")
			assert.Len(t, st.Alerts, MaxAlerts)
		}},
		{"max issues", func(m map[string]any) {
			build0(m)["issues"] = manyOf(maxBuildIssues, issue)
			phase0(m)["issues"] = manyOf(maxPhaseIssues, issue)
		}, func(t *testing.T, s *Store) {
			b, _ := s.BuildCopy("b")
			assert.Len(t, b.Issues, maxBuildIssues)
			assert.Len(t, b.Phases[0].Issues, maxPhaseIssues)
		}},
		{"max dropped keys", func(m map[string]any) {
			build0(m)["dropped_issue_keys"] = manyOf(maxDroppedKeys, func(i int) any { return fmt.Sprint(i) })
			build0(m)["issues_dropped"] = 300
		}, func(t *testing.T, s *Store) {
			b, _ := s.BuildCopy("b")
			assert.Len(t, b.DroppedIssueKeys, maxDroppedKeys)
			assert.Equal(t, 300, b.IssuesDropped)
		}},
		{"long file names", func(m map[string]any) {
			build0(m)["report_dir"] = strings.Repeat("d", 255)
			build0(m)["report"] = map[string]any{"file": "x_1.-" + strings.Repeat("f", 250), "written": 1, "version": 1}
		}, func(t *testing.T, s *Store) {
			dir, file, written, known := s.ReportLocation("b", "")
			assert.True(t, known)
			assert.True(t, written)
			assert.Equal(t, strings.Repeat("d", 255), dir)
			assert.Len(t, file, 255)
		}},
		{"null entries are skipped", func(m map[string]any) {
			build0(m)["phases"] = append([]any{nil}, build0(m)["phases"].([]any)...)
			build0(m)["alerts"] = []any{nil, alert(0)}
			host0(m)["alerts"] = []any{alert(1), nil}
			m["builds"] = append([]any{nil}, m["builds"].([]any)...)
			m["hosts"] = append(m["hosts"].([]any), nil)
		}, func(t *testing.T, s *Store) {
			assert.Equal(t, 1, s.Len())
			b, _ := s.BuildCopy("b")
			require.Len(t, b.Phases, 1)
			assert.Equal(t, "INIT", b.Phases[0].Name)
			require.Len(t, b.Alerts, 1)
			assert.Equal(t, "r000", b.Alerts[0].Rule)
			hs := s.Hosts()
			require.Len(t, hs, 1)
			require.Len(t, hs[0].Alerts, 1)
			assert.Equal(t, "r001", hs[0].Alerts[0].Rule)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(Limits{})
			require.NoError(t, s.Load(payloadWith(t, tc.edit)))
			tc.check(t, s)
		})
	}
}

// Load replaces the state: builds, hosts, tombstones, due reports and the report bytes held
// before it are gone, and a load makes no checkpoint due.
func TestLoadReplacesEverything(t *testing.T) {
	src, _ := newStore(Limits{})
	src.Apply(Batch{Builds: []BuildObservation{{ID: "new", Resource: Resource{Host: "h2"}, State: At(BuildRunning, ts(1))}},
		Hosts: []HostObservation{{Name: "h2", CPU: At(0.2, ts(1))}}})
	data, _, err := src.Snapshot()
	require.NoError(t, err)

	s, c := newStore(Limits{MaxReportsBytes: 10, FinishedRetention: time.Hour})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "old", Resource: Resource{Host: "h1"}, State: At(BuildFinished, ts(1))}},
		Hosts: []HostObservation{{Name: "h1", CPU: At(0.1, ts(1))}}})
	jobs := s.DueReports()
	require.Len(t, jobs, 1)
	s.ReportWritten(jobs[0], 100)
	require.True(t, s.Dirty())

	require.NoError(t, s.Load(data))
	assert.False(t, s.Dirty())
	assert.Zero(t, s.LoadTrimmed())
	_, ok := s.BuildStatus("old")
	assert.False(t, ok)
	_, ok = s.Host("h1")
	assert.False(t, ok)
	hs, ok := s.Host("h2")
	require.True(t, ok)
	assert.Equal(t, []string{"new"}, hs.Builds, "the running index is rebuilt")
	assert.Empty(t, s.DueReports())
	// The 100 report bytes of "old" went with it: nothing is over MaxReportsBytes.
	c.Advance(time.Minute)
	assert.Empty(t, s.Expire().Removed)
}

// A build whose report was due but not written when the checkpoint was taken is due again
// after Load, with the folder and file it was given.
func TestLoadKeepsDueReports(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{phaseObs("INIT", PhaseCompleted, 1, 1, 1)}}}})
	jobs := s.DueReports()
	require.Len(t, jobs, 1)
	data, _, err := s.Snapshot()
	require.NoError(t, err)

	s2, _ := newStore(Limits{})
	require.NoError(t, s2.Load(data))
	again := s2.DueReports()
	require.Len(t, again, 1)
	assert.Equal(t, jobs[0].Dir, again[0].Dir)
	assert.Equal(t, jobs[0].File, again[0].File)
	assert.Equal(t, jobs[0].Version, again[0].Version)
	assert.False(t, s2.Dirty(), "names given before the checkpoint are not given again")
}

// Trimming a checkpoint written with a larger max_builds drops the hosts observed longest ago
// and the oldest tombstones as well as builds.
func TestLoadTrimsHostsAndTombstones(t *testing.T) {
	s, c := newStore(Limits{})
	for i := range 4 {
		c.Advance(time.Second)
		s.Apply(Batch{Hosts: []HostObservation{{Name: fmt.Sprintf("h%d", i), CPU: At(0.1, ts(i+1))}}})
	}
	data, _, err := s.Snapshot()
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m))
	m["builds"] = []any{}
	m["tombstones"] = map[string]any{
		"t-old":    map[string]any{"updated_at": ts(1), "removed_at": ts(10)},
		"t-mid":    map[string]any{"updated_at": ts(1), "removed_at": ts(20)},
		"t-new":    map[string]any{"updated_at": ts(1), "removed_at": ts(30)},
		"t-newest": map[string]any{"updated_at": ts(1), "removed_at": ts(40)},
	}
	payload, err := json.Marshal(m)
	require.NoError(t, err)

	s2, _ := newStore(Limits{MaxBuilds: 2})
	require.NoError(t, s2.Load(payload))
	assert.Equal(t, 4, s2.LoadTrimmed(), "two hosts and two tombstones")
	var names []string
	for _, h := range s2.Hosts() {
		names = append(names, h.Name)
	}
	assert.Equal(t, []string{"h2", "h3"}, names, "the hosts observed last stay")
	// The kept tombstones still hold back late data of their builds; the dropped ones do not.
	s2.Apply(Batch{Builds: []BuildObservation{
		{ID: "t-old", State: At(BuildRunning, ts(1))},
		{ID: "t-newest", State: At(BuildRunning, ts(1))},
	}})
	_, ok := s2.BuildStatus("t-old")
	assert.True(t, ok, "its tombstone was trimmed")
	_, ok = s2.BuildStatus("t-newest")
	assert.False(t, ok, "its tombstone was kept")
}

func TestLoadRejectsMalformedPayloads(t *testing.T) {
	for _, tc := range []struct {
		name, payload, want string
	}{
		{"not JSON", `checkpoint`, "decoding checkpoint payload"},
		{"no format", `{"builds":[]}`, "format 0, this version reads 1"},
		{"wrong type", `{"format":1,"builds":{}}`, "decoding checkpoint payload"},
		{"wrong field type", `{"format":1,"builds":[{"id":7}]}`, "decoding checkpoint payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(Limits{})
			assert.ErrorContains(t, s.Load([]byte(tc.payload)), tc.want)
		})
	}
	s, _ := newStore(Limits{})
	require.NoError(t, s.Load([]byte(`{"format":1}`)), "an empty state loads")
	assert.Zero(t, s.Len())
	assert.Empty(t, s.Hosts())
}
