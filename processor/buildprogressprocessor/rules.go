package buildprogressprocessor // import "github.com/buildmon/buildmon/processor/buildprogressprocessor"

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/buildmon/buildmon/internal/alerting"
	"github.com/buildmon/buildmon/internal/schema"
)

// metricClass is one of the seed's aggregation classes (§2.2), which set a rule's default
// window and expected interval.
type metricClass uint8

const (
	classSystemStats   metricClass = iota // 1 s updates, 5 min window
	classResourceUsage                    // 5 s updates, 1 min window
	classPerformance                      // 10 s updates, 15 min window
)

var classDefaults = [...]struct{ window, interval time.Duration }{
	classSystemStats:   {5 * time.Minute, time.Second},
	classResourceUsage: {time.Minute, 5 * time.Second},
	classPerformance:   {15 * time.Minute, 10 * time.Second},
}

// combine says how an alias reduces the data points of one resource to one value.
type combine uint8

const (
	combineNone combine = iota // one series per attribute set
	combineSum
	combineMax
)

// alias is one of the seed's metric names (§4.1) and the schema metric it reads.
type alias struct {
	metric      string
	filterKey   string // a data point attribute the alias requires…
	filterValue string // …with this value
	combine     combine
	class       metricClass
}

// aliases maps the seed's resource metric names onto the schema (documented in README.md).
var aliases = map[string]alias{
	"cpu_usage":         {metric: schema.MetricCPUUtilization, filterKey: schema.AttrCPUMode, filterValue: "busy", combine: combineMax, class: classSystemStats},
	"memory_usage":      {metric: schema.MetricMemoryUtilization, filterKey: schema.AttrMemoryState, filterValue: "used", combine: combineMax, class: classSystemStats},
	"disk_usage":        {metric: schema.MetricFilesystemUtilization, combine: combineMax, class: classResourceUsage},
	"network_bandwidth": {metric: schema.MetricNetworkIORate, combine: combineSum, class: classResourceUsage},
	"io_operations":     {metric: schema.MetricDiskOperationsRate, combine: combineSum, class: classResourceUsage},
}

// classOf returns the aggregation class of a schema metric name.
func classOf(metric string) metricClass {
	switch {
	case strings.HasPrefix(metric, "system.cpu."), strings.HasPrefix(metric, "system.memory."):
		return classSystemStats
	case strings.HasPrefix(metric, "system."):
		return classResourceUsage
	}
	return classPerformance
}

// ruleScope is where a rule's alerts live.
type ruleScope uint8

const (
	scopeHost ruleScope = iota
	scopeBuild
)

func (s ruleScope) String() string {
	if s == scopeBuild {
		return "build"
	}
	return "host"
}

// attrMatch is one required attribute value.
type attrMatch struct{ key, value string }

// compiledRule is a validated rule with its metric source resolved.
type compiledRule struct {
	alerting.Rule
	index   int
	metric  string // schema metric the rule reads
	combine combine
	filter  []attrMatch // the alias filter and the rule's match, sorted by key
	scope   ruleScope
}

// compileRule validates rules[i] and resolves its alias and defaults. Errors name the key.
func compileRule(i int, rc *RuleConfig) (*compiledRule, error) {
	key := fmt.Sprintf("rules[%d]", i)
	var errs []error
	if rc.Name == "" {
		errs = append(errs, fmt.Errorf("%s.name must not be empty", key))
	}
	r := &compiledRule{index: i, metric: rc.Metric}
	r.Name = rc.Name
	class := classOf(rc.Metric)
	if a, ok := aliases[rc.Metric]; ok {
		r.metric, r.combine, class = a.metric, a.combine, a.class
		if a.filterKey != "" {
			r.filter = append(r.filter, attrMatch{a.filterKey, a.filterValue})
		}
	} else if rc.Metric == "" {
		errs = append(errs, fmt.Errorf("%s.metric must not be empty", key))
	}
	for k, v := range rc.Match {
		if k == "" {
			errs = append(errs, fmt.Errorf("%s.match: attribute name must not be empty", key))
			continue
		}
		r.filter = append(r.filter, attrMatch{k, v})
	}
	slices.SortFunc(r.filter, func(a, b attrMatch) int { return strings.Compare(a.key, b.key) })

	agg := "avg"
	if rc.Aggregation != "" {
		agg = rc.Aggregation
	}
	var err error
	if r.Aggregation, err = alerting.ParseAggregation(agg); err != nil {
		errs = append(errs, fmt.Errorf("%s.aggregation: %w", key, err))
	}
	r.Window, r.Interval = classDefaults[class].window, classDefaults[class].interval
	switch {
	case rc.Window < 0:
		errs = append(errs, fmt.Errorf("%s.window must not be negative (got %s)", key, rc.Window))
	case rc.Window > 0:
		r.Window = rc.Window
	}
	switch {
	case rc.Interval < 0:
		errs = append(errs, fmt.Errorf("%s.interval must not be negative (got %s)", key, rc.Interval))
	case rc.Interval > 0:
		r.Interval = rc.Interval
	}
	if r.Interval > r.Window {
		r.Interval = r.Window
	}
	if r.Interval > 0 && r.Window/r.Interval >= alerting.MaxWindowSlots {
		errs = append(errs, fmt.Errorf("%s.interval: window / interval must be below %d slots (window %s, interval %s)",
			key, alerting.MaxWindowSlots, r.Window, r.Interval))
	}
	if rc.For < 0 {
		errs = append(errs, fmt.Errorf("%s.for must not be negative (got %s)", key, rc.For))
	}
	if rc.KeepFiringFor < 0 {
		errs = append(errs, fmt.Errorf("%s.keep_firing_for must not be negative (got %s)", key, rc.KeepFiringFor))
	}
	r.For, r.KeepFiringFor = rc.For, rc.KeepFiringFor
	if r.Direction, err = alerting.ParseDirection(rc.Direction); err != nil {
		errs = append(errs, fmt.Errorf("%s.direction: %w", key, err))
	}
	r.Thresholds = rc.Thresholds.compile()
	if err := r.Thresholds.Validate(r.Direction); err != nil {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("%s.%w", key, e))
		}
	}
	buildMetric := strings.HasPrefix(r.metric, "build.")
	switch rc.Scope {
	case "":
		if buildMetric {
			r.scope = scopeBuild
		}
	case "build":
		r.scope = scopeBuild
	case "host":
		if buildMetric {
			errs = append(errs, fmt.Errorf("%s.scope: host needs a host metric; %s is per build", key, r.metric))
		}
	default:
		errs = append(errs, fmt.Errorf("%s.scope: unknown scope %q (want host or build)", key, rc.Scope))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// unjoin returns the errors an errors.Join combined, or err itself.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
