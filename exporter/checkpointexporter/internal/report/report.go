// Package report generates the phase and build reports of the seed (§5.1, §5.2) from the
// monitoring state: a phase report when a phase ends (time taken, resource usage, issues
// encountered) and a build report when a build finishes (overall progress, phase summaries,
// performance metrics, resource efficiency). README.md documents the JSON schema.
package report // import "github.com/buildmon/buildmon/exporter/checkpointexporter/internal/report"

import (
	"encoding/json"
	"math"
	"time"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
	"github.com/buildmon/buildmon/internal/wire"
)

// SchemaVersion is the version of the report documents.
const SchemaVersion = 1

// Phase is the report of one ended phase.
type Phase struct {
	SchemaVersion int    `json:"schema_version"`
	Kind          string `json:"kind"`
	BuildID       string `json:"build_id"`
	Pipeline      string `json:"pipeline"`
	Host          string `json:"host"`
	Phase         string `json:"phase"`
	// State is completed, failed or skipped.
	State     string `json:"state"`
	StartedAt string `json:"started_at,omitempty"`
	EndedAt   string `json:"ended_at,omitempty"`
	// DurationSeconds is the time the phase took.
	DurationSeconds float64   `json:"duration_seconds"`
	StepsTotal      int64     `json:"steps_total"`
	StepsCompleted  int64     `json:"steps_completed"`
	Progress        float64   `json:"progress"`
	Derived         bool      `json:"derived"`
	Note            string    `json:"note,omitempty"`
	Resources       Resources `json:"resources"`
	Issues          []Issue   `json:"issues"`
	IssuesDropped   int       `json:"issues_dropped,omitempty"`
	GeneratedAt     string    `json:"generated_at"`
}

// Sources of a report's resources.
const (
	// SourceProcessor: the buildprogress processor's per-phase aggregates (build.phase.*,
	// with its phase_resources.enabled); they win when they arrive.
	SourceProcessor = wire.ResourcesProcessor
	// SourceHostMetrics: the exporter's own attribution from the host metrics it receives
	// (the same algorithm, internal/phaseusage), without the processor's.
	SourceHostMetrics = wire.ResourcesHostMetrics
	// SourceMixed: a build report whose phases have figures from both sources.
	SourceMixed = wire.ResourcesMixed
	// SourceNone: no figures (no host sample arrived while the phase ran).
	SourceNone = wire.ResourcesNone
)

// Resources is what the host spent while a phase (or build) ran. Source says where the
// figures come from (Source… constants); fields are null when unknown. The status API shows
// the same for each phase.
type Resources = wire.PhaseResources

// Issue is an alert that fired, or a phase that failed.
type Issue struct {
	// Kind is alert or failure.
	Kind string `json:"kind"`
	// Scope is build or host (alerts only).
	Scope     string   `json:"scope,omitempty"`
	Rule      string   `json:"rule,omitempty"`
	Level     string   `json:"level,omitempty"`
	Phase     string   `json:"phase,omitempty"`
	MaxValue  *float64 `json:"max_value,omitempty"`
	FirstSeen string   `json:"first_seen"`
	LastSeen  string   `json:"last_seen"`
}

// Build is the report of a finished build.
type Build struct {
	SchemaVersion      int            `json:"schema_version"`
	Kind               string         `json:"kind"`
	BuildID            string         `json:"build_id"`
	Pipeline           string         `json:"pipeline"`
	Host               string         `json:"host"`
	Worker             string         `json:"worker,omitempty"`
	Repository         string         `json:"repository,omitempty"`
	Branch             string         `json:"branch,omitempty"`
	Revision           string         `json:"revision,omitempty"`
	State              string         `json:"state"`
	Result             string         `json:"result"`
	StartedAt          string         `json:"started_at,omitempty"`
	FinishedAt         string         `json:"finished_at,omitempty"`
	DurationSeconds    float64        `json:"duration_seconds"`
	Progress           float64        `json:"progress"`
	Derived            bool           `json:"derived"`
	Note               string         `json:"note,omitempty"`
	Phases             []PhaseSummary `json:"phases"`
	Performance        Performance    `json:"performance"`
	ResourceEfficiency Efficiency     `json:"resource_efficiency"`
	// ETA is how good the ETA was (predicted vs real duration); absent without predictions.
	ETA           *ETAAccuracy   `json:"eta,omitempty"`
	Issues        []Issue        `json:"issues"`
	IssuesByLevel map[string]int `json:"issues_by_level"`
	IssuesDropped int            `json:"issues_dropped,omitempty"`
	GeneratedAt   string         `json:"generated_at"`
}

