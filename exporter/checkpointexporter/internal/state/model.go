// Package state is the monitoring state of the checkpoint exporter (seed §5, §6): per build
// its plan, phases, progress, ETA, alerts, pause flag and result, per host its latest resource
// utilization. It reduces observations (plain values with data point timestamps, translated
// from pdata by the exporter) into that state, where the newer timestamp wins for every field
// (the seed's StateSynchronizer), and serializes it for checkpoints.
//
// The package is plain Go: no collector types appear in its API.
package state // import "github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"

import (
	"github.com/buildmon/buildmon/internal/phaseusage"
	"github.com/buildmon/buildmon/internal/wire"
)

// Build states, results and alert scopes as they appear in the state and its views.
const (
	BuildRunning  = wire.BuildRunning
	BuildFinished = wire.BuildFinished

	PhasePending   = wire.PhasePending
	PhaseRunning   = wire.PhaseRunning
	PhaseCompleted = wire.PhaseCompleted
	PhaseFailed    = wire.PhaseFailed
	PhaseSkipped   = wire.PhaseSkipped

	AlertFiring  = "firing"
	AlertPending = "pending"

	ScopeBuild = wire.ScopeBuild
	ScopeHost  = wire.ScopeHost

	IssueAlert   = "alert"
	IssueFailure = "failure"
)

// Point is one observed value with its data point timestamp (Unix nanoseconds). OK is false
// when the observation does not carry the field.
type Point[T comparable] struct {
	V  T
	TS int64
	OK bool
}

// At returns a Point with value v at ts.
func At[T comparable](v T, ts int64) Point[T] { return Point[T]{V: v, TS: ts, OK: true} }

// Stamped is a field of the state with the timestamp of the data point that set it. T is 0
// while the field was never set.
type Stamped[T comparable] struct {
	V T     `json:"v"`
	T int64 `json:"t,omitempty"`
}

// Set reports whether the field has a value.
func (s Stamped[T]) Set() bool { return s.T != 0 }

// Ptr returns the value, or nil while the field has none (the status API's and the reports'
// null).
func (s Stamped[T]) Ptr() *T {
	if !s.Set() {
		return nil
	}
	v := s.V
	return &v
}

// apply takes p if it is at least as new as the field; it reports whether the field changed
// (value or timestamp).
func (s *Stamped[T]) apply(p Point[T]) bool {
	if !p.OK || p.TS < s.T {
		return false
	}
	if p.TS == s.T && p.V == s.V {
		return false
	}
	s.V, s.T = p.V, p.TS
	return true
}

// Resource describes where a build runs (its resource attributes).
type Resource struct {
	Pipeline   string `json:"pipeline,omitempty"`
	Host       string `json:"host,omitempty"`
	Worker     string `json:"worker,omitempty"`
	Repository string `json:"repository,omitempty"`
	Branch     string `json:"branch,omitempty"`
	Revision   string `json:"revision,omitempty"`
}

// Build is the state of one build.
type Build struct {
	ID string `json:"id"`
	Resource

	State    Stamped[string]  `json:"state,omitzero"`
	Result   Stamped[string]  `json:"result,omitzero"`
	Duration Stamped[float64] `json:"duration,omitzero"`
	Progress Stamped[float64] `json:"progress,omitzero"`
	ETA      Stamped[float64] `json:"eta,omitzero"`
	// ETASource is build.eta.source: history, rate or blend.
	ETASource Stamped[string] `json:"eta_source,omitzero"`
	// ETAPredictions are the ETAs when progress first reached 50 % and 90 % (eta.go).
	ETAPredictions []ETAPrediction `json:"eta_predictions,omitempty"`
	Paused         Stamped[bool]   `json:"paused,omitzero"`
	// Start is the receiver's build.start_time (Unix seconds).
	Start Stamped[float64] `json:"start,omitzero"`

	Phases []*Phase `json:"phases"`
	// Alerts are the build-scoped alerts that are pending or firing, sorted by rule.
	Alerts []*Alert `json:"alerts,omitempty"`
	// Issues are the alerts (of the build and its host) that fired while the build ran, and
	// failed phases.
	Issues []Issue `json:"issues,omitempty"`
	// IssuesDropped counts the distinct issues that did not fit; DroppedIssueKeys remembers
	// (a bounded number of) them so that each counts once.
	IssuesDropped    int      `json:"issues_dropped,omitempty"`
	DroppedIssueKeys []string `json:"dropped_issue_keys,omitempty"`

	// FirstSeen and UpdatedAt are the oldest and newest data point timestamps applied.
	FirstSeen int64 `json:"first_seen"`
	UpdatedAt int64 `json:"updated_at"`
	// ObservedAt is when (exporter clock) the build last changed; FinishedObservedAt when the
	// exporter saw it finish. Retention counts from FinishedObservedAt, so that a build whose
	// client clock is off is still kept for the configured age.
	ObservedAt         int64 `json:"observed_at"`
	FinishedObservedAt int64 `json:"finished_observed_at,omitempty"`

	// ReportDir is the name of the build's folder under reports/, fixed when the first report
	// is due (a keyed hash when encryption is on, so it cannot be recomputed after a key
	// rotation).
	ReportDir string     `json:"report_dir,omitempty"`
	Report    ReportMark `json:"report,omitzero"`

	// encoded caches the build's JSON for checkpoints until it changes; rev counts changes,
	// so that an encoding made outside the lock is kept only if the build did not change.
	encoded []byte
	rev     uint64
	// evictIndex is the build's position in the Store's eviction queue, queuedKey the key
	// it is queued with (at most its evictKey, see eviction.go).
	evictIndex int
	queuedKey  [2]int64
}

