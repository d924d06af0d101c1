package metadata // import "github.com/buildmon/buildmon/internal/metadata"

// ScopeName is the instrumentation scope of the schema's metrics. mdatagen writes it into
// generated_status.go only for components; the schema is a package (class pkg), so it is
// declared here, in the one hand-written file of this package.
const ScopeName = "github.com/buildmon/buildmon"
