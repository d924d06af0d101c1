package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func ts(s int) int64 { return t0.Add(time.Duration(s) * time.Second).UnixNano() }

func sec(s int) float64 { return float64(ts(s)) / 1e9 }

type namer struct{}

func (namer) BuildDir(id string) string     { return id }
func (namer) BuildFile() string             { return "build.json" }
func (namer) PhaseFile(phase string) string { return "phase-" + phase + ".json" }

func at[T comparable](v T, s int) state.Point[T] { return state.At(v, ts(s)) }

func phase(name, st string, done, total int64, dur, progress float64, start, s int) state.PhaseObservation {
	p := state.PhaseObservation{Name: name, State: at(st, s), StepsCompleted: at(done, s), StepsTotal: at(total, s),
		Duration: at(dur, s), Progress: at(progress, s)}
	if start >= 0 {
		p.Start = at(sec(start), s)
	}
	return p
}

// goldenBuild is the timeline of the exporter's report golden files (report_test.go in the
// exporter) as observations: INIT, BUILD with a build and a host alert while it runs and the
// processor's aggregates when it ends, and a failing TEST.
func goldenBuild(t *testing.T) *state.Build {
	t.Helper()
	s := state.New(clock.NewFake(t0), state.Limits{}, namer{})
	res := state.Resource{Pipeline: "service-a", Host: "host-a"}
	build := func(s int, phases ...state.PhaseObservation) state.BuildObservation {
		return state.BuildObservation{ID: "golden-1", Resource: res, State: at(state.BuildRunning, s),
			Start: at(sec(0), s), Duration: at(float64(s), s), Phases: phases, AlertsComplete: true, AlertsAt: ts(s)}
	}
	b := build(10,
		phase("INIT", state.PhaseCompleted, 1, 1, 5, 1, 0, 10),
		phase("BUILD", state.PhaseRunning, 2, 4, 5, 0.5, 5, 10),
		phase("TEST", state.PhasePending, 0, 2, 0, 0, -1, 10))
	b.Progress, b.ETA = at(0.25, 10), at(40.0, 10)
	b.Alerts = []state.AlertObservation{{Rule: "build_slow", Level: "WARNING", State: state.AlertFiring, Active: true, Value: 1.5, HasValue: true, TS: ts(10)}}
	s.Apply(state.Batch{Builds: []state.BuildObservation{b}})
	s.Apply(state.Batch{Hosts: []state.HostObservation{{Name: "host-a", CPU: at(0.6, 10),
		Alerts: []state.AlertObservation{{Rule: "host_cpu_saturated", Level: "CRITICAL", State: state.AlertFiring, Active: true, Value: 0.96, HasValue: true, TS: ts(10)}}}}})
	s.Apply(state.Batch{Hosts: []state.HostObservation{{Name: "host-a", CPU: at(0.8, 20)}}})

	built := phase("BUILD", state.PhaseCompleted, 4, 4, 55, 1, 5, 60)
	built.CPUAvg, built.CPUMax, built.MemoryMax = at(0.5, 60), at(0.9, 60), at(int64(2<<30), 60)
	built.DiskRead, built.DiskWrite, built.NetTransmit, built.NetReceive = at(int64(1000), 60), at(int64(2000), 60), at(int64(300), 60), at(int64(400), 60)
	built.DiskOpsRead, built.DiskOpsWrite = at(int64(10), 60), at(int64(20), 60)
	b = build(60, phase("INIT", state.PhaseCompleted, 1, 1, 5, 1, 0, 60), built, phase("TEST", state.PhaseRunning, 0, 2, 0, 0, 60, 60))
	b.Progress, b.ETA, b.ETASource = at(0.85, 60), at(10.0, 60), at("history", 60)
	s.Apply(state.Batch{Builds: []state.BuildObservation{b}})

	b = build(80, phase("TEST", state.PhaseFailed, 1, 2, 20, 0.5, 60, 80))
	s.Apply(state.Batch{Builds: []state.BuildObservation{b}})
	b = build(90)
	b.State, b.Result = at(state.BuildFinished, 90), at("failure", 90)
	s.Apply(state.Batch{Builds: []state.BuildObservation{b}})
	out, ok := s.BuildCopy("golden-1")
	require.True(t, ok)
	return out
}

