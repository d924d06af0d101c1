// Package wire is the JSON contract of buildmon's two HTTP APIs, shared by the buildmon
// receiver (the events API), the checkpoint exporter (the status API) and the build client:
//
//	POST /v1/events          one Event (application/json) or one per line (application/x-ndjson);
//	                         202 with Accepted, else an Error
//	GET  /v1/builds          BuildList
//	GET  /v1/builds/{id}     BuildStatus
//	GET  /v1/hosts           HostList
//	GET  /v1/hosts/{name}    HostStatus
//
// The types below are the reference of both APIs: their field names, which fields are left
// out when empty, and the values of the enumerations. The package imports only the standard
// library, so that any client can use it; the servers decide what is valid (the receiver
// decodes events strictly and names the offending field in its Error).
package wire // import "github.com/buildmon/buildmon/internal/wire"

// Event types: the "type" of an Event.
const (
	// EventBuildStarted starts a build: Pipeline is required, Phases is the plan (the
	// default plan INIT, SETUP, BUILD, TEST, CLEANUP when empty), Attributes optional.
	EventBuildStarted = "build_started"
	// EventPhaseStarted starts Phase.
	EventPhaseStarted = "phase_started"
	// EventStepCompleted completes Count steps (1 when absent) of Phase; Step may name it.
	EventStepCompleted = "step_completed"
	// EventMilestoneReached reaches the milestone Step of Phase.
	EventMilestoneReached = "milestone_reached"
	// EventPhaseCompleted completes Phase.
	EventPhaseCompleted = "phase_completed"
	// EventPhaseFailed fails Phase; Message may say why.
	EventPhaseFailed = "phase_failed"
	// EventPhaseSkipped skips Phase.
	EventPhaseSkipped = "phase_skipped"
	// EventBuildFinished finishes the build with Result.
	EventBuildFinished = "build_finished"
)

// EventTypes are the event types in the order of a build's life.
var EventTypes = []string{
	EventBuildStarted, EventPhaseStarted, EventStepCompleted, EventMilestoneReached,
	EventPhaseCompleted, EventPhaseFailed, EventPhaseSkipped, EventBuildFinished,
}

// Results of a finished build: the "result" of a build_finished Event and of a BuildStatus,
// the values of the cicd.pipeline.result attribute.
const (
	ResultSuccess      = "success"
	ResultFailure      = "failure"
	ResultError        = "error"
	ResultTimeout      = "timeout"
	ResultCancellation = "cancellation"
)

// Results are the results a build may finish with.
var Results = []string{ResultSuccess, ResultFailure, ResultError, ResultTimeout, ResultCancellation}

// Phase states: the "state" of a PhaseStatus, the values of the build.phase.state attribute.
const (
	PhasePending   = "pending"
	PhaseRunning   = "running"
	PhaseCompleted = "completed"
	PhaseFailed    = "failed"
	PhaseSkipped   = "skipped"
)

// PhaseStates are the states a phase may be in.
var PhaseStates = []string{PhasePending, PhaseRunning, PhaseCompleted, PhaseFailed, PhaseSkipped}

// Build states: the "state" of a BuildStatus and a BuildSummary, and the values of the
// build list's state filter.
const (
	BuildRunning  = "running"
	BuildFinished = "finished"
)

// ETA sources: the "eta_source" of a BuildStatus, the buildprogress processor's
// build.eta.source.
const (
	// ETASourceHistory: the durations of earlier runs of the pipeline.
	ETASourceHistory = "history"
	// ETASourceRate: the build's own progress rate (no history).
	ETASourceRate = "rate"
	// ETASourceBlend: history blended with a progress rate.
	ETASourceBlend = "blend"
)

// Alert scopes: the "scope" of an AlertStatus.
const (
	// ScopeBuild marks an alert of the build itself.
	ScopeBuild = "build"
	// ScopeHost marks an alert of the host the build runs on.
	ScopeHost = "host"
)

