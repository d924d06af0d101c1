package buildmonreceiver

import (
	"testing"

	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"
)

// FuzzConfig unmarshals arbitrary YAML into the component's config and validates it: a bad
// config is an error, never a panic.
func FuzzConfig(f *testing.F) {
	for _, seed := range fuzzConfigSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var m map[string]any
		if yaml.Unmarshal(raw, &m) != nil {
			return
		}
		cfg := NewFactory().CreateDefaultConfig()
		if confmap.NewFromStringMap(m).Unmarshal(cfg) != nil {
			return
		}
		_ = confmap.Validate(cfg)
	})
}

var fuzzConfigSeeds = []string{
	"events:\n  endpoint: 127.0.0.1:1\nreport_interval: 1s\nmax_builds: 5\n",
	"rate_limit:\n  events_per_second: -3\n  burst: 0\nhost:\n  root_path: relative\n  disks:\n    include: ['(']\n",
	"metrics:\n  build.progress:\n    enabled: false\nstorage: file_storage/x\n",
}