// The report package alone, from a state built without the exporter, writes the exporter's
// golden reports.
func TestReportsMatchTheExporterGoldenFiles(t *testing.T) {
	b := goldenBuild(t)
	docs := map[string]any{"build.golden.json": ForBuild(b, t0)}
	for _, p := range []string{"BUILD", "TEST"} {
		doc, ok := ForPhase(b, p, t0)
		require.True(t, ok)
		docs["phase-"+p+".golden.json"] = doc
	}
	for file, doc := range docs {
		t.Run(file, func(t *testing.T) {
			got, err := Marshal(doc)
			require.NoError(t, err)
			want, err := os.ReadFile(filepath.Join("..", "..", "testdata", "reports", file))
			require.NoError(t, err)
			assert.JSONEq(t, string(want), string(got))
		})
	}
}

func f(v float64) *float64 { return &v }
func i(v int64) *int64     { return &v }

func TestResources(t *testing.T) {
	all := state.PhaseResources{
		CPUAvg: state.Stamped[float64]{V: 0, T: 1}, CPUMax: state.Stamped[float64]{V: 0.2, T: 1},
		MemoryMax: state.Stamped[int64]{V: 7, T: 1}, DiskRead: state.Stamped[int64]{V: 1, T: 1},
		DiskWrite: state.Stamped[int64]{V: 2, T: 1}, NetTransmit: state.Stamped[int64]{V: 3, T: 1},
		NetReceive: state.Stamped[int64]{V: 4, T: 1}, DiskOpsRead: state.Stamped[int64]{V: 5, T: 1},
		DiskOpsWrite: state.Stamped[int64]{V: 6, T: 1},
	}
	allWant := func(source string) Resources {
		return Resources{Source: source, CPUUtilizationAvg: f(0), CPUUtilizationMax: f(0.2), MemoryUsageMaxBytes: i(7),
			DiskReadBytes: i(1), DiskWriteBytes: i(2), NetworkTransmitBytes: i(3), NetworkReceiveBytes: i(4),
			DiskReadOperations: i(5), DiskWriteOperations: i(6)}
	}
	tests := []struct {
		name            string
		processor, host state.PhaseResources
		want            Resources
	}{
		{name: "nothing from either", want: Resources{Source: "none"}},
		{
			name:      "some aggregates of the processor",
			processor: state.PhaseResources{CPUMax: state.Stamped[float64]{V: 0.7, T: 1}, DiskWrite: state.Stamped[int64]{V: 5, T: 1}},
			want:      Resources{Source: "processor", CPUUtilizationMax: f(0.7), DiskWriteBytes: i(5)},
		},
		{name: "all aggregates of the processor, zeros kept", processor: all, want: allWant("processor")},
		{name: "the exporter's own without the processor's", host: all, want: allWant("host_metrics")},
		{
			name:      "the processor's win whole, none of the exporter's mixed in",
			processor: state.PhaseResources{CPUMax: state.Stamped[float64]{V: 0.7, T: 1}},
			host:      all,
			want:      Resources{Source: "processor", CPUUtilizationMax: f(0.7)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, resources(phaseResources(&state.Phase{Resources: tt.processor, HostUsage: tt.host})))
		})
	}
}

func stampF(v float64) state.Stamped[float64] { return state.Stamped[float64]{V: v, T: ts(1)} }
func stampI(v int64) state.Stamped[int64]     { return state.Stamped[int64]{V: v, T: ts(1)} }
func stampS(v string) state.Stamped[string]   { return state.Stamped[string]{V: v, T: ts(1)} }