// Event is one event of the events API. A batch (application/x-ndjson) holds one Event object
// per line. Names are case-sensitive; unknown names, null and duplicate names are errors.
type Event struct {
	// ID makes retries idempotent: an event whose id the build has seen is a duplicate. The
	// build client always sends one; the receiver takes events without as well.
	ID string `json:"id"`
	// Type is one of the Event… constants.
	Type string `json:"type"`
	// BuildID is the build (pipeline run) the event belongs to.
	BuildID string `json:"build_id"`
	// Time is when it happened, RFC 3339; absent: when the receiver got it.
	Time string `json:"time,omitempty"`
	// Pipeline names the pipeline of the build (build_started only).
	Pipeline string `json:"pipeline,omitempty"`
	// Attributes describe where the build runs (build_started only).
	Attributes *Attributes `json:"attributes,omitempty"`
	// Phases is the plan of the build (build_started only).
	Phases []PhasePlan `json:"phases,omitempty"`
	// Phase is the phase the event is about (every phase and step event).
	Phase string `json:"phase,omitempty"`
	// Step names the step (step_completed) or the milestone (milestone_reached).
	Step string `json:"step,omitempty"`
	// Count is the number of steps a step_completed event completes; absent means 1.
	Count *int64 `json:"count,omitempty"`
	// Message is free text: why a phase failed, how a build ended.
	Message string `json:"message,omitempty"`
	// Result is one of the Result… constants (build_finished only).
	Result string `json:"result,omitempty"`
}

// Attributes describe where a build runs and what it builds; they become resource
// attributes of its telemetry.
type Attributes struct {
	// Repository is the repository's URL (vcs.repository.url.full).
	Repository string `json:"repository,omitempty"`
	// Branch is the branch built (vcs.ref.head.name).
	Branch string `json:"branch,omitempty"`
	// Revision is the commit built (vcs.ref.head.revision).
	Revision string `json:"revision,omitempty"`
	// Worker is the CI worker (cicd.worker.id).
	Worker string `json:"worker,omitempty"`
	// Host is the build host (host.name); absent: the receiver's host.
	Host string `json:"host,omitempty"`
}

// PhasePlan is one phase of a build's plan: a step count or named milestones, and an
// optional weight that overrides the processor's configured weight of the phase.
type PhasePlan struct {
	Name string `json:"name"`
	// Steps is the number of steps; 0 or absent means unknown.
	Steps int64 `json:"steps,omitempty"`
	// Milestones name the phase's steps, in order; given instead of Steps.
	Milestones []string `json:"milestones,omitempty"`
	// Weight is the phase's share of the build's progress, renormalized over the plan.
	Weight *float64 `json:"weight,omitempty"`
}

// Accepted is the body of the events API's 202 answer: how many events were applied and how
// many were duplicates of events already seen (by id), which are not applied again.
type Accepted struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// Error is the body of every error answer of both APIs. The status API sends only Error.
type Error struct {
	// Error says what is wrong.
	Error string `json:"error"`
	// Field names the offending field of an event as the API names it, e.g. phases[1].steps.
	Field string `json:"field,omitempty"`
	// Index is the 0-based position of the offending event in a batch (blank lines not
	// counted).
	Index *int `json:"index,omitempty"`
	// Permission is the action a 403 lacks: events:write, status:read or reports:read.
	Permission string `json:"permission,omitempty"`
	// Subject is the name the API knows the client by, in a 403 (what access rules name).
	Subject string `json:"subject,omitempty"`
	// Pipeline and Host are the target a 403 refused: a build's pipeline and host, or a
	// host alone.
	Pipeline string `json:"pipeline,omitempty"`
	Host     string `json:"host,omitempty"`
}

// LifecycleEventTypes are the event types that move a build or a phase from one state to the
// next. The events API admits them ahead of the progress events (step_completed,
// milestone_reached): a client's rate limit keeps a share of its budget for them.
var LifecycleEventTypes = []string{
	EventBuildStarted, EventPhaseStarted, EventPhaseCompleted, EventPhaseFailed,
	EventPhaseSkipped, EventBuildFinished,
}

// ProgressEventTypes are the event types that report progress inside a running phase.
var ProgressEventTypes = []string{EventStepCompleted, EventMilestoneReached}

// RateLimited is the body of the events API's 429 answer to a client past its rate limit
// (sent with a Retry-After header). It decodes as an Error too.
type RateLimited struct {
	// Error says what is wrong.
	Error string `json:"error"`
	// Limited are the event types that were refused: ProgressEventTypes when only the
	// progress share of the budget is spent, every type when the whole budget is.
	Limited []string `json:"limited"`
	// Admitted are the event types the client may still send at once: LifecycleEventTypes
	// when the share kept for them is left, none otherwise.
	Admitted []string `json:"admitted"`
	// RetryAfterSeconds repeats the Retry-After header: when the refused request would pass.
	RetryAfterSeconds int `json:"retry_after_seconds"`
}