// Phase is the state of one phase of a build, in plan order.
type Phase struct {
	Name           string           `json:"name"`
	State          Stamped[string]  `json:"state,omitzero"`
	StepsTotal     Stamped[int64]   `json:"steps_total,omitzero"`
	StepsCompleted Stamped[int64]   `json:"steps_completed,omitzero"`
	Duration       Stamped[float64] `json:"duration,omitzero"`
	Weight         Stamped[float64] `json:"weight,omitzero"`
	Progress       Stamped[float64] `json:"progress,omitzero"`
	// Start is the receiver's build.phase.start_time (Unix seconds). EndedAt is the
	// timestamp of the state change to an ended state.
	Start   Stamped[float64] `json:"start,omitzero"`
	EndedAt int64            `json:"ended_at,omitempty"`

	// Resources are the processor's per-phase aggregates; HostUsage is what the exporter
	// attributed to the phase itself from the host metrics it received (resources.go), set
	// when the phase ends. Reports prefer Resources.
	Resources        PhaseResources `json:"resources,omitzero"`
	HostUsage        PhaseResources `json:"host_usage,omitzero"`
	Issues           []Issue        `json:"issues,omitempty"`
	IssuesDropped    int            `json:"issues_dropped,omitempty"`
	DroppedIssueKeys []string       `json:"dropped_issue_keys,omitempty"`
	Report           ReportMark     `json:"report,omitzero"`

	// usage accumulates the host's resource use while the phase runs (nil otherwise). It is
	// not in checkpoints: a phase running across a restart is attributed what its host spent
	// from the first host reading after the restart (resources.go).
	usage *phaseusage.Phase
}

// PhaseResources are a phase's resource aggregates: the processor's (opt-in metrics, emitted
// when the phase ends) or the exporter's own (HostUsage).
type PhaseResources struct {
	CPUAvg       Stamped[float64] `json:"cpu_avg,omitzero"`
	CPUMax       Stamped[float64] `json:"cpu_max,omitzero"`
	MemoryMax    Stamped[int64]   `json:"memory_max,omitzero"`
	DiskRead     Stamped[int64]   `json:"disk_read,omitzero"`
	DiskWrite    Stamped[int64]   `json:"disk_write,omitzero"`
	NetTransmit  Stamped[int64]   `json:"net_transmit,omitzero"`
	NetReceive   Stamped[int64]   `json:"net_receive,omitzero"`
	DiskOpsRead  Stamped[int64]   `json:"disk_ops_read,omitzero"`
	DiskOpsWrite Stamped[int64]   `json:"disk_ops_write,omitzero"`
}

// Any reports whether any aggregate was received.
func (r *PhaseResources) Any() bool {
	return r.CPUAvg.Set() || r.CPUMax.Set() || r.MemoryMax.Set() || r.DiskRead.Set() || r.DiskWrite.Set() ||
		r.NetTransmit.Set() || r.NetReceive.Set() || r.DiskOpsRead.Set() || r.DiskOpsWrite.Set()
}

// ReportMark tracks a report: Version counts changes that make a new report due, Written is
// the version last written to File.
type ReportMark struct {
	Version uint64 `json:"version,omitempty"`
	Written uint64 `json:"written,omitempty"`
	File    string `json:"file,omitempty"`
	Bytes   int64  `json:"bytes,omitempty"`
}

// Due reports whether a report must be (re)written.
func (m ReportMark) Due() bool { return m.Version > m.Written }

// Alert is an alert that is pending or firing.
type Alert struct {
	Rule     string  `json:"rule"`
	Level    string  `json:"level"`
	State    string  `json:"state"`
	Value    float64 `json:"value"`
	HasValue bool    `json:"has_value,omitempty"`
	// Since is the timestamp the alert was first seen active with; UpdatedAt the newest
	// data point timestamp; SeenAt when (exporter clock) it was last refreshed.
	Since     int64 `json:"since"`
	UpdatedAt int64 `json:"updated_at"`
	SeenAt    int64 `json:"seen_at"`
	// LevelSince is when the alert got its current level (notifications identify an alert by
	// rule and level).
	LevelSince int64 `json:"level_since,omitempty"`
}

