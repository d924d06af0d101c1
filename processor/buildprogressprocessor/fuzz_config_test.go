package buildprogressprocessor

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
	"weights:\n  BUILD: 0.5\n  TEST: '30%'\nrules:\n  - name: cpu\n    metric: cpu_usage\n    thresholds:\n      warning: 0.8\n      critical: 0.9\n",
	"rules:\n  - name: x\n    metric: build.phase.duration\n    aggregation: p95\n    window: -1s\n    for: -1s\n    thresholds:\n      critical: 1\n      info: 2\n",
	"pipelines:\n  - name: web\n    weights:\n      BUILD: -1\nmax_builds: 0\n",
}
