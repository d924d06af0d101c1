package state

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The alert series semantics: a 0 ends only the series it names.
func TestAlertZeroEndsOnlyItsSeries(t *testing.T) {
	tests := []struct {
		name string
		// second is applied in a later batch than the firing ERROR alert.
		second      []AlertObservation
		wantAlerts  int
		wantLevel   string
		wantChanges int
	}{
		{name: "0 of the current series clears it", second: []AlertObservation{alertObs("cpu", "ERROR", AlertFiring, false, 2)}, wantAlerts: 0, wantChanges: 1},
		{name: "0 of an older level in a later batch changes nothing", second: []AlertObservation{alertObs("cpu", "WARNING", AlertPending, false, 2)}, wantAlerts: 1, wantLevel: "ERROR"},
		{name: "0 of the same level but another state changes nothing", second: []AlertObservation{alertObs("cpu", "ERROR", AlertPending, false, 2)}, wantAlerts: 1, wantLevel: "ERROR"},
		{name: "0 without level or state names any series", second: []AlertObservation{{Rule: "cpu", TS: ts(2)}}, wantAlerts: 0, wantChanges: 1},
		{name: "0 older than the alert changes nothing", second: []AlertObservation{alertObs("cpu", "ERROR", AlertFiring, false, 0)}, wantAlerts: 1, wantLevel: "ERROR"},
		{name: "1 of a new level, then 0 of the old one", second: []AlertObservation{
			alertObs("cpu", "CRITICAL", AlertFiring, true, 2), alertObs("cpu", "ERROR", AlertFiring, false, 2),
		}, wantAlerts: 1, wantLevel: "CRITICAL", wantChanges: 2},
		{name: "0 of the old level, then 1 of a new one", second: []AlertObservation{
			alertObs("cpu", "ERROR", AlertFiring, false, 2), alertObs("cpu", "CRITICAL", AlertFiring, true, 2),
		}, wantAlerts: 1, wantLevel: "CRITICAL", wantChanges: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(Limits{})
			res := s.Apply(Batch{Hosts: []HostObservation{{Name: "h", Alerts: []AlertObservation{alertObs("cpu", "ERROR", AlertFiring, true, 1)}}}})
			require.Len(t, res.Changes, 1)
			res = s.Apply(Batch{Hosts: []HostObservation{{Name: "h", Alerts: tt.second}}})
			assert.Len(t, res.Changes, tt.wantChanges)
			hs, ok := s.Host("h")
			require.True(t, ok)
			require.Len(t, hs.Alerts, tt.wantAlerts)
			if tt.wantAlerts > 0 {
				assert.Equal(t, tt.wantLevel, hs.Alerts[0].Level)
			}
		})
	}
}

// The processor's pending → firing of one level keeps the time the alert became active.
func TestAlertPendingToFiringKeepsSince(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Alerts: []AlertObservation{alertObs("slow", "WARNING", AlertPending, true, 1)}}}})
	res := s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Alerts: []AlertObservation{
		alertObs("slow", "WARNING", AlertFiring, true, 3), alertObs("slow", "WARNING", AlertPending, false, 3),
	}}}})
	require.Len(t, res.Changes, 1)
	assert.False(t, res.Changes[0].Resolved)
	st, _ := s.BuildStatus("b")
	require.Len(t, st.Alerts, 1)
	assert.Equal(t, AlertFiring, st.Alerts[0].State)
	assert.Equal(t, FormatTime(ts(1)), st.Alerts[0].Since)
}

// Start times are the receiver's build.start_time and build.phase.start_time, never end minus
// duration.
func TestStartTimesComeFromTheReceiver(t *testing.T) {
	sec := func(s int) float64 { return float64(ts(s)) / 1e9 }
	tests := []struct {
		name           string
		obs            BuildObservation
		wantBuildStart string
		wantPhaseStart string
		wantPhaseEnd   string
	}{
		{
			name: "phase only seen ended has no inferred start",
			obs: BuildObservation{ID: "b", Duration: At(10.0, ts(10)), Phases: []PhaseObservation{
				{Name: "INIT", State: At(PhaseCompleted, ts(10)), Duration: At(5.0, ts(10))},
			}},
			wantPhaseEnd: FormatTime(ts(10)),
		},
		{
			name: "receiver start times",
			obs: BuildObservation{ID: "b", Start: At(sec(0), ts(10)), Phases: []PhaseObservation{
				{Name: "INIT", State: At(PhaseCompleted, ts(10)), Duration: At(5.0, ts(10)), Start: At(sec(2), ts(10))},
			}},
			wantBuildStart: FormatTime(ts(0)),
			wantPhaseStart: FormatTime(ts(2)),
			wantPhaseEnd:   FormatTime(ts(10)),
		},
		{
			name: "fractions of a second are kept to the microsecond",
			obs: BuildObservation{ID: "b", Start: At(sec(0)+0.123456, ts(10)), Phases: []PhaseObservation{
				{Name: "BUILD", State: At(PhaseRunning, ts(10)), Start: At(sec(1)+0.5, ts(10))},
			}},
			wantBuildStart: FormatTime(ts(0) + 123456*int64(time.Microsecond)),
			wantPhaseStart: FormatTime(ts(1) + int64(500*time.Millisecond)),
		},
		{
			name: "a start that is not a time is left out",
			obs: BuildObservation{ID: "b", Start: At(-1.0, ts(10)), Phases: []PhaseObservation{
				{Name: "BUILD", State: At(PhaseRunning, ts(10)), Start: At(1e300, ts(10))},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(Limits{})
			s.Apply(Batch{Builds: []BuildObservation{tt.obs}})
			st, ok := s.BuildStatus("b")
			require.True(t, ok)
			assert.Equal(t, tt.wantBuildStart, st.StartedAt)
			require.Len(t, st.Phases, 1)
			assert.Equal(t, tt.wantPhaseStart, st.Phases[0].StartedAt)
			assert.Equal(t, tt.wantPhaseEnd, st.Phases[0].EndedAt)
		})
	}
}

// A newer start time replaces an older one (field by field, as every field).
func TestStartTimeNewerWins(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Start: At(float64(ts(5))/1e9, ts(5))}}})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Start: At(float64(ts(1))/1e9, ts(3))}}})
	st, _ := s.BuildStatus("b")
	assert.Equal(t, FormatTime(ts(5)), st.StartedAt, "an older point does not win")
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b", Start: At(float64(ts(1))/1e9, ts(6))}}})
	st, _ = s.BuildStatus("b")
	assert.Equal(t, FormatTime(ts(1)), st.StartedAt)
}
