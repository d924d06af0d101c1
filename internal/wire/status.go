package wire

// BuildStatus is the real-time status of one build: the body of GET /v1/builds/{id}. Times
// are RFC 3339 in UTC.
type BuildStatus struct {
	ID         string `json:"id"`
	Pipeline   string `json:"pipeline"`
	Host       string `json:"host"`
	Worker     string `json:"worker,omitempty"`
	Repository string `json:"repository,omitempty"`
	Branch     string `json:"branch,omitempty"`
	Revision   string `json:"revision,omitempty"`
	// State is BuildRunning or BuildFinished; Result is empty until the build finished.
	State  string `json:"state"`
	Result string `json:"result"`
	// Phase is the current phase: the running one (the first in plan order), else the last
	// phase that ended.
	Phase string `json:"phase"`
	// Progress (0–1), ProgressPercent, the phases' progress and ETASeconds are the
	// buildprogress processor's build.progress, build.phase.progress and build.eta.
	Progress        float64 `json:"progress"`
	ProgressPercent float64 `json:"progress_percent"`
	// ETASeconds is null while the processor sent none.
	ETASeconds *float64 `json:"eta_seconds"`
	// ETASource is the estimate ETASeconds comes from (build.eta.source): ETASourceHistory,
	// ETASourceRate or ETASourceBlend; empty while unknown.
	ETASource string `json:"eta_source,omitempty"`
	// Derived is false while no build.progress arrived for the build (the buildprogress
	// processor is not in the pipeline, or has not seen the build); Note then says so.
	Derived bool   `json:"derived"`
	Note    string `json:"note,omitempty"`
	// Paused asks the build to pause: a CRITICAL alert on the build or its host.
	Paused bool `json:"paused"`
	// Alerts are the pending and firing alerts of the build and of its host.
	Alerts []AlertStatus `json:"alerts"`
	// ActiveOperations are the phases running now.
	ActiveOperations []string      `json:"active_operations"`
	Phases           []PhaseStatus `json:"phases"`
	DurationSeconds  float64       `json:"duration_seconds"`
	// StartedAt is the receiver's build start time, absent while none arrived.
	StartedAt  string `json:"started_at,omitempty"`
	FinishedAt string `json:"finished_at,omitempty"`
	// HostResources is the latest utilization of the build's host, null while unknown.
	HostResources *HostResources `json:"host_resources"`
	Reports       ReportLinks    `json:"reports"`
	// UpdatedAt is the newest data point timestamp applied to the build.
	UpdatedAt string `json:"updated_at"`
}

// PhaseStatus is one phase of a build in its status.
type PhaseStatus struct {
	Name string `json:"name"`
	// State is one of the Phase… constants.
	State string `json:"state"`
	// StepsTotal is 0 while the number of steps is unknown.
	StepsTotal      int64   `json:"steps_total"`
	StepsCompleted  int64   `json:"steps_completed"`
	Progress        float64 `json:"progress"`
	DurationSeconds float64 `json:"duration_seconds"`
	// Weight is the weight the build's plan gave the phase, if any.
	Weight *float64 `json:"weight,omitempty"`
	// StartedAt is the receiver's phase start time, absent while none arrived.
	StartedAt string `json:"started_at,omitempty"`
	EndedAt   string `json:"ended_at,omitempty"`
	// Resources is what the host spent while the phase ran: of an ended phase as in its
	// report, of the running phase so far (the exporter's own figures); absent while the
	// phase is pending or nothing is known.
	Resources *PhaseResources `json:"resources,omitempty"`
}

// Sources of PhaseResources.
const (
	// ResourcesProcessor: the buildprogress processor's per-phase aggregates (build.phase.*).
	ResourcesProcessor = "processor"
	// ResourcesHostMetrics: the checkpoint exporter's own attribution from the host metrics.
	ResourcesHostMetrics = "host_metrics"
	// ResourcesMixed: a build whose phases have figures from both sources.
	ResourcesMixed = "mixed"
	// ResourcesNone: no figures.
	ResourcesNone = "none"
)