func TestForPhase(t *testing.T) {
	withProgress := func(b *state.Build) { b.Progress = stampF(0.4) }
	tests := []struct {
		name  string
		build func(b *state.Build)
		phase string
		ok    bool
		check func(t *testing.T, r Phase)
	}{
		{name: "unknown phase", phase: "NOPE"},
		{
			name: "the processor's figures as they are", phase: "BUILD", ok: true,
			build: func(b *state.Build) {
				withProgress(b)
				p := b.Phases[0]
				p.State, p.Progress, p.Duration = stampS(state.PhaseCompleted), stampF(0.97), stampF(12.5)
				p.StepsTotal, p.StepsCompleted = stampI(4), stampI(3)
				p.Start, p.EndedAt = stampF(sec(2)), ts(14)
			},
			check: func(t *testing.T, r Phase) {
				assert.Equal(t, "phase", r.Kind)
				assert.Equal(t, SchemaVersion, r.SchemaVersion)
				assert.Equal(t, "completed", r.State)
				assert.Equal(t, 0.97, r.Progress, "not recomputed from the steps")
				assert.Equal(t, int64(3), r.StepsCompleted)
				assert.Equal(t, 12.5, r.DurationSeconds)
				assert.Equal(t, "2025-03-01T12:00:02Z", r.StartedAt)
				assert.Equal(t, "2025-03-01T12:00:14Z", r.EndedAt)
				assert.True(t, r.Derived)
				assert.Empty(t, r.Note)
				assert.Equal(t, "none", r.Resources.Source)
				assert.Equal(t, []Issue{}, r.Issues, "an empty list, not null")
			},
		},
		{
			name: "without the processor", phase: "BUILD", ok: true,
			build: func(b *state.Build) {
				p := b.Phases[0]
				p.State, p.StepsTotal, p.StepsCompleted, p.Duration = stampS(state.PhaseCompleted), stampI(4), stampI(4), stampF(3)
				p.EndedAt = ts(9)
			},
			check: func(t *testing.T, r Phase) {
				assert.False(t, r.Derived)
				assert.Equal(t, state.NoProcessorNote, r.Note)
				assert.Zero(t, r.Progress, "no progress of its own")
				assert.Empty(t, r.StartedAt, "no start inferred from end minus duration")
				assert.Equal(t, "2025-03-01T12:00:09Z", r.EndedAt)
			},
		},
		{
			name: "issues: max value for alerts only, dropped count", phase: "BUILD", ok: true,
			build: func(b *state.Build) {
				p := b.Phases[0]
				p.Issues = []state.Issue{
					{Kind: state.IssueAlert, Scope: state.ScopeHost, Rule: "cpu", Level: "ERROR", Phase: "BUILD", MaxValue: 0.99, FirstSeen: ts(1), LastSeen: ts(3)},
					{Kind: state.IssueFailure, Phase: "BUILD", FirstSeen: ts(4), LastSeen: ts(4)},
				}
				p.IssuesDropped = 2
			},
			check: func(t *testing.T, r Phase) {
				require.Len(t, r.Issues, 2)
				assert.Equal(t, Issue{Kind: "alert", Scope: "host", Rule: "cpu", Level: "ERROR", Phase: "BUILD", MaxValue: f(0.99),
					FirstSeen: "2025-03-01T12:00:01Z", LastSeen: "2025-03-01T12:00:03Z"}, r.Issues[0])
				assert.Nil(t, r.Issues[1].MaxValue)
				assert.Equal(t, 2, r.IssuesDropped)
			},
		},
		{
			name: "pending phase state", phase: "BUILD", ok: true,
			check: func(t *testing.T, r Phase) {
				assert.Equal(t, "pending", r.State)
				assert.Empty(t, r.EndedAt)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &state.Build{ID: "b", Resource: state.Resource{Pipeline: "p", Host: "h"}, Phases: []*state.Phase{{Name: "BUILD"}}}
			if tt.build != nil {
				tt.build(b)
			}
			r, ok := ForPhase(b, tt.phase, t0.Add(time.Minute))
			require.Equal(t, tt.ok, ok)
			if !ok {
				return
			}
			assert.Equal(t, "b", r.BuildID)
			assert.Equal(t, "p", r.Pipeline)
			assert.Equal(t, "h", r.Host)
			assert.Equal(t, "2025-03-01T12:01:00Z", r.GeneratedAt)
			tt.check(t, r)
		})
	}
}

