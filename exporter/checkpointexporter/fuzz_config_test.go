package checkpointexporter

import (
	"testing"

	"github.com/buildmon/buildmon/internal/configfuzz"
)

// FuzzConfig unmarshals arbitrary YAML into the exporter's config and validates it.
func FuzzConfig(f *testing.F) {
	configfuzz.Fuzz(f, NewFactory().CreateDefaultConfig,
		"directory: ./ckpt\ninterval: 1s\ngenerations: 3\nstatus:\n  endpoint: 127.0.0.1:1\n",
		"interval: -1s\ngenerations: 0\nencryption:\n  key_file: /nope\n  key_env: X\nretention:\n  finished_builds: -1h\n",
		"alertmanager:\n  endpoint: ''\n  min_level: LOUD\nmax_builds: -5\naudit_log:\n  max_bytes: -1\n",
	)
}
