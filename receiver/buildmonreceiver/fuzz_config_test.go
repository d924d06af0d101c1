package buildmonreceiver

import (
	"testing"

	"github.com/buildmon/buildmon/internal/configfuzz"
)

// FuzzConfig unmarshals arbitrary YAML into the component's config and validates it.
func FuzzConfig(f *testing.F) {
	configfuzz.Fuzz(f, NewFactory().CreateDefaultConfig,
		"events:\n  endpoint: 127.0.0.1:1\nreport_interval: 1s\nmax_builds: 5\n",
		"rate_limit:\n  events_per_second: -3\n  burst: 0\nhost:\n  root_path: relative\n  disks:\n    include: ['(']\n",
		"metrics:\n  build.progress:\n    enabled: false\nstorage: file_storage/x\n",
	)
}
