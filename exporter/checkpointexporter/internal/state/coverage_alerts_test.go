package state

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wantChange is what the alert table expects of one AlertChange.
type wantChange struct {
	level    string
	resolved bool
}

func changesOf(cs []AlertChange) []wantChange {
	out := []wantChange{}
	for _, c := range cs {
		out = append(out, wantChange{c.Level, c.Resolved})
	}
	return out
}

// The alert reduction of a build, step by step: which observations change an alert, which
// changes notifiers get, and what the build's status shows after the last step.
func TestBuildAlertTransitions(t *testing.T) {
	firing := func(level string, at int, v float64) AlertObservation {
		return AlertObservation{Rule: "mem", Level: level, State: AlertFiring, Active: true, Value: v, HasValue: true, TS: ts(at)}
	}
	type step struct {
		obs     []AlertObservation
		changes []wantChange
		ignored int
	}
	for _, tc := range []struct {
		name  string
		steps []step
		// want is the build's alerts after the last step as rule/level/state.
		want  []string
		value float64
	}{
		{
			name: "an older observation is ignored",
			steps: []step{
				{obs: []AlertObservation{firing("ERROR", 5, 0.9)}, changes: []wantChange{{"ERROR", false}}},
				{obs: []AlertObservation{firing("CRITICAL", 3, 0.99)}, changes: []wantChange{}},
			},
			want: []string{"mem/ERROR/firing"}, value: 0.9,
		},
		{
			name: "the same observation again changes nothing",
			steps: []step{
				{obs: []AlertObservation{firing("ERROR", 5, 0.9)}, changes: []wantChange{{"ERROR", false}}},
				{obs: []AlertObservation{firing("ERROR", 5, 0.9)}, changes: []wantChange{}},
			},
			want: []string{"mem/ERROR/firing"}, value: 0.9,
		},
		{
			name: "firing back to pending resolves",
			steps: []step{
				{obs: []AlertObservation{firing("ERROR", 1, 0.9)}, changes: []wantChange{{"ERROR", false}}},
				{obs: []AlertObservation{{Rule: "mem", Level: "ERROR", State: AlertPending, Active: true, TS: ts(2)}}, changes: []wantChange{{"ERROR", true}}},
			},
			want: []string{"mem/ERROR/pending"}, value: 0.9,
		},
		{
			name: "a pending level change notifies nothing",
			steps: []step{
				{obs: []AlertObservation{{Rule: "mem", Level: "ERROR", State: AlertPending, Active: true, TS: ts(1)}}, changes: []wantChange{}},
				{obs: []AlertObservation{{Rule: "mem", Level: "CRITICAL", State: AlertPending, Active: true, TS: ts(2)}}, changes: []wantChange{}},
			},
			want: []string{"mem/CRITICAL/pending"},
		},
		{
			name: "a value alone changes no notification",
			steps: []step{
				{obs: []AlertObservation{firing("ERROR", 1, 0.9)}, changes: []wantChange{{"ERROR", false}}},
				{obs: []AlertObservation{firing("ERROR", 2, 0.95)}, changes: []wantChange{}},
			},
			want: []string{"mem/ERROR/firing"}, value: 0.95,
		},
		{
			name: "an observation without a value keeps the value",
			steps: []step{
				{obs: []AlertObservation{firing("ERROR", 1, 0.9)}, changes: []wantChange{{"ERROR", false}}},
				{obs: []AlertObservation{{Rule: "mem", Level: "ERROR", State: AlertFiring, Active: true, TS: ts(2)}}, changes: []wantChange{}},
			},
			want: []string{"mem/ERROR/firing"}, value: 0.9,
		},
		{
			name: "a 0 older than the alert does not clear it",
			steps: []step{
				{obs: []AlertObservation{firing("ERROR", 5, 0.9)}, changes: []wantChange{{"ERROR", false}}},
				{obs: []AlertObservation{{Rule: "mem", Level: "ERROR", State: AlertFiring, TS: ts(4)}}, changes: []wantChange{}},
			},
			want: []string{"mem/ERROR/firing"}, value: 0.9,
		},
		{
			name: "a 0 without level or state clears any series",
			steps: []step{
				{obs: []AlertObservation{firing("ERROR", 1, 0.9)}, changes: []wantChange{{"ERROR", false}}},
				{obs: []AlertObservation{{Rule: "mem", TS: ts(2)}}, changes: []wantChange{{"ERROR", true}}},
			},
			want: []string{},
		},
		{
			name: "a 0 of a pending alert clears it silently",
			steps: []step{
				{obs: []AlertObservation{{Rule: "mem", Level: "ERROR", State: AlertPending, Active: true, TS: ts(1)}}, changes: []wantChange{}},
				{obs: []AlertObservation{{Rule: "mem", Level: "ERROR", State: AlertPending, TS: ts(2)}}, changes: []wantChange{}},
			},
			want: []string{},
		},
		{
			name: "a 0 of an unknown rule is nothing",
			steps: []step{
				{obs: []AlertObservation{{Rule: "disk", Level: "ERROR", State: AlertFiring, TS: ts(2)}}, changes: []wantChange{}},
			},
			want: []string{},
		},
		{
			name: "an alert without rule is skipped, one with long names ignored",
			steps: []step{
				{obs: []AlertObservation{
					{Level: "ERROR", State: AlertFiring, Active: true, TS: ts(1)},
					{Rule: "mem", Level: strings.Repeat("L", MaxNameBytes+1), State: AlertFiring, Active: true, TS: ts(1)},
					{Rule: "mem", Level: "ERROR", State: strings.Repeat("S", MaxNameBytes+1), Active: true, TS: ts(1)},
					{Rule: strings.Repeat("r", MaxNameBytes+1), Active: true, TS: ts(1)},
				}, changes: []wantChange{}, ignored: 3},
			},
			want: []string{},
		},
		{
			name: "two levels in one batch: the 0 of the old one and the 1 of the new one",
			steps: []step{
				{obs: []AlertObservation{firing("ERROR", 1, 0.9)}, changes: []wantChange{{"ERROR", false}}},
				{obs: []AlertObservation{
					{Rule: "mem", Level: "ERROR", State: AlertFiring, TS: ts(2)},
					firing("CRITICAL", 2, 0.99),
				}, changes: []wantChange{{"ERROR", true}, {"CRITICAL", false}}},
			},
			want: []string{"mem/CRITICAL/firing"}, value: 0.99,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(Limits{})
			for i, st := range tc.steps {
				res := s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Alerts: st.obs}}})
				assert.Equal(t, st.changes, changesOf(res.Changes), "step %d", i)
				assert.Equal(t, st.ignored, res.Ignored, "step %d", i)
			}
			b, ok := s.BuildCopy("b")
			require.True(t, ok)
			got := []string{}
			for _, a := range b.Alerts {
				got = append(got, a.Rule+"/"+a.Level+"/"+a.State)
			}
			assert.Equal(t, tc.want, got)
			if len(b.Alerts) == 1 && tc.value != 0 {
				assert.Equal(t, tc.value, b.Alerts[0].Value)
			}
		})
	}
}

