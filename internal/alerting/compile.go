package alerting

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Scope is where a rule's alerts live.
type Scope uint8

// Scopes.
const (
	// ScopeHost keeps one alert per series on the host's resource.
	ScopeHost Scope = iota
	// ScopeBuild keeps one alert per series on each build's resource; a build-scoped rule
	// on a host metric sees the host's values in every build running on that host.
	ScopeBuild
)

// String returns "host" or "build".
func (s Scope) String() string {
	if s == ScopeBuild {
		return "build"
	}
	return "host"
}

// RuleSpec is a threshold rule as configured, before validation and defaults. Its fields
// mirror the processor's rule configuration keys.
type RuleSpec struct {
	Name string
	// Metric is a schema metric name or an alias (see LookupAlias).
	Metric string
	// Aggregation is last, avg, max, min or p95; "" means avg.
	Aggregation string
	// Window and Interval: 0 takes the metric class's default.
	Window, Interval   time.Duration
	For, KeepFiringFor time.Duration
	Thresholds         Thresholds
	// Match restricts the rule to data points (or resources) with these attribute values.
	Match map[string]string
	// Scope is host, build or "" (build for build.* metrics, else host).
	Scope string
	// Direction is above, below or "" (above).
	Direction string
}

// CompiledRule is a validated rule with its metric source resolved.
type CompiledRule struct {
	Rule
	// Index is the rule's position in the configuration; it keys the rule's series (in two
	// bytes) and orders what Display reports.
	Index int
	// Metric is the schema metric the rule reads.
	Metric string
	// Alias is the seed alias the rule names (cpu_usage, …), "" for a schema metric. The
	// processor feeds alias rules on host resources from the normalized host sample
	// (internal/hostusage), whatever the shape of the host metrics.
	Alias   string
	Combine Combine
	// Filter holds the alias's filter and the rule's match, sorted by key.
	Filter []AttrMatch
	Scope  Scope
}

// CompileRule validates the rule at position index of the configuration and resolves its
// alias and defaults. Errors name the configuration key (rules[index].window, …), and all
// of a rule's problems are reported at once.
func CompileRule(index int, spec *RuleSpec) (*CompiledRule, error) {
	key := fmt.Sprintf("rules[%d]", index)
	var errs []error
	if spec.Name == "" {
		errs = append(errs, fmt.Errorf("%s.name must not be empty", key))
	}
	r := &CompiledRule{Index: index, Metric: spec.Metric}
	r.Name = spec.Name
	class := ClassOf(spec.Metric)
	if a, ok := LookupAlias(spec.Metric); ok {
		r.Metric, r.Combine, class, r.Alias = a.Metric, a.Combine, a.Class, spec.Metric
		if a.Filter.Key != "" {
			r.Filter = append(r.Filter, a.Filter)
		}
	} else if spec.Metric == "" {
		errs = append(errs, fmt.Errorf("%s.metric must not be empty", key))
	}
	for k, v := range spec.Match {
		if k == "" {
			errs = append(errs, fmt.Errorf("%s.match: attribute name must not be empty", key))
			continue
		}
		r.Filter = append(r.Filter, AttrMatch{k, v})
	}
	slices.SortFunc(r.Filter, func(a, b AttrMatch) int { return strings.Compare(a.Key, b.Key) })

	agg := "avg"
	if spec.Aggregation != "" {
		agg = spec.Aggregation
	}
	var err error
	if r.Aggregation, err = ParseAggregation(agg); err != nil {
		errs = append(errs, fmt.Errorf("%s.aggregation: %w", key, err))
	}
	r.Window, r.Interval = class.Defaults()
	switch {
	case spec.Window < 0:
		errs = append(errs, fmt.Errorf("%s.window must not be negative (got %s)", key, spec.Window))
	case spec.Window > 0:
		r.Window = spec.Window
	}
	switch {
	case spec.Interval < 0:
		errs = append(errs, fmt.Errorf("%s.interval must not be negative (got %s)", key, spec.Interval))
	case spec.Interval > 0:
		r.Interval = spec.Interval
	}
	if r.Interval > r.Window {
		r.Interval = r.Window
	}
	if r.Interval > 0 && r.Window/r.Interval >= MaxWindowSlots {
		errs = append(errs, fmt.Errorf("%s.interval: window / interval must be below %d slots (window %s, interval %s)",
			key, MaxWindowSlots, r.Window, r.Interval))
	}
	if spec.For < 0 {
		errs = append(errs, fmt.Errorf("%s.for must not be negative (got %s)", key, spec.For))
	}
	if spec.KeepFiringFor < 0 {
		errs = append(errs, fmt.Errorf("%s.keep_firing_for must not be negative (got %s)", key, spec.KeepFiringFor))
	}
	r.For, r.KeepFiringFor = spec.For, spec.KeepFiringFor
	if r.Direction, err = ParseDirection(spec.Direction); err != nil {
		errs = append(errs, fmt.Errorf("%s.direction: %w", key, err))
	}
	r.Thresholds = spec.Thresholds
	if err := r.Thresholds.Validate(r.Direction); err != nil {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("%s.%w", key, e))
		}
	}
	buildMetric := strings.HasPrefix(r.Metric, "build.")
	switch spec.Scope {
	case "":
		if buildMetric {
			r.Scope = ScopeBuild
		}
	case "build":
		r.Scope = ScopeBuild
	case "host":
		if buildMetric {
			errs = append(errs, fmt.Errorf("%s.scope: host needs a host metric; %s is per build", key, r.Metric))
		}
	default:
		errs = append(errs, fmt.Errorf("%s.scope: unknown scope %q (want host or build)", key, spec.Scope))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// unjoin returns the errors an errors.Join combined, or err itself.
func unjoin(err error) []error {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		return j.Unwrap()
	}
	return []error{err}
}
