package alerting

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/internal/schema"
)

func TestClassOf(t *testing.T) {
	tests := []struct {
		metric string
		want   MetricClass
	}{
		{schema.MetricCPUUtilization, ClassSystemStats},
		{schema.MetricMemoryUsage, ClassSystemStats},
		{schema.MetricMemoryUtilization, ClassSystemStats},
		{schema.MetricFilesystemUtilization, ClassResourceUsage},
		{schema.MetricNetworkIORate, ClassResourceUsage},
		{schema.MetricDiskIO, ClassResourceUsage},
		{schema.MetricDiskOperationsRate, ClassResourceUsage},
		{"system.cpu", ClassResourceUsage}, // not under system.cpu.
		{schema.MetricPhaseDuration, ClassPerformance},
		{schema.MetricBuildProgress, ClassPerformance},
		{"custom.metric", ClassPerformance},
		{"", ClassPerformance},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, ClassOf(tt.metric), tt.metric)
	}
}

func TestClassDefaults(t *testing.T) {
	tests := []struct {
		class            MetricClass
		window, interval time.Duration
	}{
		{ClassSystemStats, 5 * time.Minute, time.Second},
		{ClassResourceUsage, time.Minute, 5 * time.Second},
		{ClassPerformance, 15 * time.Minute, 10 * time.Second},
	}
	for _, tt := range tests {
		w, i := tt.class.Defaults()
		assert.Equal(t, tt.window, w, "class %d", tt.class)
		assert.Equal(t, tt.interval, i, "class %d", tt.class)
	}
}

// TestAliases pins the seed's metric names (§4.1) to the schema: the README documents this
// table, so a change here is a change of documented behavior.
func TestAliases(t *testing.T) {
	tests := []struct {
		name    string
		metric  string
		filter  AttrMatch
		combine Combine
		class   MetricClass
	}{
		{"cpu_usage", schema.MetricCPUUtilization, AttrMatch{schema.AttrCPUMode, "busy"}, CombineMax, ClassSystemStats},
		{"memory_usage", schema.MetricMemoryUtilization, AttrMatch{schema.AttrMemoryState, "used"}, CombineMax, ClassSystemStats},
		{"disk_usage", schema.MetricFilesystemUtilization, AttrMatch{}, CombineMax, ClassResourceUsage},
		{"network_bandwidth", schema.MetricNetworkIORate, AttrMatch{}, CombineSum, ClassResourceUsage},
		{"io_operations", schema.MetricDiskOperationsRate, AttrMatch{}, CombineSum, ClassResourceUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := LookupAlias(tt.name)
			require.True(t, ok)
			assert.Equal(t, Alias{Metric: tt.metric, Filter: tt.filter, Combine: tt.combine, Class: tt.class}, a)
		})
	}
	assert.Len(t, aliases, len(tests), "every alias is pinned above")
	for _, name := range []string{"", "cpu", "CPU_USAGE", schema.MetricCPUUtilization} {
		_, ok := LookupAlias(name)
		assert.False(t, ok, "%q is not an alias", name)
	}
}

func TestScopeString(t *testing.T) {
	assert.Equal(t, "host", ScopeHost.String())
	assert.Equal(t, "build", ScopeBuild.String())
}

// warn is a RuleSpec with only a warning threshold: the smallest valid rule.
func warn(name, metric string, th float64) RuleSpec {
	var t Thresholds
	t.Set(Warning, th)
	return RuleSpec{Name: name, Metric: metric, Thresholds: t}
}

