package buildprogressprocessor // import "github.com/buildmon/buildmon/processor/buildprogressprocessor"

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/buildmon/buildmon/internal/alerting"
)

// Config is the configuration of the buildprogress processor. Every default is set in
// createDefaultConfig; README.md documents every key.
type Config struct {
	// Weights are the phase weights of overall progress (phase name → weight, matched
	// case-insensitively). Configured keys are merged into the seed's defaults (INIT 5%,
	// SETUP 15%, BUILD 40%, TEST 30%, CLEANUP 10%). Weights need not sum to 1: they are
	// renormalised over the phases each build has.
	Weights PhaseWeights `mapstructure:"weights"`
	// Pipelines override weights per pipeline (matched on cicd.pipeline.name). A build's own
	// build.phase.weight metrics win over both.
	Pipelines []PipelineConfig `mapstructure:"pipelines"`
	// ETA configures the ETA estimate.
	ETA ETAConfig `mapstructure:"eta"`
	// PhaseResources configures per-phase resource attribution (opt-in).
	PhaseResources PhaseResourcesConfig `mapstructure:"phase_resources"`
	// Rules are the threshold alert rules.
	Rules []RuleConfig `mapstructure:"rules"`
	// Expiry is how long the processor keeps a build, host or alert series that sends no
	// data (finished builds included).
	Expiry time.Duration `mapstructure:"expiry"`
	// MaxBuilds bounds the builds held at once; beyond it the least recently seen is dropped.
	MaxBuilds int `mapstructure:"max_builds"`
	// Storage is the storage extension (e.g. file_storage) that keeps the ETA history across
	// restarts; without it the history lives in memory only.
	Storage *component.ID `mapstructure:"storage"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// PhaseWeights maps phase names to weights.
type PhaseWeights map[string]Weight

// Weight is a phase weight: a number (0.4) or a percentage ("40%").
type Weight float64

// UnmarshalText parses a weight written as a string: "0.4" or "40%".
func (w *Weight) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	scale := 1.0
	if rest, ok := strings.CutSuffix(s, "%"); ok {
		s, scale = strings.TrimSpace(rest), 0.01
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("weight %q is not a number or a percentage such as 40%%", string(text))
	}
	*w = Weight(v * scale)
	return nil
}

// PipelineConfig overrides weights for one pipeline.
type PipelineConfig struct {
	// Name is the pipeline name (cicd.pipeline.name) the weights apply to.
	Name string `mapstructure:"name"`
	// Weights override the global weights for the phases they name.
	Weights PhaseWeights `mapstructure:"weights"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ETAConfig configures the ETA estimate and the history of phase durations it learns from
// (eta.go, README.md).
type ETAConfig struct {
	// HistorySize is how many earlier runs per pipeline and phase feed the ETA; 0 turns
	// history off (the ETA then comes from the build's progress rate alone).
	HistorySize int `mapstructure:"history_size"`
	// MaxPipelines bounds the pipelines with history; beyond it the pipeline that recorded a
	// run longest ago is forgotten.
	MaxPipelines int `mapstructure:"max_pipelines"`
	// MaxPhases bounds the phases per pipeline with history; beyond it the phase recorded
	// longest ago is forgotten.
	MaxPhases int `mapstructure:"max_phases"`
	// Estimator reduces a phase's recorded durations to its expected duration: median or
	// trimmed_mean.
	Estimator string `mapstructure:"estimator"`
	// TimeProgress moves the progress of a running phase without real steps (unknown or a
	// single step) with its elapsed time against its expected duration, up to 95 % of the
	// phase, while its pipeline has history.
	TimeProgress bool `mapstructure:"time_progress"`
	// LearnedWeights lets phase weights follow the phases' real time shares.
	LearnedWeights LearnedWeightsConfig `mapstructure:"learned_weights"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// LearnedWeightsConfig configures learned phase weights.
type LearnedWeightsConfig struct {
	// Enabled turns learned weights on (off by default: the configured weights define
	// overall progress).
	Enabled bool `mapstructure:"enabled"`
	// MinRuns is how many recorded runs a pipeline needs before its weights are learned.
	MinRuns int `mapstructure:"min_runs"`
	// PriorRuns is how many runs the configured weights count as.
	PriorRuns int `mapstructure:"prior_runs"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Estimators of eta.estimator.
const (
	estimatorMedian      = "median"
	estimatorTrimmedMean = "trimmed_mean"
)

func (c *ETAConfig) validate() []error {
	var errs []error
	if c.HistorySize < 0 {
		errs = append(errs, fmt.Errorf("eta.history_size must not be negative (got %d)", c.HistorySize))
	} else if c.HistorySize > maxHistorySize {
		errs = append(errs, fmt.Errorf("eta.history_size must be at most %d (got %d)", maxHistorySize, c.HistorySize))
	}
	if c.MaxPipelines <= 0 {
		errs = append(errs, fmt.Errorf("eta.max_pipelines must be positive (got %d)", c.MaxPipelines))
	}
	if c.MaxPhases <= 0 {
		errs = append(errs, fmt.Errorf("eta.max_phases must be positive (got %d)", c.MaxPhases))
	}
	switch c.Estimator {
	case estimatorMedian, estimatorTrimmedMean:
	default:
		errs = append(errs, fmt.Errorf("eta.estimator must be %s or %s (got %q)", estimatorMedian, estimatorTrimmedMean, c.Estimator))
	}
	if c.LearnedWeights.MinRuns < 1 {
		errs = append(errs, fmt.Errorf("eta.learned_weights.min_runs must be at least 1 (got %d)", c.LearnedWeights.MinRuns))
	}
	if c.LearnedWeights.PriorRuns < 0 {
		errs = append(errs, fmt.Errorf("eta.learned_weights.prior_runs must not be negative (got %d)", c.LearnedWeights.PriorRuns))
	}
	return errs
}

// PhaseResourcesConfig configures per-phase resource attribution.
type PhaseResourcesConfig struct {
	// Enabled turns on the build.phase.* resource aggregates (host CPU, memory, disk,
	// network and IO while each phase ran). Off by default, as the CICD semantic conventions
	// advise for host metrics tied to builds (cardinality).
	Enabled bool `mapstructure:"enabled"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// RuleConfig is one threshold rule.
type RuleConfig struct {
	// Name names the rule (alert.rule); unique.
	Name string `mapstructure:"name"`
	// Metric is a metric name (system.cpu.utilization, build.phase.duration, …) or one of
	// the seed's aliases cpu_usage, memory_usage, disk_usage, network_bandwidth,
	// io_operations.
	Metric string `mapstructure:"metric"`
	// Aggregation reduces the window: last, avg, max, min or p95. Default avg.
	Aggregation string `mapstructure:"aggregation"`
	// Window is the span of the rolling window. Default by metric class: 5m system stats
	// (CPU, memory), 1m resource usage (disk, network, IO), 15m performance (build metrics
	// and any other metric).
	Window time.Duration `mapstructure:"window"`
	// Interval is the expected time between values; the window holds window/interval slots.
	// Default by metric class: 1s system stats, 5s resource usage, 10s performance.
	Interval time.Duration `mapstructure:"interval"`
	// Thresholds per level; at least one.
	Thresholds ThresholdsConfig `mapstructure:"thresholds"`
	// For is how long the condition must hold before the alert fires. Default 0 (at once).
	For time.Duration `mapstructure:"for"`
	// KeepFiringFor is how long a firing alert keeps firing after the condition stops
	// holding. Default 0.
	KeepFiringFor time.Duration `mapstructure:"keep_firing_for"`
	// Match restricts the rule to data points (or resources) with these attribute values.
	Match map[string]string `mapstructure:"match"`
	// Scope is where the alert lives: host (the host's resource; default for host metrics)
	// or build (each build's resource; default for build.* metrics).
	Scope string `mapstructure:"scope"`
	// Direction is above (fire at or above a threshold; default) or below.
	Direction string `mapstructure:"direction"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ThresholdsConfig holds a threshold per alert level; unset levels are not used.
type ThresholdsConfig struct {
	Info     *float64 `mapstructure:"info"`
	Warning  *float64 `mapstructure:"warning"`
	Error    *float64 `mapstructure:"error"`
	Critical *float64 `mapstructure:"critical"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// spec translates the rule's configuration for the alert engine.
func (rc *RuleConfig) spec() alerting.RuleSpec {
	return alerting.RuleSpec{
		Name: rc.Name, Metric: rc.Metric, Aggregation: rc.Aggregation,
		Window: rc.Window, Interval: rc.Interval, For: rc.For, KeepFiringFor: rc.KeepFiringFor,
		Thresholds: rc.Thresholds.compile(), Match: rc.Match, Scope: rc.Scope, Direction: rc.Direction,
	}
}

// compileRule validates rules[i] and resolves its alias and defaults. Errors name the key.
func compileRule(i int, rc *RuleConfig) (*alerting.CompiledRule, error) {
	spec := rc.spec()
	return alerting.CompileRule(i, &spec)
}

func (t ThresholdsConfig) compile() alerting.Thresholds {
	var th alerting.Thresholds
	for i, v := range [...]*float64{t.Info, t.Warning, t.Error, t.Critical} {
		if v != nil {
			th.Set(alerting.Levels[i], *v)
		}
	}
	return th
}

// Validate checks the configuration and reports every problem at once, each naming its key.
func (cfg *Config) Validate() error {
	var errs []error
	errs = append(errs, validateWeights("weights", cfg.Weights)...)
	seenPipelines := map[string]bool{}
	for i, pc := range cfg.Pipelines {
		key := fmt.Sprintf("pipelines[%d]", i)
		switch {
		case pc.Name == "":
			errs = append(errs, fmt.Errorf("%s.name must not be empty", key))
		case seenPipelines[pc.Name]:
			errs = append(errs, fmt.Errorf("%s.name %q is configured twice", key, pc.Name))
		}
		seenPipelines[pc.Name] = true
		errs = append(errs, validateWeights(key+".weights", pc.Weights)...)
	}
	errs = append(errs, cfg.ETA.validate()...)
	if cfg.Expiry <= 0 {
		errs = append(errs, fmt.Errorf("expiry must be positive (got %s)", cfg.Expiry))
	}
	if cfg.MaxBuilds <= 0 {
		errs = append(errs, fmt.Errorf("max_builds must be positive (got %d)", cfg.MaxBuilds))
	}
	seenRules := map[string]bool{}
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		if r.Name != "" && seenRules[r.Name] {
			errs = append(errs, fmt.Errorf("rules[%d].name %q is used by an earlier rule", i, r.Name))
		}
		seenRules[r.Name] = true
		if _, err := compileRule(i, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func validateWeights(key string, weights PhaseWeights) []error {
	var errs []error
	names := make([]string, 0, len(weights))
	for name := range weights {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		w := float64(weights[name])
		switch {
		case strings.TrimSpace(name) == "":
			errs = append(errs, fmt.Errorf("%s: phase name must not be empty", key))
		case math.IsNaN(w) || math.IsInf(w, 0):
			errs = append(errs, fmt.Errorf("%s.%s must be a finite number", key, name))
		case w < 0:
			errs = append(errs, fmt.Errorf("%s.%s must not be negative (got %g)", key, name, w))
		}
	}
	return errs
}