// PhaseSummary is one phase in the build report.
type PhaseSummary struct {
	Name            string  `json:"name"`
	State           string  `json:"state"`
	DurationSeconds float64 `json:"duration_seconds"`
	// ShareOfDuration is the phase's share of the build's duration, 0 to 1.
	ShareOfDuration float64 `json:"share_of_duration"`
	StepsTotal      int64   `json:"steps_total"`
	StepsCompleted  int64   `json:"steps_completed"`
	Progress        float64 `json:"progress"`
	Issues          int     `json:"issues"`
}

// Performance are the build's performance metrics.
type Performance struct {
	DurationSeconds float64 `json:"duration_seconds"`
	PhasesTotal     int     `json:"phases_total"`
	PhasesCompleted int     `json:"phases_completed"`
	PhasesFailed    int     `json:"phases_failed"`
	PhasesSkipped   int     `json:"phases_skipped"`
	StepsTotal      int64   `json:"steps_total"`
	StepsCompleted  int64   `json:"steps_completed"`
	// StepsPerMinute is steps completed per minute of build duration.
	StepsPerMinute      float64 `json:"steps_per_minute"`
	SlowestPhase        string  `json:"slowest_phase,omitempty"`
	SlowestPhaseSeconds float64 `json:"slowest_phase_seconds"`
}

// Efficiency is how the build used its host: the mean and peak utilization while it ran,
// and the CPU busy time it implies.
type Efficiency struct {
	Resources
	// CPUBusySeconds is the mean CPU utilization times the duration: how many seconds all of
	// the host's CPUs would have been busy (0 to duration; low means the build waited).
	CPUBusySeconds *float64 `json:"cpu_busy_seconds"`
	// IdleShare is 1 − mean CPU utilization.
	IdleShare *float64 `json:"idle_share"`
}

func ptr[T any](v T) *T { return &v }

func phaseResources(p *state.Phase) (state.PhaseResources, string) {
	return state.EffectiveResources(p)
}

func resources(r state.PhaseResources, source string) Resources {
	return state.ResourcesView(r, source)
}

// note is the note of a report of a build for which no build.progress arrived.
func note(derived bool) string {
	if derived {
		return ""
	}
	return state.NoProcessorNote
}

// round keeps reports stable across float noise: 6 significant decimals.
func round(v float64) float64 { return math.Round(v*1e6) / 1e6 }

func issues(in []state.Issue) []Issue {
	out := make([]Issue, 0, len(in))
	for _, is := range in {
		i := Issue{Kind: is.Kind, Scope: is.Scope, Rule: is.Rule, Level: is.Level, Phase: is.Phase,
			FirstSeen: state.FormatTime(is.FirstSeen), LastSeen: state.FormatTime(is.LastSeen)}
		if is.Kind == state.IssueAlert {
			i.MaxValue = ptr(is.MaxValue)
		}
		out = append(out, i)
	}
	return out
}

// ForPhase returns the report of a build's phase; ok is false if the build has no such phase.
func ForPhase(b *state.Build, phase string, generatedAt time.Time) (Phase, bool) {
	for _, p := range b.Phases {
		if p.Name != phase {
			continue
		}
		return Phase{
			SchemaVersion: SchemaVersion, Kind: "phase",
			BuildID: b.ID, Pipeline: b.Pipeline, Host: b.Host, Phase: p.Name, State: state.PhaseState(p),
			StartedAt: state.FormatTime(state.PhaseStartedAt(p)), EndedAt: state.FormatTime(p.EndedAt),
			DurationSeconds: p.Duration.V, StepsTotal: p.StepsTotal.V, StepsCompleted: p.StepsCompleted.V,
			Progress: p.Progress.V, Derived: state.Derived(b), Note: note(state.Derived(b)),
			Resources: resources(phaseResources(p)),
			Issues:    issues(p.Issues), IssuesDropped: p.IssuesDropped,
			GeneratedAt: generatedAt.UTC().Format(time.RFC3339Nano),
		}, true
	}
	return Phase{}, false
}