// A complete alert snapshot clears a pending alert it lacks without notifying, and keeps the
// alerts it lists; build alerts are kept sorted by rule.
func TestAlertSnapshotClearsPendingSilently(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", AlertsComplete: true, AlertsAt: ts(1), Alerts: []AlertObservation{
		{Rule: "zeta", Level: "ERROR", State: AlertFiring, Active: true, TS: ts(1)},
		{Rule: "alpha", Level: "ERROR", State: AlertPending, Active: true, TS: ts(1)},
		{Rule: "mid", Level: "ERROR", State: AlertPending, Active: true, TS: ts(1)},
	}}}})
	st, _ := s.BuildStatus("b")
	var rules []string
	for _, a := range st.Alerts {
		rules = append(rules, a.Rule)
	}
	assert.Equal(t, []string{"alpha", "mid", "zeta"}, rules)

	_, v, err := s.Snapshot()
	require.NoError(t, err)
	s.MarkWritten(v)
	res := s.Apply(Batch{Builds: []BuildObservation{{ID: "b", AlertsComplete: true, AlertsAt: ts(2), Alerts: []AlertObservation{
		{Rule: "zeta", Level: "ERROR", State: AlertFiring, Active: true, TS: ts(2)},
	}}}})
	assert.Empty(t, res.Changes, "pending alerts end without a notification")
	assert.True(t, s.Dirty(), "but the state changed")
	st, _ = s.BuildStatus("b")
	require.Len(t, st.Alerts, 1)
	assert.Equal(t, "zeta", st.Alerts[0].Rule)
	assert.Equal(t, FormatTime(ts(1)), st.Alerts[0].Since)
}