func phaseWith(name, st string, dur float64, cpuAvg *float64) *state.Phase {
	p := &state.Phase{Name: name, State: stampS(st), Duration: stampF(dur), StepsTotal: stampI(2), StepsCompleted: stampI(1)}
	if cpuAvg != nil {
		p.Resources.CPUAvg = stampF(*cpuAvg)
	}
	return p
}

func TestForBuild(t *testing.T) {
	tests := []struct {
		name  string
		build *state.Build
		check func(t *testing.T, r Build)
	}{
		{
			name:  "running build without phases or processor",
			build: &state.Build{ID: "b"},
			check: func(t *testing.T, r Build) {
				assert.Equal(t, "build", r.Kind)
				assert.Empty(t, r.FinishedAt)
				assert.Empty(t, r.StartedAt)
				assert.False(t, r.Derived)
				assert.Equal(t, state.NoProcessorNote, r.Note)
				assert.Equal(t, []PhaseSummary{}, r.Phases)
				assert.Equal(t, []Issue{}, r.Issues)
				assert.Equal(t, map[string]int{}, r.IssuesByLevel)
				assert.Zero(t, r.Performance.StepsPerMinute, "no division by a zero duration")
				assert.Equal(t, "none", r.ResourceEfficiency.Source)
				assert.Nil(t, r.ResourceEfficiency.CPUBusySeconds)
				assert.Nil(t, r.ResourceEfficiency.IdleShare)
			},
		},
		{
			name: "CPU average weighted by phase duration when every phase that took time has one",
			build: &state.Build{ID: "b", State: stampS(state.BuildFinished), Result: stampS("success"), Duration: stampF(40), Progress: stampF(1),
				Start: stampF(sec(0)),
				Phases: []*state.Phase{
					phaseWith("A", state.PhaseCompleted, 10, f(0.2)),
					phaseWith("B", state.PhaseCompleted, 30, f(0.6)),
					phaseWith("C", state.PhaseSkipped, 0, nil),
				}},
			check: func(t *testing.T, r Build) {
				assert.True(t, r.Derived)
				assert.Equal(t, 1.0, r.Progress)
				assert.Equal(t, "2025-03-01T12:00:00Z", r.StartedAt)
				assert.Equal(t, "2025-03-01T12:00:01Z", r.FinishedAt)
				assert.Equal(t, "processor", r.ResourceEfficiency.Source)
				require.NotNil(t, r.ResourceEfficiency.CPUUtilizationAvg)
				assert.InDelta(t, 0.5, *r.ResourceEfficiency.CPUUtilizationAvg, 1e-9) // (0.2×10 + 0.6×30) / 40
				assert.InDelta(t, 20, *r.ResourceEfficiency.CPUBusySeconds, 1e-9)
				assert.InDelta(t, 0.5, *r.ResourceEfficiency.IdleShare, 1e-9)
				assert.Equal(t, 2, r.Performance.PhasesCompleted)
				assert.Equal(t, 1, r.Performance.PhasesSkipped)
				assert.Equal(t, "B", r.Performance.SlowestPhase)
				assert.Equal(t, 30.0, r.Performance.SlowestPhaseSeconds)
				assert.Equal(t, int64(6), r.Performance.StepsTotal)
				assert.InDelta(t, 4.5, r.Performance.StepsPerMinute, 1e-9) // 3 steps in 40 s
				assert.InDelta(t, 0.75, r.Phases[1].ShareOfDuration, 1e-9)
			},
		},
		{
			name: "no CPU average when a phase that took time has none",
			build: &state.Build{ID: "b", Duration: stampF(40), Phases: []*state.Phase{
				phaseWith("A", state.PhaseCompleted, 10, f(0.2)),
				phaseWith("B", state.PhaseFailed, 30, nil),
			}},
			check: func(t *testing.T, r Build) {
				assert.Nil(t, r.ResourceEfficiency.CPUUtilizationAvg)
				assert.Nil(t, r.ResourceEfficiency.CPUBusySeconds)
				assert.Equal(t, 1, r.Performance.PhasesFailed)
				assert.Equal(t, "none", r.ResourceEfficiency.Source, "no build-wide figure could be formed")
			},
		},
		{
			name: "sums and maxima over the phases",
			build: &state.Build{ID: "b", Phases: []*state.Phase{
				{Name: "A", Resources: state.PhaseResources{CPUMax: stampF(0.3), MemoryMax: stampI(100), DiskRead: stampI(1), NetTransmit: stampI(10), DiskOpsWrite: stampI(3)}},
				{Name: "B", Resources: state.PhaseResources{CPUMax: stampF(0.9), MemoryMax: stampI(50), DiskRead: stampI(2), NetReceive: stampI(20)}},
				{Name: "C"},
			}},
			check: func(t *testing.T, r Build) {
				e := r.ResourceEfficiency
				assert.Equal(t, f(0.9), e.CPUUtilizationMax)
				assert.Equal(t, i(100), e.MemoryUsageMaxBytes)
				assert.Equal(t, i(3), e.DiskReadBytes)
				assert.Equal(t, i(0), e.DiskWriteBytes, "a direction without data is 0 once the other direction has some")
				assert.Equal(t, i(10), e.NetworkTransmitBytes)
				assert.Equal(t, i(20), e.NetworkReceiveBytes)
				assert.Equal(t, i(0), e.DiskReadOperations)
				assert.Equal(t, i(3), e.DiskWriteOperations)
			},
		},
		{
			name: "issues by level and kind",
			build: &state.Build{ID: "b", IssuesDropped: 1, Issues: []state.Issue{
				{Kind: state.IssueAlert, Level: "ERROR"}, {Kind: state.IssueAlert, Level: "ERROR", Scope: state.ScopeHost},
				{Kind: state.IssueAlert, Level: "CRITICAL"}, {Kind: state.IssueFailure, Phase: "A"},
			}, Phases: []*state.Phase{{Name: "A", Issues: []state.Issue{{Kind: state.IssueFailure}}, IssuesDropped: 2}}},
			check: func(t *testing.T, r Build) {
				assert.Equal(t, map[string]int{"ERROR": 2, "CRITICAL": 1, "failure": 1}, r.IssuesByLevel)
				assert.Equal(t, 1, r.IssuesDropped)
				assert.Equal(t, 3, r.Phases[0].Issues, "a phase's issues count what was dropped too")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ForBuild(tt.build, t0)
			assert.Equal(t, SchemaVersion, r.SchemaVersion)
			assert.Equal(t, "2025-03-01T12:00:00Z", r.GeneratedAt)
			tt.check(t, r)
		})
	}
}