// TestCompileRuleResolves checks what compilation resolves: the alias's metric, filter and
// combine, the class's window and interval unless configured, the scope by metric, the
// aggregation default, and the match merged into the filter sorted by key.
func TestCompileRuleResolves(t *testing.T) {
	tests := []struct {
		name   string
		spec   func(s *RuleSpec)
		metric string
		want   CompiledRule
	}{
		{
			name: "alias with filter", metric: "cpu_usage",
			want: CompiledRule{Metric: schema.MetricCPUUtilization, Alias: "cpu_usage", Combine: CombineMax, Scope: ScopeHost,
				Filter: []AttrMatch{{schema.AttrCPUMode, "busy"}},
				Rule:   Rule{Aggregation: Avg, Window: 5 * time.Minute, Interval: time.Second}},
		},
		{
			name: "alias without filter", metric: "network_bandwidth",
			want: CompiledRule{Metric: schema.MetricNetworkIORate, Alias: "network_bandwidth", Combine: CombineSum, Scope: ScopeHost,
				Rule: Rule{Aggregation: Avg, Window: time.Minute, Interval: 5 * time.Second}},
		},
		{
			name: "schema host metric", metric: schema.MetricDiskIO,
			want: CompiledRule{Metric: schema.MetricDiskIO, Scope: ScopeHost,
				Rule: Rule{Aggregation: Avg, Window: time.Minute, Interval: 5 * time.Second}},
		},
		{
			name: "build metric is build scoped", metric: schema.MetricPhaseDuration,
			want: CompiledRule{Metric: schema.MetricPhaseDuration, Scope: ScopeBuild,
				Rule: Rule{Aggregation: Avg, Window: 15 * time.Minute, Interval: 10 * time.Second}},
		},
		{
			name: "host metric in build scope", metric: "memory_usage",
			spec: func(s *RuleSpec) { s.Scope = "build" },
			want: CompiledRule{Metric: schema.MetricMemoryUtilization, Alias: "memory_usage", Combine: CombineMax, Scope: ScopeBuild,
				Filter: []AttrMatch{{schema.AttrMemoryState, "used"}},
				Rule:   Rule{Aggregation: Avg, Window: 5 * time.Minute, Interval: time.Second}},
		},
		{
			name: "explicit host scope on a host metric", metric: "disk_usage",
			spec: func(s *RuleSpec) { s.Scope = "host" },
			want: CompiledRule{Metric: schema.MetricFilesystemUtilization, Alias: "disk_usage", Combine: CombineMax, Scope: ScopeHost,
				Rule: Rule{Aggregation: Avg, Window: time.Minute, Interval: 5 * time.Second}},
		},
		{
			name: "match merged with the alias filter, sorted", metric: "cpu_usage",
			spec: func(s *RuleSpec) { s.Match = map[string]string{"zz": "1", "aa": "2"} },
			want: CompiledRule{Metric: schema.MetricCPUUtilization, Alias: "cpu_usage", Combine: CombineMax, Scope: ScopeHost,
				Filter: []AttrMatch{{"aa", "2"}, {schema.AttrCPUMode, "busy"}, {"zz", "1"}},
				Rule:   Rule{Aggregation: Avg, Window: 5 * time.Minute, Interval: time.Second}},
		},
		{
			name: "configured window, interval, holds, aggregation, direction", metric: "custom.metric",
			spec: func(s *RuleSpec) {
				s.Window, s.Interval, s.For, s.KeepFiringFor = 2*time.Minute, 3*time.Second, time.Minute, 30*time.Second
				s.Aggregation, s.Direction = "p95", "below"
			},
			want: CompiledRule{Metric: "custom.metric", Scope: ScopeHost,
				Rule: Rule{Aggregation: P95, Window: 2 * time.Minute, Interval: 3 * time.Second,
					For: time.Minute, KeepFiringFor: 30 * time.Second, Direction: Below}},
		},
		{
			name: "interval longer than the window is the window", metric: "custom.metric",
			spec: func(s *RuleSpec) { s.Window, s.Interval = 5*time.Second, time.Minute },
			want: CompiledRule{Metric: "custom.metric", Scope: ScopeHost,
				Rule: Rule{Aggregation: Avg, Window: 5 * time.Second, Interval: 5 * time.Second}},
		},
		{
			name: "short window caps the default interval", metric: schema.MetricPhaseDuration,
			spec: func(s *RuleSpec) { s.Window = 4 * time.Second },
			want: CompiledRule{Metric: schema.MetricPhaseDuration, Scope: ScopeBuild,
				Rule: Rule{Aggregation: Avg, Window: 4 * time.Second, Interval: 4 * time.Second}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := warn("r", tt.metric, 1)
			if tt.spec != nil {
				tt.spec(&s)
			}
			got, err := CompileRule(3, &s)
			require.NoError(t, err)
			want := tt.want
			want.Index, want.Name, want.Thresholds = 3, "r", s.Thresholds
			assert.Equal(t, &want, got)
		})
	}
}