// PhaseResources is what a host spent while a phase (or a build) ran, the "resources" of the
// phase and build reports; fields are null when unknown.
type PhaseResources struct {
	// Source is one of the Resources… constants.
	Source               string   `json:"source"`
	CPUUtilizationAvg    *float64 `json:"cpu_utilization_avg"`
	CPUUtilizationMax    *float64 `json:"cpu_utilization_max"`
	MemoryUsageMaxBytes  *int64   `json:"memory_usage_max_bytes"`
	DiskReadBytes        *int64   `json:"disk_read_bytes"`
	DiskWriteBytes       *int64   `json:"disk_write_bytes"`
	NetworkTransmitBytes *int64   `json:"network_transmit_bytes"`
	NetworkReceiveBytes  *int64   `json:"network_receive_bytes"`
	DiskReadOperations   *int64   `json:"disk_read_operations"`
	DiskWriteOperations  *int64   `json:"disk_write_operations"`
}

// AlertStatus is a pending or firing alert in a status document.
type AlertStatus struct {
	Rule string `json:"rule"`
	// Level is INFO, WARNING, ERROR or CRITICAL.
	Level string `json:"level"`
	// State is pending or firing.
	State string `json:"state"`
	// Value is the value of the rule's metric that the alert was evaluated on.
	Value float64 `json:"value"`
	// Scope is ScopeBuild or ScopeHost.
	Scope string `json:"scope"`
	Since string `json:"since,omitempty"`
}

// HostResources is the latest resource utilization of a host; fields are null while unknown.
type HostResources struct {
	CPUUtilization         *float64 `json:"cpu_utilization"`
	MemoryUtilization      *float64 `json:"memory_utilization"`
	MemoryUsedBytes        *int64   `json:"memory_used_bytes"`
	MemoryTotalBytes       *int64   `json:"memory_total_bytes"`
	FilesystemUtilization  *float64 `json:"filesystem_utilization"`
	FilesystemMountpoint   string   `json:"filesystem_mountpoint,omitempty"`
	NetworkTransmitBytesPS *float64 `json:"network_transmit_bytes_per_second"`
	NetworkReceiveBytesPS  *float64 `json:"network_receive_bytes_per_second"`
	DiskReadOpsPS          *float64 `json:"disk_read_operations_per_second"`
	DiskWriteOpsPS         *float64 `json:"disk_write_operations_per_second"`
	UpdatedAt              string   `json:"updated_at,omitempty"`
}

// ReportLinks are the status API paths of a build's reports: of every phase that ended (by
// phase name) and, once it finished, of the build.
type ReportLinks struct {
	Build  string            `json:"build,omitempty"`
	Phases map[string]string `json:"phases,omitempty"`
}

// BuildSummary is one build in the build list.
type BuildSummary struct {
	ID        string  `json:"id"`
	Pipeline  string  `json:"pipeline"`
	Host      string  `json:"host"`
	State     string  `json:"state"`
	Result    string  `json:"result"`
	Phase     string  `json:"phase"`
	Progress  float64 `json:"progress"`
	Derived   bool    `json:"derived"`
	Paused    bool    `json:"paused"`
	UpdatedAt string  `json:"updated_at"`
}

// BuildList is the body of GET /v1/builds: the builds sorted by id.
type BuildList struct {
	Builds []BuildSummary `json:"builds"`
	Count  int            `json:"count"`
}

// HostStatus is one host: the body of GET /v1/hosts/{name}.
type HostStatus struct {
	Name      string        `json:"name"`
	Resources HostResources `json:"resources"`
	Alerts    []AlertStatus `json:"alerts"`
	// Builds are the ids of the builds running on the host.
	Builds    []string `json:"builds"`
	UpdatedAt string   `json:"updated_at"`
}

// HostList is the body of GET /v1/hosts: the hosts sorted by name.
type HostList struct {
	Hosts []HostStatus `json:"hosts"`
	Count int          `json:"count"`
}
