package buildprogressprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/buildmon/buildmon/internal/alerting"
	"github.com/buildmon/buildmon/processor/buildprogressprocessor/internal/metadata"
)

func ptr(v float64) *float64 { return &v }

func TestLoadConfig(t *testing.T) {
	etaStorage := component.MustNewIDWithName("file_storage", "eta")
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	full := &Config{
		Weights: PhaseWeights{"INIT": 0.05, "SETUP": 0.15, "BUILD": 0.5, "TEST": 0.30, "CLEANUP": 0.10, "package": 0.2},
		Pipelines: []PipelineConfig{
			{Name: "release", Weights: PhaseWeights{"TEST": 0.6, "SIGN": 0.05}},
		},
		ETA: ETAConfig{HistorySize: 50, MaxPipelines: 200, MaxPhases: 12, Estimator: "trimmed_mean",
			LearnedWeights: LearnedWeightsConfig{Enabled: true, MinRuns: 3, PriorRuns: 10}},
		Storage:        &etaStorage,
		PhaseResources: PhaseResourcesConfig{Enabled: true},
		Expiry:         30 * time.Minute,
		MaxBuilds:      500,
		Rules: []RuleConfig{
			{
				Name: "host_cpu_saturated", Metric: "cpu_usage", Aggregation: "avg",
				Window: time.Minute, Interval: 2 * time.Second, For: 2 * time.Minute, KeepFiringFor: time.Minute,
				Thresholds: ThresholdsConfig{Warning: ptr(0.90), Critical: ptr(0.98)},
			},
			{
				Name: "root_disk_free_low", Metric: "system.filesystem.utilization", Aggregation: "last",
				Match:      map[string]string{"system.filesystem.mountpoint": "/"},
				Thresholds: ThresholdsConfig{Info: ptr(0.5), Warning: ptr(0.8), Error: ptr(0.9), Critical: ptr(0.95)},
			},
			{
				Name: "build_phase_slow", Metric: "build.phase.duration", Aggregation: "max", Scope: "build",
				Match:      map[string]string{"build.phase": "BUILD"},
				Thresholds: ThresholdsConfig{Warning: ptr(600)},
			},
			{
				Name: "progress_stalled", Metric: "build.progress", Direction: "below", Aggregation: "max",
				Window: 10 * time.Minute, Thresholds: ThresholdsConfig{Warning: ptr(0.01)},
			},
		},
	}

	tests := []struct {
		id       component.ID
		expected component.Config
		err      string // exact Validate error; "unmarshal: " prefix for a decoding error
	}{
		{
			id:       component.NewID(metadata.Type),
			expected: createDefaultConfig(),
		},
		{
			id:       component.NewIDWithName(metadata.Type, "full"),
			expected: full,
		},
		{
			id: component.NewIDWithName(metadata.Type, "bad_weights"),
			err: "weights.BUILD must not be negative (got -0.4)\n" +
				"pipelines[0].name must not be empty\n" +
				"pipelines[0].weights.INIT must not be negative (got -1)\n" +
				"pipelines[2].name \"nightly\" is configured twice",
		},
		{
			id:  component.NewIDWithName(metadata.Type, "unparsable_weight"),
			err: `unmarshal: weight "heavy" is not a number or a percentage such as 40%`,
		},
		{
			id: component.NewIDWithName(metadata.Type, "bad_rule"),
			err: "rules[0].aggregation: unknown aggregation \"median\" (want last, avg, max, min or p95)\n" +
				"rules[0].window must not be negative (got -1m0s)\n" +
				"rules[0].for must not be negative (got -30s)\n" +
				"rules[0].keep_firing_for must not be negative (got -1s)\n" +
				"rules[0].direction: unknown direction \"sideways\" (want above or below)\n" +
				"rules[0].scope: unknown scope \"cluster\" (want host or build)\n" +
				"rules[1].interval: window / interval must be below 10000 slots (window 1h0m0s, interval 1ms)",
		},
		{
			id: component.NewIDWithName(metadata.Type, "thresholds_out_of_order"),
			err: "rules[0].thresholds.error (0.8) must be greater than thresholds.warning (0.9) for direction above\n" +
				"rules[1].thresholds.critical (0.2) must be less than thresholds.warning (0.1) for direction below",
		},
		{
			id: component.NewIDWithName(metadata.Type, "no_thresholds"),
			err: "rules[0].thresholds must set at least one of info, warning, error, critical\n" +
				"rules[1].name must not be empty\n" +
				"rules[1].metric must not be empty\n" +
				"rules[2].name \"mem\" is used by an earlier rule\n" +
				"rules[2].scope: host needs a host metric; build.progress is per build",
		},
		{
			id: component.NewIDWithName(metadata.Type, "bad_limits"),
			err: "eta.history_size must not be negative (got -1)\n" +
				"expiry must be positive (got 0s)\n" +
				"max_builds must be positive (got 0)",
		},
		{
			id: component.NewIDWithName(metadata.Type, "bad_eta"),
			err: "eta.history_size must be at most 1000 (got 5000)\n" +
				"eta.max_pipelines must be positive (got 0)\n" +
				"eta.max_phases must be positive (got -1)\n" +
				"eta.estimator must be median or trimmed_mean (got \"mean\")\n" +
				"eta.learned_weights.min_runs must be at least 1 (got 0)\n" +
				"eta.learned_weights.prior_runs must not be negative (got -2)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			err = sub.Unmarshal(cfg)
			if msg, ok := cutPrefix(tt.err, "unmarshal: "); ok {
				require.Error(t, err)
				assert.Contains(t, err.Error(), msg)
				return
			}
			require.NoError(t, err)
			err = confmap.Validate(cfg)
			if tt.err != "" {
				require.Error(t, err)
				assert.Equal(t, tt.err, cfg.(*Config).Validate().Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.expected, cfg)
		})
	}
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, cfg.Validate())
	assert.Equal(t, PhaseWeights{"INIT": 0.05, "SETUP": 0.15, "BUILD": 0.40, "TEST": 0.30, "CLEANUP": 0.10}, cfg.Weights)
	assert.Equal(t, ETAConfig{HistorySize: 20, MaxPipelines: 1000, MaxPhases: 32, Estimator: "median", TimeProgress: true,
		LearnedWeights: LearnedWeightsConfig{MinRuns: 5, PriorRuns: 5}}, cfg.ETA)
	assert.Nil(t, cfg.Storage)
	assert.False(t, cfg.PhaseResources.Enabled)
	assert.Equal(t, 15*time.Minute, cfg.Expiry)
	assert.Equal(t, 10000, cfg.MaxBuilds)
	assert.Empty(t, cfg.Rules)
}

