package buildprogressprocessor

import (
	"testing"

	"github.com/buildmon/buildmon/internal/configfuzz"
)

// FuzzConfig unmarshals arbitrary YAML into the component's config and validates it.
func FuzzConfig(f *testing.F) {
	configfuzz.Fuzz(f, NewFactory().CreateDefaultConfig,
		"weights:\n  BUILD: 0.5\n  TEST: '30%'\nrules:\n  - name: cpu\n    metric: cpu_usage\n    thresholds:\n      warning: 0.8\n      critical: 0.9\n",
		"rules:\n  - name: x\n    metric: build.phase.duration\n    aggregation: p95\n    window: -1s\n    for: -1s\n    thresholds:\n      critical: 1\n      info: 2\n",
		"pipelines:\n  - name: web\n    weights:\n      BUILD: -1\nmax_builds: 0\n",
	)
}
