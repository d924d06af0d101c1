// Package configfuzz is the shared fuzz target of the components' configurations: arbitrary
// YAML is unmarshalled into a default config and validated, and a bad config must be an
// error, never a panic.
package configfuzz // import "github.com/buildmon/buildmon/internal/configfuzz"

import (
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"
)

// Fuzz runs the target with the seeds (YAML documents) as its corpus.
func Fuzz(f *testing.F, newConfig func() component.Config, seeds ...string) {
	for _, seed := range seeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(_ *testing.T, raw []byte) {
		var m map[string]any
		if yaml.Unmarshal(raw, &m) != nil {
			return
		}
		cfg := newConfig()
		if confmap.NewFromStringMap(m).Unmarshal(cfg) != nil {
			return
		}
		_ = confmap.Validate(cfg)
	})
}
