// Package schema names the metrics and attributes of the buildmon telemetry schema
// (metadata.yaml at the repository root) for the components that read them from pdata.
package schema // import "github.com/buildmon/buildmon/internal/schema"

// Resource attributes.
const (
	AttrHostName        = "host.name"
	AttrPipelineName    = "cicd.pipeline.name"
	AttrRunID           = "cicd.pipeline.run.id"
	AttrWorkerID        = "cicd.worker.id"
	AttrRepositoryURL   = "vcs.repository.url.full"
	AttrRefHeadName     = "vcs.ref.head.name"
	AttrRefHeadRevision = "vcs.ref.head.revision"
)

// Data point attributes.
const (
	AttrCPUMode          = "cpu.mode"
	AttrMemoryState      = "system.memory.state"
	AttrDevice           = "system.device"
	AttrMountpoint       = "system.filesystem.mountpoint"
	AttrFilesystemType   = "system.filesystem.type"
	AttrFilesystemState  = "system.filesystem.state"
	AttrInterface        = "network.interface.name"
	AttrNetworkDirection = "network.io.direction"
	AttrDiskDirection    = "disk.io.direction"
	AttrPhase            = "build.phase"
	AttrPhaseState       = "build.phase.state"
	AttrBuildState       = "build.state"
	AttrPipelineResult   = "cicd.pipeline.result"
	AttrAlertRule        = "alert.rule"
	AttrAlertLevel       = "alert.level"
	AttrAlertState       = "alert.state"
	AttrETASource        = "build.eta.source"
)

// Host metrics (receiver host scraper).
const (
	MetricCPUUtilization        = "system.cpu.utilization"
	MetricMemoryUsage           = "system.memory.usage"
	MetricMemoryUtilization     = "system.memory.utilization"
	MetricFilesystemUsage       = "system.filesystem.usage"
	MetricFilesystemUtilization = "system.filesystem.utilization"
	MetricNetworkIO             = "system.network.io"
	MetricNetworkIORate         = "system.network.io.rate"
	MetricDiskIO                = "system.disk.io"
	MetricDiskOperations        = "system.disk.operations"
	MetricDiskOperationsRate    = "system.disk.operations.rate"
)

// Build metrics (receiver events API).
const (
	MetricPhaseStepsTotal     = "build.phase.steps.total"
	MetricPhaseStepsCompleted = "build.phase.steps.completed"
	MetricPhaseState          = "build.phase.state"
	MetricPhaseDuration       = "build.phase.duration"
	MetricPhaseStartTime      = "build.phase.start_time"
	MetricPhaseWeight         = "build.phase.weight"
	MetricBuildState          = "build.state"
	MetricBuildResult         = "build.result"
	MetricBuildDuration       = "build.duration"
	MetricBuildStartTime      = "build.start_time"
)

// Metrics derived by the buildprogress processor.
const (
	MetricPhaseProgress       = "build.phase.progress"
	MetricBuildProgress       = "build.progress"
	MetricBuildETA            = "build.eta"
	MetricBuildPaused         = "build.paused"
	MetricAlertActive         = "build.alert.active"
	MetricAlertValue          = "build.alert.value"
	MetricPhaseCPUAvg         = "build.phase.cpu.utilization.avg"
	MetricPhaseCPUMax         = "build.phase.cpu.utilization.max"
	MetricPhaseMemoryMax      = "build.phase.memory.usage.max"
	MetricPhaseDiskIO         = "build.phase.disk.io"
	MetricPhaseNetworkIO      = "build.phase.network.io"
	MetricPhaseDiskOperations = "build.phase.disk.operations"
)

// Metrics of the collector itself, emitted by the buildmon receiver.
const (
	MetricSelfProtectionActive = "buildmon.self_protection.active"
	AttrSelfProtectionMeasure  = "self_protection.measure"
)

// Phase states (values of build.phase.state).
const (
	PhasePending   = "pending"
	PhaseRunning   = "running"
	PhaseCompleted = "completed"
	PhaseFailed    = "failed"
	PhaseSkipped   = "skipped"
)

// Values of the other enumerated attributes that the components compare with.
const (
	BuildStateRunning  = "running"  // build.state
	BuildStateFinished = "finished" // build.state
	ResultSuccess      = "success"  // cicd.pipeline.result
	CPUModeBusy        = "busy"     // cpu.mode
	MemoryStateUsed    = "used"     // system.memory.state
	DiskRead           = "read"     // disk.io.direction
	DiskWrite          = "write"    // disk.io.direction
	NetworkTransmit    = "transmit" // network.io.direction
	NetworkReceive     = "receive"  // network.io.direction
	AlertStatePending  = "pending"  // alert.state
	AlertStateFiring   = "firing"   // alert.state
	ETASourceHistory   = "history"  // build.eta.source
	ETASourceRate      = "rate"     // build.eta.source
	ETASourceBlend     = "blend"    // build.eta.source
)