// Issue is something that went wrong during a phase or build: an alert that fired, or a
// phase that failed.
type Issue struct {
	Kind      string  `json:"kind"`
	Scope     string  `json:"scope,omitempty"`
	Rule      string  `json:"rule,omitempty"`
	Level     string  `json:"level,omitempty"`
	Phase     string  `json:"phase,omitempty"`
	MaxValue  float64 `json:"max_value,omitempty"`
	FirstSeen int64   `json:"first_seen"`
	LastSeen  int64   `json:"last_seen"`
}

// Host is the latest resource utilization of one host.
type Host struct {
	Name         string           `json:"name"`
	CPU          Stamped[float64] `json:"cpu,omitzero"`
	MemUtil      Stamped[float64] `json:"mem_util,omitzero"`
	MemUsed      Stamped[int64]   `json:"mem_used,omitzero"`
	MemTotal     Stamped[int64]   `json:"mem_total,omitzero"`
	FSUtil       Stamped[float64] `json:"fs_util,omitzero"`
	FSMount      string           `json:"fs_mount,omitempty"`
	NetTransmit  Stamped[float64] `json:"net_transmit,omitzero"`
	NetReceive   Stamped[float64] `json:"net_receive,omitzero"`
	DiskOpsRead  Stamped[float64] `json:"disk_ops_read,omitzero"`
	DiskOpsWrite Stamped[float64] `json:"disk_ops_write,omitzero"`
	Alerts       []*Alert         `json:"alerts,omitempty"`
	UpdatedAt    int64            `json:"updated_at"`
	ObservedAt   int64            `json:"observed_at"`

	// usage is the host's newest totals that phases are attributed from; not in checkpoints
	// (after a restart the reader's totals start again, and so do these).
	usage HostUsage
}

// HostUsage is what reading a host's metrics (internal/hostusage) left: its cumulative
// disk, network and operation totals and which of them it sends.
type HostUsage struct {
	Totals phaseusage.Totals
	Kinds  phaseusage.Kinds
	// Seq numbers the readings, increasing over all hosts; 0 when the observation carries
	// no reading.
	Seq uint64
}

// Observations: what one batch of metrics says, field by field, before it is reduced into
// the state.

// Batch is what one batch of metrics says about builds and hosts.
type Batch struct {
	Builds []BuildObservation
	Hosts  []HostObservation
}

// BuildObservation is what one ResourceMetrics says about a build.
type BuildObservation struct {
	ID       string
	Resource Resource
	State    Point[string]
	Result   Point[string]
	Duration Point[float64]
	Progress Point[float64]
	ETA      Point[float64]
	// ETASource is the build.eta.source of the ETA point.
	ETASource Point[string]
	Paused    Point[bool]
	Start     Point[float64]
	Phases    []PhaseObservation
	Alerts    []AlertObservation
	// AlertsComplete says the observation lists every alert of the build (the processor
	// appended its derived metrics), so alerts missing from it have cleared. AlertsAt is the
	// timestamp of that snapshot.
	AlertsComplete bool
	AlertsAt       int64
}

// PhaseObservation is what one ResourceMetrics says about a phase.
type PhaseObservation struct {
	Name           string
	State          Point[string]
	StepsTotal     Point[int64]
	StepsCompleted Point[int64]
	Duration       Point[float64]
	Weight         Point[float64]
	Progress       Point[float64]
	Start          Point[float64]
	CPUAvg         Point[float64]
	CPUMax         Point[float64]
	MemoryMax      Point[int64]
	DiskRead       Point[int64]
	DiskWrite      Point[int64]
	NetTransmit    Point[int64]
	NetReceive     Point[int64]
	DiskOpsRead    Point[int64]
	DiskOpsWrite   Point[int64]
}

// HostObservation is what one ResourceMetrics says about a host.
type HostObservation struct {
	Name         string
	CPU          Point[float64]
	MemUtil      Point[float64]
	MemUsed      Point[int64]
	MemTotal     Point[int64]
	FSUtil       Point[float64]
	FSMount      string
	NetTransmit  Point[float64]
	NetReceive   Point[float64]
	DiskOpsRead  Point[float64]
	DiskOpsWrite Point[float64]
	// Usage is the host's totals after this reading, what phases are attributed from; CPU
	// and MemUsed are the reading's sample.
	Usage  HostUsage
	Alerts []AlertObservation
}

// AlertObservation is one alert series as the processor reports it (rule, level, state):
// Active is true for a data point of 1 (the series is the rule's alert now) and false for a
// data point of 0 (that series ended; it clears the alert only while the alert is that
// series).
type AlertObservation struct {
	Rule     string
	Level    string
	State    string
	Active   bool
	Value    float64
	HasValue bool
	TS       int64
}

// AlertChange is a change of a firing alert that notifiers act on: it started firing (or
// fired with a new level), or it stopped.
type AlertChange struct {
	Scope    string
	BuildID  string
	Pipeline string
	Host     string
	Rule     string
	Level    string
	Value    float64
	// Since is when the alert became active at this level; At when it changed (exporter
	// clock for resolutions).
	Since    int64
	At       int64
	Resolved bool
}
