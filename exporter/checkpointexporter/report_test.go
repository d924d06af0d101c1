package checkpointexporter

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite the golden report files in testdata/reports")

// reportTimeline drives one build through INIT, BUILD (with a host alert and a build alert
// while it runs, and the processor's per-phase aggregates when it ends) and a failing TEST.
func reportTimeline(h *harness) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	// The receiver's start times: the build and INIT at 0, BUILD at 5, TEST at 60.
	b := buildSpec{id: "golden-1", pipeline: "service-a", host: "host-a", processed: true, start: at(0), etaSource: "history"}

	b.at, b.duration, b.progress, b.eta = at(10), 10, 0.25, 40
	b.phases = []phaseSpec{
		{name: "INIT", state: "completed", total: 1, completed: 1, duration: 5, progress: 1, start: at(0)},
		{name: "BUILD", state: "running", total: 4, completed: 2, duration: 5, progress: 0.5, start: at(5)},
		{name: "TEST", state: "pending", total: 2, progress: 0},
	}
	b.alerts = []alertSpec{{rule: "build_slow", level: "WARNING", state: "firing", active: 1, value: 1.5}}
	h.consume(b.metrics())
	h.consume(hostSpec{name: "host-a", at: at(10), cpu: 0.6, memUtil: 0.5,
		alerts: []alertSpec{{rule: "host_cpu_saturated", level: "CRITICAL", state: "firing", active: 1, value: 0.96}}}.metrics())
	h.consume(hostSpec{name: "host-a", at: at(20), cpu: 0.8, memUtil: 0.55}.metrics())

	b.at, b.duration, b.progress, b.eta, b.alerts = at(60), 60, 0.85, 10, nil
	b.phases[1] = phaseSpec{name: "BUILD", state: "completed", total: 4, completed: 4, duration: 55, progress: 1, resources: true, start: at(5)}
	b.phases[2] = phaseSpec{name: "TEST", state: "running", total: 2, progress: 0, start: at(60)}
	h.consume(b.metrics())

	b.at, b.duration = at(80), 80
	b.phases[2] = phaseSpec{name: "TEST", state: "failed", total: 2, completed: 1, duration: 20, progress: 0.5, start: at(60)}
	h.consume(b.metrics())

	b.at, b.finished, b.result, b.duration = at(90), true, "failure", 90
	h.consume(b.metrics())
}

// normalizeGenerated replaces generated_at, the time of the flush that wrote the report
// (phase completions trigger flushes that race with the test's clock), with a fixed value.
func normalizeGenerated(t *testing.T, b []byte) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	require.NotEmpty(t, m["generated_at"])
	m["generated_at"] = "2025-03-01T12:00:00Z"
	out, err := json.MarshalIndent(m, "", "  ")
	require.NoError(t, err)
	return append(out, '\n')
}

func TestReportsGolden(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, testConfig(dir), nil).mustStart()
	reportTimeline(h)
	h.tick()
	for file, golden := range map[string]string{
		"build.json":       "build.golden.json",
		"phase-BUILD.json": "phase-BUILD.golden.json",
		"phase-TEST.json":  "phase-TEST.golden.json",
	} {
		got, err := os.ReadFile(filepath.Join(dir, reportsDir, "golden-1", file))
		require.NoError(t, err)
		got = normalizeGenerated(t, got)
		path := filepath.Join("testdata", "reports", golden)
		if *updateGolden {
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o750))
			require.NoError(t, os.WriteFile(path, got, 0o600))
		}
		want, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.JSONEq(t, string(want), string(got), file)

		// The status API serves the same document.
		phase := map[string]string{"build.json": "", "phase-BUILD.json": "BUILD", "phase-TEST.json": "TEST"}[file]
		apiPath := "/v1/builds/golden-1/report"
		if phase != "" {
			apiPath = "/v1/builds/golden-1/phases/" + phase + "/report"
		}
		code, body := h.get(apiPath)
		require.Equal(t, 200, code)
		assert.JSONEq(t, string(want), string(normalizeGenerated(t, body)), apiPath)
	}
}
