//go:build e2e

package e2e

import (
	"path/filepath"
	"testing"
	"time"
)

// TestDefaultConfig starts the distribution exactly as `make run` does: the default config
// serves host metrics on the Prometheus endpoint within seconds, and SIGTERM ends it with 0.
func TestDefaultConfig(t *testing.T) {
	cfg := filepath.Join(repoRoot(t), "testdata", "config.yaml")
	c := startCollector(t, cfg, t.TempDir(), "http://127.0.0.1:13133/")

	const prom = "http://127.0.0.1:9464/metrics"
	for _, metric := range []string{"system_cpu_utilization", "system_memory_usage", "system_memory_utilization"} {
		eventually(t, 15*time.Second, func() error {
			_, err := scrapeMetric(prom, metric, `host_name="`)
			return err
		})
	}
	// Resource metrics come every 5 s by default.
	for _, metric := range []string{"system_network_io", "system_filesystem_utilization"} {
		eventually(t, 20*time.Second, func() error {
			_, err := scrapeMetric(prom, metric)
			return err
		})
	}
	c.stop()
}