// FiringAlerts after a restore of a checkpoint written before level_since existed: the
// change starts at the alert's since.
func TestFiringAlertsWithoutLevelSince(t *testing.T) {
	payload := payloadWith(t, func(m map[string]any) {
		build0(m)["alerts"] = []any{map[string]any{"rule": "mem", "level": "ERROR", "state": AlertFiring, "since": ts(3), "updated_at": ts(4)}}
		build0(m)["pipeline"] = "p"
		host0(m)["alerts"] = []any{map[string]any{"rule": "cpu", "level": "CRITICAL", "state": AlertFiring, "since": ts(5), "level_since": ts(6), "updated_at": ts(7)}}
	})
	s, _ := newStore(Limits{})
	require.NoError(t, s.Load(payload))
	got := s.FiringAlerts()
	require.Len(t, got, 2)
	if got[0].Scope != ScopeBuild {
		got[0], got[1] = got[1], got[0]
	}
	assert.Equal(t, AlertChange{Scope: ScopeBuild, BuildID: "b", Pipeline: "p", Host: "h", Rule: "mem", Level: "ERROR", Since: ts(3), At: ts(4)}, got[0])
	assert.Equal(t, AlertChange{Scope: ScopeHost, Host: "h", Rule: "cpu", Level: "CRITICAL", Since: ts(6), At: ts(7)}, got[1])
}

// Issues: which alerts become issues of a build and its phases, and how they merge.
func TestIssuesOfBuildsAndPhases(t *testing.T) {
	s, _ := newStore(Limits{})
	// The host's alert fires before the build arrives on the host.
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h", Alerts: []AlertObservation{
		{Rule: "cpu", Level: "ERROR", State: AlertFiring, Active: true, Value: 0.95, HasValue: true, TS: ts(1)},
		{Rule: "disk", Level: "ERROR", State: AlertPending, Active: true, TS: ts(1)},
	}}}})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Resource: Resource{Host: "h"}, Phases: []PhaseObservation{
		phaseObs("INIT", PhaseCompleted, 1, 1, 2), phaseObs("BUILD", PhaseRunning, 0, 4, 2), phaseObs("TEST", PhasePending, 0, 2, 2),
	}}}})
	b, _ := s.BuildCopy("b")
	require.Len(t, b.Issues, 1, "a pending alert is no issue")
	assert.Equal(t, Issue{Kind: IssueAlert, Scope: ScopeHost, Rule: "cpu", Level: "ERROR", MaxValue: 0.95, FirstSeen: ts(1), LastSeen: ts(1)}, b.Issues[0])
	assert.Empty(t, b.Phases[0].Issues, "an ended phase gets no new issues")
	require.Len(t, b.Phases[1].Issues, 1, "the running phase gets it")
	assert.Equal(t, "BUILD", b.Phases[1].Issues[0].Phase)
	assert.Empty(t, b.Phases[2].Issues, "a pending phase gets none")

	// The same alert again with a higher value merges into the one issue.
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h", Alerts: []AlertObservation{
		{Rule: "cpu", Level: "ERROR", State: AlertFiring, Active: true, Value: 0.99, HasValue: true, TS: ts(5)},
	}}}})
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h", Alerts: []AlertObservation{
		{Rule: "cpu", Level: "ERROR", State: AlertFiring, Active: true, Value: 0.91, HasValue: true, TS: ts(6)},
	}}}})
	b, _ = s.BuildCopy("b")
	require.Len(t, b.Issues, 1)
	assert.Equal(t, 0.99, b.Issues[0].MaxValue, "the highest value is kept")
	assert.Equal(t, ts(1), b.Issues[0].FirstSeen)
	assert.Equal(t, ts(6), b.Issues[0].LastSeen)

	// A new level is a new issue; once the build finished its host's alerts are not its issues.
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Alerts: []AlertObservation{
		{Rule: "mem", Level: "CRITICAL", State: AlertFiring, Active: true, TS: ts(7)},
	}}}})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", State: At(BuildFinished, ts(8))}}})
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h", Alerts: []AlertObservation{
		{Rule: "net", Level: "ERROR", State: AlertFiring, Active: true, TS: ts(9)},
	}}}})
	b, _ = s.BuildCopy("b")
	var keys []string
	for _, is := range b.Issues {
		keys = append(keys, is.Scope+"/"+is.Rule+"/"+is.Level)
	}
	assert.Equal(t, []string{"host/cpu/ERROR", "build/mem/CRITICAL"}, keys)
}