func TestMarshal(t *testing.T) {
	tests := []struct {
		name    string
		in      any
		want    string
		wantErr bool
	}{
		{name: "indented with a final newline", in: map[string]int{"a": 1}, want: "{\n  \"a\": 1\n}\n"},
		{name: "what JSON cannot hold", in: map[string]any{"x": func() {}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Marshal(tt.in)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

// Reports are stable across float noise.
func TestRound(t *testing.T) {
	assert.Equal(t, 0.333333, round(1.0/3))
	assert.Equal(t, 0.1, round(0.1+1e-9))
	doc := ForBuild(&state.Build{ID: "b", Duration: stampF(3), Phases: []*state.Phase{phaseWith("A", state.PhaseCompleted, 1, nil)}}, t0)
	out, err := json.Marshal(doc.Phases[0])
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(out), `"share_of_duration":0.333333`), string(out))
}

// The phase and build reports of one build agree on whether the processor's values arrived.
func TestDerivedAndNoteAgree(t *testing.T) {
	for _, derived := range []bool{true, false} {
		b := &state.Build{ID: "b", Phases: []*state.Phase{{Name: "A", State: stampS(state.PhaseCompleted)}}}
		if derived {
			b.Progress = stampF(0)
		}
		pr, ok := ForPhase(b, "A", t0)
		require.True(t, ok)
		br := ForBuild(b, t0)
		assert.Equal(t, derived, pr.Derived)
		assert.Equal(t, derived, br.Derived)
		assert.Equal(t, pr.Note, br.Note)
		assert.Equal(t, derived, pr.Note == "", "a note exactly when not derived")
	}
}
