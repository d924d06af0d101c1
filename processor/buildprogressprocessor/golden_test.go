package buildprogressprocessor

import (
	"flag"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/internal/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

func phases5(init, setup, build, test, cleanup phaseIn) []phaseIn {
	init.name, setup.name, build.name, test.name, cleanup.name = "INIT", "SETUP", "BUILD", "TEST", "CLEANUP"
	return []phaseIn{init, setup, build, test, cleanup}
}

func completed(steps int64) phaseIn { return phaseIn{state: "completed", total: steps, done: steps} }
func pending(steps int64) phaseIn   { return phaseIn{state: "pending", total: steps} }

// goldenCase is a sequence of batches through one processor; the output of batch i is
// compared with testdata/golden/<name>/batch<i>.yaml.
type goldenCase struct {
	name    string
	cfg     func(*Config)
	batches []func() (time.Time, pmetric.Metrics)
	// check makes explicit assertions on the outputs (so that a golden file is not trusted
	// blindly).
	check func(t *testing.T, outs []pmetric.Metrics)
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{
			name: "progress",
			cfg: func(cfg *Config) {
				cfg.Pipelines = []PipelineConfig{{Name: "release", Weights: PhaseWeights{"BUILD": 0.6}}}
			},
			batches: []func() (time.Time, pmetric.Metrics){
				func() (time.Time, pmetric.Metrics) {
					at := t0.Add(2 * time.Minute)
					return at, batch([]buildIn{
						{id: "ci-41", pipeline: "ci", host: "h1", at: at, duration: 600, finished: true, result: "success",
							phases: phases5(completed(1), completed(2), completed(10), completed(2), completed(1))},
						{id: "ci-42", pipeline: "ci", host: "h1", at: at, duration: 120,
							phases: phases5(completed(1), completed(2), phaseIn{state: "running", total: 10, done: 5}, pending(2), pending(1))},
						{id: "rel-7", pipeline: "release", host: "h2", at: at, duration: 30, phases: []phaseIn{
							{name: "BUILD", state: "running", total: 4, done: 3},
							{name: "PACKAGE", state: "pending"},
							{name: "TEST", state: "skipped"},
						}},
						{id: "plan-1", pipeline: "ci", host: "h2", at: at, duration: 50, finished: true, result: "failure", phases: []phaseIn{
							{name: "COMPILE", state: "completed", total: 3, done: 3, weight: 0.7},
							{name: "VERIFY", state: "failed", total: 4, done: 1, weight: 0.3},
						}},
						{id: "noplan-1", pipeline: "adhoc", host: "h2", at: at, duration: 5},
					})
				},
				func() (time.Time, pmetric.Metrics) {
					at := t0.Add(3 * time.Minute)
					// BUILD's step count grows: its computed share falls from 5/10 to 6/20.
					return at, batch([]buildIn{
						{id: "ci-42", pipeline: "ci", host: "h1", at: at, duration: 180,
							phases: phases5(completed(1), completed(2), phaseIn{state: "running", total: 20, done: 6}, pending(2), pending(1))},
					})
				},
			},
			check: func(t *testing.T, outs []pmetric.Metrics) {
				ci42 := derived(t, outs[0], schema.AttrRunID, "ci-42")
				assert.InDelta(t, 0.4, ci42[schema.MetricBuildProgress].At(0).DoubleValue(), 1e-9)
				// ci-41 is not history: the processor never saw it run (a finished build sent
				// again after a restart must not count twice). Own rate 0.4/120 s: 0.6 × 120 / 0.4.
				assert.InDelta(t, 0.6*120/0.4, ci42[schema.MetricBuildETA].At(0).DoubleValue(), 1e-6)
				etaRate, _ := pointValue(t, ci42[schema.MetricBuildETA], schema.AttrETASource, "rate")
				assert.InDelta(t, 180.0, etaRate, 1e-6)
				rel7 := derived(t, outs[0], schema.AttrRunID, "rel-7")
				// BUILD 0.6 (pipeline), TEST 0.3 (global), PACKAGE the mean 0.45.
				assert.InDelta(t, (0.6*0.75+0.3)/1.35, rel7[schema.MetricBuildProgress].At(0).DoubleValue(), 1e-9)
				plan := derived(t, outs[0], schema.AttrRunID, "plan-1")
				assert.InDelta(t, 0.7+0.3*0.25, plan[schema.MetricBuildProgress].At(0).DoubleValue(), 1e-9)
				assert.InDelta(t, 0.0, plan[schema.MetricBuildETA].At(0).DoubleValue(), 0)
				noplan := derived(t, outs[0], schema.AttrRunID, "noplan-1")
				assert.InDelta(t, 0.0, noplan[schema.MetricBuildProgress].At(0).DoubleValue(), 0)
				assert.NotContains(t, noplan, schema.MetricBuildETA, "ETA unknown: no progress, no history")
				ci41 := derived(t, outs[0], schema.AttrRunID, "ci-41")
				assert.InDelta(t, 1.0, ci41[schema.MetricBuildProgress].At(0).DoubleValue(), 0)

				later := derived(t, outs[1], schema.AttrRunID, "ci-42")
				assert.InDelta(t, 0.4, later[schema.MetricBuildProgress].At(0).DoubleValue(), 1e-9, "never decreases")
				v, _ := pointValue(t, later[schema.MetricPhaseProgress], schema.AttrPhase, "BUILD")
				assert.InDelta(t, 0.5, v, 1e-9)
			},
		},
		{
			name: "host_alert_pause",
			cfg: func(cfg *Config) {
				cfg.Rules = []RuleConfig{
					{Name: "net_flood", Metric: "network_bandwidth", Aggregation: "max", Window: 3 * time.Second,
						Thresholds: ThresholdsConfig{Critical: ptr(1e8)}},
					{Name: "cpu_busy", Metric: "cpu_usage", Aggregation: "last", For: 10 * time.Second,
						Thresholds: ThresholdsConfig{Warning: ptr(0.8), Error: ptr(0.9)}},
					{Name: "disk_half_full", Metric: "disk_usage", Aggregation: "last",
						Thresholds: ThresholdsConfig{Info: ptr(0.5)}},
					{Name: "build_phase_slow", Metric: "build.phase.duration", Aggregation: "last",
						Match: map[string]string{"build.phase": "BUILD"}, Thresholds: ThresholdsConfig{Warning: ptr(60)}},
				}
			},
			batches: []func() (time.Time, pmetric.Metrics){
				func() (time.Time, pmetric.Metrics) {
					return t0, batch([]buildIn{{id: "b-1", pipeline: "ci", host: "h1", at: t0, duration: 30,
						phases: []phaseIn{{name: "BUILD", state: "running", total: 10, done: 2, duration: 30}}}},
						hostIn{name: "h1", at: t0, cpu: 0.85, netRate: 1e3, fsUtil: [2]float64{0.6, 0.2}})
				},
				func() (time.Time, pmetric.Metrics) {
					at := t0.Add(5 * time.Second)
					return at, batch(nil, hostIn{name: "h1", at: at, cpu: 0.95, netRate: 5e8, fsUtil: [2]float64{0.6, 0.2}})
				},
				func() (time.Time, pmetric.Metrics) {
					at := t0.Add(12 * time.Second)
					return at, batch([]buildIn{{id: "b-1", pipeline: "ci", host: "h1", at: at, duration: 75,
						phases: []phaseIn{{name: "BUILD", state: "running", total: 10, done: 4, duration: 75}}}},
						hostIn{name: "h1", at: at, cpu: 0.95, netRate: 5e8, fsUtil: [2]float64{0.6, 0.2}})
				},
				func() (time.Time, pmetric.Metrics) {
					at := t0.Add(20 * time.Second)
					return at, batch(nil, hostIn{name: "h1", at: at, cpu: 0.2, netRate: 1e3, fsUtil: [2]float64{0.6, 0.2}})
				},
			},
			check: func(t *testing.T, outs []pmetric.Metrics) {
				// Batch 1: cpu_busy pending at WARNING; INFO disk alert not in telemetry.
				host := derived(t, outs[0], schema.AttrHostName, "h1")
				v, ok := pointValue(t, host[schema.MetricAlertActive], schema.AttrAlertRule, "cpu_busy", schema.AttrAlertState, "pending")
				assert.True(t, ok)
				assert.InDelta(t, 1.0, v, 0)
				_, ok = pointValue(t, host[schema.MetricAlertActive], schema.AttrAlertRule, "disk_half_full")
				assert.False(t, ok)
				// Batch 2: CRITICAL fires on the host; the build, absent from the batch, gets a
				// pause notice.
				assert.Equal(t, 2, outs[1].ResourceMetrics().Len())
				b1 := derived(t, outs[1], schema.AttrRunID, "b-1")
				assert.Equal(t, int64(1), b1[schema.MetricBuildPaused].At(0).IntValue())
				// Batch 3: cpu_busy fires at ERROR after `for`; the build alert shows on the build.
				host = derived(t, outs[2], schema.AttrHostName, "h1")
				v, _ = pointValue(t, host[schema.MetricAlertActive], schema.AttrAlertRule, "cpu_busy", schema.AttrAlertLevel, "ERROR", schema.AttrAlertState, "firing")
				assert.InDelta(t, 1.0, v, 0)
				b1 = derived(t, outs[2], schema.AttrRunID, "b-1")
				v, _ = pointValue(t, b1[schema.MetricAlertActive], schema.AttrAlertRule, "build_phase_slow", schema.AttrAlertState, "firing")
				assert.InDelta(t, 1.0, v, 0)
				assert.Equal(t, int64(1), b1[schema.MetricBuildPaused].At(0).IntValue())
				// Batch 4: both host alerts resolve and are retracted with 0; the build unpauses.
				host = derived(t, outs[3], schema.AttrHostName, "h1")
				v, _ = pointValue(t, host[schema.MetricAlertActive], schema.AttrAlertRule, "net_flood", schema.AttrAlertLevel, "CRITICAL")
				assert.InDelta(t, 0.0, v, 0)
				b1 = derived(t, outs[3], schema.AttrRunID, "b-1")
				assert.Equal(t, int64(0), b1[schema.MetricBuildPaused].At(0).IntValue())
			},
		},
		{
			name: "phase_resources",
			cfg:  func(cfg *Config) { cfg.PhaseResources.Enabled = true },
			batches: []func() (time.Time, pmetric.Metrics){
				func() (time.Time, pmetric.Metrics) {
					return t0, batch([]buildIn{{id: "r-1", pipeline: "ci", host: "h2", at: t0,
						phases: []phaseIn{{name: "BUILD", state: "running", total: 2}, {name: "TEST", state: "pending", total: 1}}}},
						hostIn{name: "h2", at: t0, cpu: 0.5, memUsed: 1000, diskTotal: 1000, netTotal: 500, opsTotal: 10})
				},
				func() (time.Time, pmetric.Metrics) {
					at := t0.Add(5 * time.Second)
					return at, batch(nil, hostIn{name: "h2", at: at, cpu: 0.9, memUsed: 3000, diskTotal: 5000, netTotal: 1500, opsTotal: 50})
				},
				func() (time.Time, pmetric.Metrics) {
					at := t0.Add(10 * time.Second)
					return at, batch(nil, hostIn{name: "h2", at: at, cpu: 0.7, memUsed: 2000, diskTotal: 6000, netTotal: 2500, opsTotal: 60})
				},
				func() (time.Time, pmetric.Metrics) {
					at := t0.Add(12 * time.Second)
					return at, batch([]buildIn{{id: "r-1", pipeline: "ci", host: "h2", at: at, duration: 12,
						phases: []phaseIn{{name: "BUILD", state: "completed", total: 2, done: 2, duration: 12}, {name: "TEST", state: "running", total: 1}}}})
				},
			},
			check: func(t *testing.T, outs []pmetric.Metrics) {
				for i := 0; i < 3; i++ {
					assert.NotContains(t, derived(t, outs[i], schema.AttrRunID, "r-1"), schema.MetricPhaseCPUAvg)
				}
				r := derived(t, outs[3], schema.AttrRunID, "r-1")
				v, _ := pointValue(t, r[schema.MetricPhaseCPUAvg], schema.AttrPhase, "BUILD")
				assert.InDelta(t, 0.7, v, 1e-9)
				v, _ = pointValue(t, r[schema.MetricPhaseCPUMax], schema.AttrPhase, "BUILD")
				assert.InDelta(t, 0.9, v, 1e-9)
				v, _ = pointValue(t, r[schema.MetricPhaseMemoryMax], schema.AttrPhase, "BUILD")
				assert.InDelta(t, 3000.0, v, 0)
				v, _ = pointValue(t, r[schema.MetricPhaseDiskIO], schema.AttrPhase, "BUILD", schema.AttrDiskDirection, "write")
				assert.InDelta(t, 5000.0, v, 0)
				v, _ = pointValue(t, r[schema.MetricPhaseNetworkIO], schema.AttrPhase, "BUILD", schema.AttrNetworkDirection, "receive")
				assert.InDelta(t, 2000.0, v, 0)
				v, _ = pointValue(t, r[schema.MetricPhaseDiskOperations], schema.AttrPhase, "BUILD", schema.AttrDiskDirection, "read")
				assert.InDelta(t, 50.0, v, 0)
			},
		},
	}
}

// TestGolden runs each case through a processor made by the factory and compares every
// output batch with its golden file (go test -run TestGolden -update rewrites them).
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			require.NoError(t, cfg.Validate())
			h := newHarness(t, cfg)
			var outs []pmetric.Metrics
			for i, next := range tc.batches {
				at, md := next()
				out := h.consume(at, md)
				outs = append(outs, out)
				file := filepath.Join("testdata", "golden", tc.name, fmt.Sprintf("batch%d.yaml", i+1))
				if *update {
					require.NoError(t, golden.WriteMetricsToFile(file, out, golden.SkipMetricTimestampNormalization()))
					continue
				}
				expected, err := golden.ReadMetrics(file)
				require.NoError(t, err)
				require.NoError(t, pmetrictest.CompareMetrics(expected, out,
					pmetrictest.IgnoreResourceMetricsOrder(), pmetrictest.IgnoreMetricsOrder(), pmetrictest.IgnoreMetricDataPointsOrder()), "batch %d", i+1)
			}
			tc.check(t, outs)
		})
	}
}