// ForBuild returns the report of a build.
func ForBuild(b *state.Build, generatedAt time.Time) Build {
	r := Build{
		SchemaVersion: SchemaVersion, Kind: "build",
		BuildID: b.ID, Pipeline: b.Pipeline, Host: b.Host, Worker: b.Worker, Repository: b.Repository,
		Branch: b.Branch, Revision: b.Revision,
		State: b.State.V, Result: b.Result.V,
		StartedAt:       state.FormatTime(state.BuildStartedAt(b)),
		DurationSeconds: b.Duration.V,
		Progress:        b.Progress.V,
		Derived:         state.Derived(b),
		Note:            note(state.Derived(b)),
		Phases:          make([]PhaseSummary, 0, len(b.Phases)),
		Issues:          issues(b.Issues),
		IssuesByLevel:   map[string]int{},
		IssuesDropped:   b.IssuesDropped,
		GeneratedAt:     generatedAt.UTC().Format(time.RFC3339Nano),
	}
	if b.State.V == state.BuildFinished {
		r.FinishedAt = state.FormatTime(b.State.T)
		r.ETA = etaAccuracy(b)
	}
	perf := &r.Performance
	perf.DurationSeconds = b.Duration.V
	perf.PhasesTotal = len(b.Phases)
	var agg state.PhaseResources
	source := SourceNone
	var diskR, diskW, netT, netR, opsR, opsW int64
	var haveDisk, haveNet, haveOps bool
	for _, p := range b.Phases {
		ps := PhaseSummary{
			Name: p.Name, State: state.PhaseState(p), DurationSeconds: p.Duration.V,
			StepsTotal: p.StepsTotal.V, StepsCompleted: p.StepsCompleted.V, Progress: p.Progress.V,
			Issues: len(p.Issues) + p.IssuesDropped,
		}
		if b.Duration.V > 0 {
			ps.ShareOfDuration = round(min(1, p.Duration.V/b.Duration.V))
		}
		r.Phases = append(r.Phases, ps)
		switch ps.State {
		case state.PhaseCompleted:
			perf.PhasesCompleted++
		case state.PhaseFailed:
			perf.PhasesFailed++
		case state.PhaseSkipped:
			perf.PhasesSkipped++
		}
		perf.StepsTotal += p.StepsTotal.V
		perf.StepsCompleted += p.StepsCompleted.V
		if p.Duration.V > perf.SlowestPhaseSeconds {
			perf.SlowestPhase, perf.SlowestPhaseSeconds = p.Name, p.Duration.V
		}
		pr, src := phaseResources(p)
		switch {
		case src == SourceNone:
		case source == SourceNone:
			source = src
		case source != src:
			source = SourceMixed
		}
		if pr.CPUMax.Set() && (!agg.CPUMax.Set() || pr.CPUMax.V > agg.CPUMax.V) {
			agg.CPUMax = pr.CPUMax
		}
		if pr.MemoryMax.Set() && (!agg.MemoryMax.Set() || pr.MemoryMax.V > agg.MemoryMax.V) {
			agg.MemoryMax = pr.MemoryMax
		}
		sum := func(total *int64, have *bool, s state.Stamped[int64]) {
			if s.Set() {
				*total += s.V
				*have = true
			}
		}
		sum(&diskR, &haveDisk, pr.DiskRead)
		sum(&diskW, &haveDisk, pr.DiskWrite)
		sum(&netT, &haveNet, pr.NetTransmit)
		sum(&netR, &haveNet, pr.NetReceive)
		sum(&opsR, &haveOps, pr.DiskOpsRead)
		sum(&opsW, &haveOps, pr.DiskOpsWrite)
	}
	if b.Duration.V > 0 {
		perf.StepsPerMinute = round(float64(perf.StepsCompleted) / b.Duration.V * 60)
	}
	// Duration-weighted mean of the phases' CPU averages (whichever their source), where all
	// phases that took time have one: a phase without one had no host sample while it ran,
	// and its share of the build would be a guess.
	var weighted, weight float64
	complete := true
	for _, p := range b.Phases {
		if p.Duration.V <= 0 {
			continue
		}
		pr, _ := phaseResources(p)
		if !pr.CPUAvg.Set() {
			complete = false
			break
		}
		weighted += pr.CPUAvg.V * p.Duration.V
		weight += p.Duration.V
	}
	if complete && weight > 0 {
		agg.CPUAvg = state.Stamped[float64]{V: round(weighted / weight), T: 1}
	}
	set := func(dst *state.Stamped[int64], v int64, have bool) {
		if have {
			*dst = state.Stamped[int64]{V: v, T: 1}
		}
	}
	set(&agg.DiskRead, diskR, haveDisk)
	set(&agg.DiskWrite, diskW, haveDisk)
	set(&agg.NetTransmit, netT, haveNet)
	set(&agg.NetReceive, netR, haveNet)
	set(&agg.DiskOpsRead, opsR, haveOps)
	set(&agg.DiskOpsWrite, opsW, haveOps)
	eff := Efficiency{Resources: resources(agg, source)}
	if eff.CPUUtilizationAvg != nil {
		avg := *eff.CPUUtilizationAvg
		eff.CPUBusySeconds = ptr(round(avg * b.Duration.V))
		eff.IdleShare = ptr(round(1 - avg))
	}
	r.ResourceEfficiency = eff
	for _, is := range b.Issues {
		if is.Kind == state.IssueAlert {
			r.IssuesByLevel[is.Level]++
		} else {
			r.IssuesByLevel[is.Kind]++
		}
	}
	return r
}

// Marshal encodes a report as indented JSON with a final newline.
func Marshal(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
