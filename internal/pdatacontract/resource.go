package pdatacontract // import "github.com/buildmon/buildmon/internal/pdatacontract"

import (
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/buildmon/buildmon/internal/schema"
)

// Kind says whose telemetry a resource carries.
type Kind uint8

const (
	// Other is a resource that is neither a build nor a host: the components pass it on
	// untouched.
	Other Kind = iota
	// Build is a resource with a cicd.pipeline.run.id: one build (host.name, when present,
	// is the host it runs on).
	Build
	// Host is a resource with a host.name and no run id: the host's own metrics.
	Host
)

// Classify returns what a resource is and its key: the run id of a build, the host name of
// a host, "" for Other.
func Classify(resource pcommon.Map) (Kind, string) {
	if id := Str(resource, schema.AttrRunID); id != "" {
		return Build, id
	}
	if host := Str(resource, schema.AttrHostName); host != "" {
		return Host, host
	}
	return Other, ""
}

// Resource is the identity of a build as its resource attributes carry it.
type Resource struct {
	RunID      string // cicd.pipeline.run.id
	Pipeline   string // cicd.pipeline.name
	Host       string // host.name
	Worker     string // cicd.worker.id
	Repository string // vcs.repository.url.full
	Branch     string // vcs.ref.head.name
	Revision   string // vcs.ref.head.revision
}

// ReadResource reads a build's identity from its resource attributes. The strings share
// memory with the pdata they were read from: clone those that are kept beyond the batch.
func ReadResource(resource pcommon.Map) Resource {
	return Resource{
		RunID:      Str(resource, schema.AttrRunID),
		Pipeline:   Str(resource, schema.AttrPipelineName),
		Host:       Str(resource, schema.AttrHostName),
		Worker:     Str(resource, schema.AttrWorkerID),
		Repository: Str(resource, schema.AttrRepositoryURL),
		Branch:     Str(resource, schema.AttrRefHeadName),
		Revision:   Str(resource, schema.AttrRefHeadRevision),
	}
}