// TestCompileRuleErrors: every problem names its configuration key, and all of a rule's
// problems are reported at once.
func TestCompileRuleErrors(t *testing.T) {
	tests := []struct {
		name string
		spec func(s *RuleSpec)
		errs []string
	}{
		{"empty name", func(s *RuleSpec) { s.Name = "" }, []string{"rules[2].name must not be empty"}},
		{"empty metric", func(s *RuleSpec) { s.Metric = "" }, []string{"rules[2].metric must not be empty"}},
		{"empty match key", func(s *RuleSpec) { s.Match = map[string]string{"": "x"} },
			[]string{"rules[2].match: attribute name must not be empty"}},
		{"aggregation", func(s *RuleSpec) { s.Aggregation = "median" },
			[]string{`rules[2].aggregation: unknown aggregation "median" (want last, avg, max, min or p95)`}},
		{"negative window", func(s *RuleSpec) { s.Window = -time.Second },
			[]string{"rules[2].window must not be negative (got -1s)"}},
		{"negative interval", func(s *RuleSpec) { s.Interval = -time.Second },
			[]string{"rules[2].interval must not be negative (got -1s)"}},
		{"too many slots", func(s *RuleSpec) { s.Window, s.Interval = 10000*time.Second, time.Second },
			[]string{"rules[2].interval: window / interval must be below 10000 slots (window 2h46m40s, interval 1s)"}},
		{"negative for", func(s *RuleSpec) { s.For = -time.Minute },
			[]string{"rules[2].for must not be negative (got -1m0s)"}},
		{"negative keep_firing_for", func(s *RuleSpec) { s.KeepFiringFor = -time.Minute },
			[]string{"rules[2].keep_firing_for must not be negative (got -1m0s)"}},
		{"direction", func(s *RuleSpec) { s.Direction = "up" },
			[]string{`rules[2].direction: unknown direction "up" (want above or below)`}},
		{"no thresholds", func(s *RuleSpec) { s.Thresholds = Thresholds{} },
			[]string{"rules[2].thresholds must set at least one of info, warning, error, critical"}},
		{"threshold order for direction below", func(s *RuleSpec) { s.Direction = "below"; s.Thresholds.Set(Critical, 2) },
			[]string{"rules[2].thresholds.critical (2) must be less than thresholds.warning (1) for direction below"}},
		{"host scope on a build metric", func(s *RuleSpec) { s.Metric, s.Scope = schema.MetricBuildProgress, "host" },
			[]string{"rules[2].scope: host needs a host metric; build.progress is per build"}},
		{"unknown scope", func(s *RuleSpec) { s.Scope = "fleet" },
			[]string{`rules[2].scope: unknown scope "fleet" (want host or build)`}},
		{"all at once", func(s *RuleSpec) {
			s.Name, s.Window, s.For, s.Direction = "", -time.Second, -time.Second, "up"
			var th Thresholds
			th.Set(Warning, 2)
			th.Set(Error, 1)
			s.Thresholds = th
		}, []string{
			"rules[2].name must not be empty",
			"rules[2].window must not be negative (got -1s)",
			"rules[2].for must not be negative (got -1s)",
			`rules[2].direction: unknown direction "up" (want above or below)`,
			"rules[2].thresholds.error (1) must be greater than thresholds.warning (2) for direction above",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := warn("r", "cpu_usage", 1)
			tt.spec(&s)
			r, err := CompileRule(2, &s)
			assert.Nil(t, r)
			require.Error(t, err)
			assert.Equal(t, tt.errs, strings.Split(err.Error(), "\n"))
		})
	}
}

func TestNewEngine(t *testing.T) {
	e, err := NewEngine([]RuleSpec{
		warn("cpu", "cpu_usage", 0.9),
		warn("util", schema.MetricCPUUtilization, 0.8),
		warn("slow", schema.MetricPhaseDuration, 600),
	})
	require.NoError(t, err)
	require.Len(t, e.Rules(), 3)
	for i, r := range e.Rules() {
		assert.Equal(t, i, r.Index)
	}
	byMetric := e.RulesFor(schema.MetricCPUUtilization)
	require.Len(t, byMetric, 2, "the alias and the schema name read the same metric")
	assert.Equal(t, []string{"cpu", "util"}, []string{byMetric[0].Name, byMetric[1].Name})
	assert.Len(t, e.RulesFor(schema.MetricPhaseDuration), 1)
	assert.Nil(t, e.RulesFor("cpu_usage"), "rules are found by the metric they read, not the alias")

	empty, err := NewEngine(nil)
	require.NoError(t, err)
	assert.Empty(t, empty.Rules())
	assert.Empty(t, empty.Display(&Set{}))
}

// TestNewEngineReportsEveryRule: the errors of all rules come back together, each naming
// its own index.
func TestNewEngineReportsEveryRule(t *testing.T) {
	bad := warn("", "cpu_usage", 1)
	worse := warn("x", "", 1)
	worse.Scope = "fleet"
	e, err := NewEngine([]RuleSpec{warn("ok", "cpu_usage", 1), bad, worse})
	assert.Nil(t, e)
	require.Error(t, err)
	assert.Equal(t, []string{
		"rules[1].name must not be empty",
		"rules[2].metric must not be empty",
		`rules[2].scope: unknown scope "fleet" (want host or build)`,
	}, strings.Split(err.Error(), "\n"))
}

// TestCompileRuleDefaultScope: build.* metrics default to build scope and refuse host
// scope; every other metric defaults to host scope.
func TestCompileRuleDefaultScope(t *testing.T) {
	tests := []struct {
		metric string
		want   Scope
	}{
		{schema.MetricBuildDuration, ScopeBuild},
		{schema.MetricBuildETA, ScopeBuild},
		{schema.MetricPhaseProgress, ScopeBuild},
		{"buildx.metric", ScopeHost},
		{"build", ScopeHost},
		{"io_operations", ScopeHost},
		{"custom.build.time", ScopeHost},
	}
	for _, tt := range tests {
		s := warn("r", tt.metric, 1)
		r, err := CompileRule(0, &s)
		require.NoError(t, err, tt.metric)
		assert.Equal(t, tt.want, r.Scope, tt.metric)
		s.Scope = "host"
		_, err = CompileRule(0, &s)
		assert.Equal(t, tt.want == ScopeBuild, err != nil, "%s with scope host", tt.metric)
	}
}