func TestRuleDefaults(t *testing.T) {
	tests := []struct {
		metric         string
		window, interv time.Duration
		scope          alerting.Scope
		source         string
	}{
		{"cpu_usage", 5 * time.Minute, time.Second, alerting.ScopeHost, "system.cpu.utilization"},
		{"memory_usage", 5 * time.Minute, time.Second, alerting.ScopeHost, "system.memory.utilization"},
		{"disk_usage", time.Minute, 5 * time.Second, alerting.ScopeHost, "system.filesystem.utilization"},
		{"network_bandwidth", time.Minute, 5 * time.Second, alerting.ScopeHost, "system.network.io.rate"},
		{"io_operations", time.Minute, 5 * time.Second, alerting.ScopeHost, "system.disk.operations.rate"},
		{"system.memory.usage", 5 * time.Minute, time.Second, alerting.ScopeHost, "system.memory.usage"},
		{"system.disk.io", time.Minute, 5 * time.Second, alerting.ScopeHost, "system.disk.io"},
		{"build.phase.duration", 15 * time.Minute, 10 * time.Second, alerting.ScopeBuild, "build.phase.duration"},
		{"custom.metric", 15 * time.Minute, 10 * time.Second, alerting.ScopeHost, "custom.metric"},
	}
	for _, tt := range tests {
		t.Run(tt.metric, func(t *testing.T) {
			r, err := compileRule(0, &RuleConfig{Name: "r", Metric: tt.metric, Thresholds: ThresholdsConfig{Warning: ptr(1)}})
			require.NoError(t, err)
			assert.Equal(t, tt.window, r.Window)
			assert.Equal(t, tt.interv, r.Interval)
			assert.Equal(t, tt.scope, r.Scope)
			assert.Equal(t, tt.source, r.Metric)
			assert.Equal(t, "avg", r.Aggregation.String())
		})
	}
}