// Past the limit each distinct issue is counted once, however often it fires again.
func TestDroppedIssuesCountOnce(t *testing.T) {
	s, _ := newStore(Limits{})
	fire := func(rule, level string, at int) {
		s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Alerts: []AlertObservation{
			{Rule: rule, Level: level, State: AlertFiring, Active: true, TS: ts(at)},
		}}}})
	}
	for i := range maxBuildIssues {
		fire("r"+strings.Repeat("x", i), "ERROR", i+1)
	}
	at := maxBuildIssues + 1
	for _, tc := range []struct {
		rule, level string
		dropped     int
	}{
		{"late", "ERROR", 1},
		{"late", "ERROR", 1},
		{"late", "CRITICAL", 2},
		{"late", "ERROR", 2},
		{"r", "ERROR", 2}, // merges into an issue that fit
		{"other", "ERROR", 3},
	} {
		at++
		fire(tc.rule, tc.level, at)
		b, _ := s.BuildCopy("b")
		assert.Equal(t, tc.dropped, b.IssuesDropped, "%s/%s at %d", tc.rule, tc.level, at)
		assert.Len(t, b.Issues, maxBuildIssues)
		assert.Len(t, b.DroppedIssueKeys, tc.dropped)
	}
}

// A phase keeps at most maxPhaseIssues issues; its build keeps more.
func TestPhaseIssuesAreBounded(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{phaseObs("BUILD", PhaseRunning, 0, 1, 1)}}}})
	n := maxPhaseIssues + 5
	for i := range n {
		s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Alerts: []AlertObservation{
			{Rule: "r" + strings.Repeat("x", i), Level: "ERROR", State: AlertFiring, Active: true, TS: ts(i + 2)},
		}}}})
	}
	b, _ := s.BuildCopy("b")
	assert.Len(t, b.Issues, n)
	assert.Zero(t, b.IssuesDropped)
	assert.Len(t, b.Phases[0].Issues, maxPhaseIssues)
	assert.Equal(t, 5, b.Phases[0].IssuesDropped)
}

// A host alert stays active as long as it is reported again with a timestamp that is not
// older than its own; an older report does not refresh it.
func TestHostAlertRefresh(t *testing.T) {
	for _, tc := range []struct {
		name      string
		refreshAt int
		resolved  bool
	}{
		{"same timestamp refreshes", 1, false},
		{"newer timestamp refreshes", 8, false},
		{"older timestamp does not refresh", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := newStore(Limits{AlertStaleAfter: 15 * time.Second})
			alert := func(at int) []AlertObservation {
				return []AlertObservation{{Rule: "cpu", Level: "ERROR", State: AlertFiring, Active: true, TS: ts(at)}}
			}
			s.Apply(Batch{Hosts: []HostObservation{{Name: "h", Alerts: alert(1)}}})
			c.Advance(10 * time.Second)
			s.Apply(Batch{Hosts: []HostObservation{{Name: "h", Alerts: alert(tc.refreshAt)}}})
			c.Advance(10 * time.Second)
			exp := s.Expire()
			hs, _ := s.Host("h")
			if tc.resolved {
				require.Len(t, exp.Changes, 1)
				assert.True(t, exp.Changes[0].Resolved)
				assert.Equal(t, c.Now().UnixNano(), exp.Changes[0].At)
				assert.Empty(t, hs.Alerts)
			} else {
				assert.Empty(t, exp.Changes)
				assert.Len(t, hs.Alerts, 1)
			}
		})
	}
}

// Alerts of a finished build go stale like host alerts; those of a running build do not
// (the processor reports them with every batch).
func TestStaleAlertsOfFinishedBuilds(t *testing.T) {
	s, c := newStore(Limits{AlertStaleAfter: 15 * time.Second})
	alerts := []AlertObservation{{Rule: "mem", Level: "ERROR", State: AlertFiring, Active: true, TS: ts(1)}}
	s.Apply(Batch{Builds: []BuildObservation{
		{ID: "running", Alerts: alerts},
		{ID: "done", State: At(BuildFinished, ts(1)), Alerts: alerts},
	}})
	_, v, err := s.Snapshot()
	require.NoError(t, err)
	s.MarkWritten(v)
	c.Advance(20 * time.Second)
	exp := s.Expire()
	require.Len(t, exp.Changes, 1)
	assert.Equal(t, "done", exp.Changes[0].BuildID)
	assert.True(t, exp.Changes[0].Resolved)
	assert.True(t, s.Dirty())
	st, _ := s.BuildStatus("running")
	assert.Len(t, st.Alerts, 1)
	st, _ = s.BuildStatus("done")
	assert.Empty(t, st.Alerts)
}
