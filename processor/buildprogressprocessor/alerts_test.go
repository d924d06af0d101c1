package buildprogressprocessor

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/buildmon/buildmon/internal/alerting"
	"github.com/buildmon/buildmon/internal/pdatacontract"
	"github.com/buildmon/buildmon/internal/schema"
	"github.com/buildmon/buildmon/processor/buildprogressprocessor/internal/metadata"
)

// attrMap returns a pcommon.Map holding kv (string values).
func attrMap(kv ...string) pcommon.Map {
	m := pcommon.NewMap()
	for i := 0; i < len(kv); i += 2 {
		m.PutStr(kv[i], kv[i+1])
	}
	return m
}

func TestMatches(t *testing.T) {
	dpAttrs := attrMap("cpu.mode", "busy", "cpu", "0")
	dpAttrs.PutInt("core", 3)
	res := attrMap("host.name", "h1", "cpu.mode", "idle")
	tests := []struct {
		name   string
		filter []alerting.AttrMatch
		want   bool
	}{
		{"no filter", nil, true},
		{"data point attribute", []alerting.AttrMatch{{Key: "cpu.mode", Value: "busy"}}, true},
		{"data point wins over the resource", []alerting.AttrMatch{{Key: "cpu.mode", Value: "idle"}}, false},
		{"resource attribute", []alerting.AttrMatch{{Key: "host.name", Value: "h1"}}, true},
		{"resource attribute differs", []alerting.AttrMatch{{Key: "host.name", Value: "h2"}}, false},
		{"missing attribute", []alerting.AttrMatch{{Key: "absent", Value: ""}}, false},
		{"int value as its string", []alerting.AttrMatch{{Key: "core", Value: "3"}}, true},
		{"every filter must hold", []alerting.AttrMatch{{Key: "cpu", Value: "0"}, {Key: "host.name", Value: "h2"}}, false},
		{"all hold", []alerting.AttrMatch{{Key: "cpu", Value: "0"}, {Key: "cpu.mode", Value: "busy"}, {Key: "host.name", Value: "h1"}}, true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, matches(tt.filter, dpAttrs, res), tt.name)
	}
}

func TestMatchesPhase(t *testing.T) {
	res := attrMap(schema.AttrPipelineName, "ci", schema.AttrPhase, "FROM_RESOURCE")
	tests := []struct {
		name   string
		filter []alerting.AttrMatch
		phase  string
		want   bool
	}{
		{"no filter", nil, "BUILD", true},
		{"phase matches", []alerting.AttrMatch{{Key: schema.AttrPhase, Value: "BUILD"}}, "BUILD", true},
		{"phase differs", []alerting.AttrMatch{{Key: schema.AttrPhase, Value: "TEST"}}, "BUILD", false},
		{"no phase: the resource is asked", []alerting.AttrMatch{{Key: schema.AttrPhase, Value: "FROM_RESOURCE"}}, "", true},
		{"no phase, resource differs", []alerting.AttrMatch{{Key: schema.AttrPhase, Value: "BUILD"}}, "", false},
		{"resource attribute", []alerting.AttrMatch{{Key: schema.AttrPipelineName, Value: "ci"}, {Key: schema.AttrPhase, Value: "BUILD"}}, "BUILD", true},
		{"resource attribute differs", []alerting.AttrMatch{{Key: schema.AttrPipelineName, Value: "cd"}}, "BUILD", false},
		{"missing", []alerting.AttrMatch{{Key: "absent", Value: "x"}}, "BUILD", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, matchesPhase(tt.filter, tt.phase, res), tt.name)
	}
}

// TestAppendAttrs: a data point's attributes become its series' attributes, sorted by key
// whatever their order, each value in its string form.
func TestAppendAttrs(t *testing.T) {
	p := &buildProgressProcessor{}
	tests := []struct {
		name string
		fill func(m pcommon.Map)
		want string
	}{
		{"none", func(pcommon.Map) {}, ""},
		{"one", func(m pcommon.Map) { m.PutStr("device", "sda") }, "device=sda"},
		{"sorted", func(m pcommon.Map) {
			m.PutStr("z", "1")
			m.PutStr("a", "2")
			m.PutStr("m", "3")
		}, "a=2,m=3,z=1"},
		{"value types", func(m pcommon.Map) {
			m.PutInt("int", -42)
			m.PutBool("bool", true)
			m.PutDouble("double", 0.5)
			m.PutStr("str", "s")
		}, "bool=true,double=0.5,int=-42,str=s"},
		{"empty value", func(m pcommon.Map) { m.PutStr("k", "") }, "k="},
	}
	for _, tt := range tests {
		m := pcommon.NewMap()
		tt.fill(m)
		assert.Equal(t, tt.want, string(p.appendAttrs(nil, m)), tt.name)
		assert.Equal(t, "prefix|"+tt.want, string(p.appendAttrs([]byte("prefix|"), m)), tt.name+": appends")
	}
	// The sort scratch space is reused: a point with fewer attributes after one with more
	// gives only its own.
	big := attrMap("a", "1", "b", "2", "c", "3")
	small := attrMap("x", "9")
	assert.Equal(t, "a=1,b=2,c=3", string(p.appendAttrs(nil, big)))
	assert.Equal(t, "x=9", string(p.appendAttrs(nil, small)))
}

func TestAttrValue(t *testing.T) {
	assert.Equal(t, "s", pdatacontract.String(pcommon.NewValueStr("s")))
	assert.Equal(t, "7", pdatacontract.String(pcommon.NewValueInt(7)))
	assert.Equal(t, "false", pdatacontract.String(pcommon.NewValueBool(false)))
}

func TestZapLevel(t *testing.T) {
	tests := []struct {
		level alerting.Level
		want  zapcore.Level
	}{
		{alerting.None, zapcore.InfoLevel},
		{alerting.Info, zapcore.InfoLevel},
		{alerting.Warning, zapcore.WarnLevel},
		{alerting.Error, zapcore.ErrorLevel},
		{alerting.Critical, zapcore.ErrorLevel},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, zapLevel(tt.level), tt.level.String())
	}
}

// TestRuleSpec: every key of a rule's configuration reaches the engine.
func TestRuleSpec(t *testing.T) {
	rc := RuleConfig{
		Name: "n", Metric: "m", Aggregation: "p95", Window: time.Minute, Interval: time.Second,
		Thresholds: ThresholdsConfig{Info: ptr(1), Warning: ptr(2), Error: ptr(3), Critical: ptr(4)},
		For:        2 * time.Minute, KeepFiringFor: 3 * time.Minute,
		Match: map[string]string{"k": "v"}, Scope: "build", Direction: "below",
	}
	var th alerting.Thresholds
	for i, l := range alerting.Levels {
		th.Set(l, float64(i+1))
	}
	assert.Equal(t, alerting.RuleSpec{
		Name: "n", Metric: "m", Aggregation: "p95", Window: time.Minute, Interval: time.Second,
		For: 2 * time.Minute, KeepFiringFor: 3 * time.Minute, Thresholds: th,
		Match: map[string]string{"k": "v"}, Scope: "build", Direction: "below",
	}, rc.spec())

	partial := ThresholdsConfig{Error: ptr(0.5)}
	got := partial.compile()
	for _, l := range alerting.Levels {
		v, ok := got.Get(l)
		assert.Equal(t, l == alerting.Error, ok, l.String())
		if ok {
			assert.InDelta(t, 0.5, v, 0)
		}
	}
}

// TestFactoryReportsEveryRuleError: a processor with several broken rules is refused with
// every problem, each naming its rule.
func TestFactoryReportsEveryRuleError(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Rules = []RuleConfig{
		{Name: "ok", Metric: "cpu_usage", Thresholds: ThresholdsConfig{Warning: ptr(0.9)}},
		{Name: "", Metric: "cpu_usage", Thresholds: ThresholdsConfig{Warning: ptr(0.9)}},
		{Name: "bad", Metric: "build.progress", Scope: "host"},
	}
	_, err := newBuildProgressProcessor(processortest.NewNopSettings(metadata.Type), cfg, &fakeClock{now: t0})
	require.Error(t, err)
	assert.Equal(t, "rules[1].name must not be empty\n"+
		"rules[2].thresholds must set at least one of info, warning, error, critical\n"+
		"rules[2].scope: host needs a host metric; build.progress is per build", err.Error())
}

// newTestProcessor returns a processor made directly (not through the factory) whose
// batch clock reads now, with the given rules.
func newTestProcessor(t *testing.T, rules []RuleConfig, logger *zap.Logger) *buildProgressProcessor {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Rules = rules
	set := processortest.NewNopSettings(metadata.Type)
	if logger != nil {
		set.Logger = logger
	}
	p, err := newBuildProgressProcessor(set, cfg, &fakeClock{now: t0})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.shutdown(context.Background())) })
	p.now = t0
	return p
}

// gaugePoints returns the data points of a new gauge of metric name.
func gaugePoints(name string) pmetric.NumberDataPointSlice {
	m := pmetric.NewMetric()
	m.SetName(name)
	return m.SetEmptyGauge().DataPoints()
}

// TestCombinedAliases: an alias reduces a host resource's points to one value (the sum of
// the rates, the fullest filesystem, the busy share; NaN skipped) in one series.
func TestCombinedAliases(t *testing.T) {
	p := newTestProcessor(t, []RuleConfig{
		{Name: "net", Metric: "network_bandwidth", Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(1e12)}},
		{Name: "disk", Metric: "disk_usage", Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(2)}},
		{Name: "cpu", Metric: "cpu_usage", Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(2)}},
	}, nil)
	rm := pmetric.NewResourceMetrics()
	rm.Resource().Attributes().PutStr(schema.AttrHostName, "h1")
	sm := rm.ScopeMetrics().AppendEmpty()
	net := newMetric(sm, schema.MetricNetworkIORate, "By/s").SetEmptyGauge().DataPoints()
	doublePoint(net, t0, 100, schema.AttrNetworkDirection, "transmit")
	doublePoint(net, t0.Add(2*time.Second), 50, schema.AttrNetworkDirection, "receive")
	doublePoint(net, t0.Add(5*time.Second), math.NaN(), schema.AttrNetworkDirection, "receive")
	disk := newMetric(sm, schema.MetricFilesystemUtilization, "1").SetEmptyGauge().DataPoints()
	doublePoint(disk, t0, 0.3, schema.AttrMountpoint, "/")
	doublePoint(disk, t0, 0.9, schema.AttrMountpoint, "/var")
	doublePoint(disk, t0, 0.5, schema.AttrMountpoint, "/tmp")
	cpu := newMetric(sm, schema.MetricCPUUtilization, "1").SetEmptyGauge().DataPoints()
	doublePoint(cpu, t0, 0.99, schema.AttrCPUMode, "idle") // not the busy share
	doublePoint(cpu, t0, 0.25, schema.AttrCPUMode, "busy")
	h := p.ingestHost(context.Background(), "h1", rm, t0)

	expired, _ := h.alerts.Expire(t0.Add(time.Hour), nil)
	require.Len(t, expired, 3, "one series per combined rule")
	got := map[string]float64{}
	for _, e := range expired {
		assert.Empty(t, e.Attrs, e.Rule.Name)
		got[e.Rule.Name] = e.Alert.Value
	}
	assert.Equal(t, map[string]float64{"net": 150, "disk": 0.9, "cpu": 0.25}, got)
}

// TestPerPointSeries: a rule without combine keeps one series per attribute set, keyed by
// the sorted attributes, and reads only the points its match selects.
func TestPerPointSeries(t *testing.T) {
	p := newTestProcessor(t, []RuleConfig{{Name: "fs", Metric: schema.MetricFilesystemUtilization, Aggregation: "last",
		Match: map[string]string{schema.AttrFilesystemType: "ext4"}, Thresholds: ThresholdsConfig{Warning: ptr(0.8)}}}, nil)
	h := p.hostFor("h1")
	res := attrMap(schema.AttrHostName, "h1")
	fs := gaugePoints(schema.MetricFilesystemUtilization)
	doublePoint(fs, t0, 0.3, schema.AttrMountpoint, "/", schema.AttrFilesystemType, "ext4")
	doublePoint(fs, t0, 0.9, schema.AttrFilesystemType, "ext4", schema.AttrMountpoint, "/var")
	doublePoint(fs, t0, 0.95, schema.AttrMountpoint, "/boot", schema.AttrFilesystemType, "vfat")
	p.observeMetric(context.Background(), p.engine.RulesFor(schema.MetricFilesystemUtilization), fs, res, nil, h, t0)

	require.Equal(t, 2, h.alerts.Len())
	expired, _ := h.alerts.Expire(t0.Add(time.Hour), nil)
	assert.Equal(t, "system.filesystem.mountpoint=/,system.filesystem.type=ext4", expired[0].Attrs)
	assert.Equal(t, "system.filesystem.mountpoint=/var,system.filesystem.type=ext4", expired[1].Attrs)
	assert.Equal(t, alerting.Inactive, expired[0].Alert.State)
	assert.Equal(t, alerting.Firing, expired[1].Alert.State)
}

// TestObserveMetricAllocations: feeding points to existing series allocates nothing, the
// reason the attribute buffer is reused from point to point.
func TestObserveMetricAllocations(t *testing.T) {
	p := newTestProcessor(t, []RuleConfig{
		{Name: "fs", Metric: schema.MetricFilesystemUtilization, Aggregation: "max", Thresholds: ThresholdsConfig{Warning: ptr(0.8)}},
		{Name: "disk", Metric: "disk_usage", Aggregation: "avg", Thresholds: ThresholdsConfig{Warning: ptr(0.8)}},
		{Name: "fs_build", Metric: schema.MetricFilesystemUtilization, Scope: "build", Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(0.8)}},
	}, nil)
	h := p.hostFor("h1")
	b := p.buildFor(context.Background(), "b-1", t0)
	p.attachHost(b, "h1", t0)
	res := attrMap(schema.AttrHostName, "h1")
	fs := gaugePoints(schema.MetricFilesystemUtilization)
	for _, mp := range []string{"/", "/var", "/tmp", "/home"} {
		doublePoint(fs, t0, 0.5, schema.AttrMountpoint, mp, schema.AttrDevice, "sda", schema.AttrFilesystemType, "ext4")
	}
	rules := p.engine.RulesFor(schema.MetricFilesystemUtilization)
	require.Len(t, rules, 3)
	p.observeMetric(context.Background(), rules, fs, res, nil, h, t0)
	require.Equal(t, 4, h.alerts.Len(), "four mountpoints (observeAliases feeds disk_usage)")
	require.Equal(t, 4, b.alerts.Len(), "the build-scoped rule reaches the running build")
	allocs := testing.AllocsPerRun(50, func() {
		p.observeMetric(context.Background(), rules, fs, res, nil, h, t0)
	})
	assert.Zero(t, allocs)
	assert.Equal(t, 4, h.alerts.Len())
}

// TestAlertLogs: each kind of alert change is logged once with the fields that explain it;
// a level change while pending is only a debug line.
func TestAlertLogs(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	p := newTestProcessor(t, []RuleConfig{{Name: "fs", Metric: schema.MetricFilesystemUtilization, Aggregation: "last",
		For: 10 * time.Second, Thresholds: ThresholdsConfig{Warning: ptr(0.8), Error: ptr(0.9)}}}, zap.New(core))
	h := p.hostFor("h1")
	res := attrMap(schema.AttrHostName, "h1")
	feed := func(at time.Duration, v float64) {
		p.now = t0.Add(at * time.Second)
		fs := gaugePoints(schema.MetricFilesystemUtilization)
		doublePoint(fs, p.now, v, schema.AttrMountpoint, "/var")
		p.observeMetric(context.Background(), p.engine.RulesFor(schema.MetricFilesystemUtilization), fs, res, nil, h, p.now)
	}
	steps := []struct {
		at      time.Duration
		v       float64
		message string // "" for nothing logged
		level   zapcore.Level
		fields  map[string]any
	}{
		{0, 0.5, "", 0, nil},
		{1, 0.85, "alert pending", zapcore.InfoLevel, map[string]any{"state": "pending", "previous_state": "inactive", "level": "WARNING", "threshold": 0.8}},
		{2, 0.95, "alert changed", zapcore.DebugLevel, map[string]any{"state": "pending", "level": "ERROR", "threshold": 0.9}},
		{3, 0.5, "alert cleared before firing", zapcore.InfoLevel, map[string]any{"state": "inactive", "previous_state": "pending", "level": "NONE"}},
		{4, 0.85, "alert pending", zapcore.InfoLevel, nil},
		{14, 0.86, "alert firing", zapcore.WarnLevel, map[string]any{"state": "firing", "level": "WARNING", "value": 0.86}},
		{15, 0.95, "alert firing", zapcore.ErrorLevel, map[string]any{"level": "ERROR", "previous_level": "WARNING"}},
		{16, 0.96, "", 0, nil},
		{17, 0.1, "alert resolved", zapcore.InfoLevel, map[string]any{"state": "resolved", "previous_state": "firing"}},
		{18, 0.1, "alert changed", zapcore.DebugLevel, map[string]any{"state": "inactive", "previous_state": "resolved"}},
	}
	for i, s := range steps {
		before := logs.Len()
		feed(s.at, s.v)
		entries := logs.All()[before:]
		if s.message == "" {
			assert.Empty(t, entries, "step %d", i)
			continue
		}
		require.Len(t, entries, 1, "step %d", i)
		e := entries[0]
		assert.Equal(t, s.message, e.Message, "step %d", i)
		assert.Equal(t, s.level, e.Level, "step %d", i)
		fields := e.ContextMap()
		assert.Equal(t, "h1", fields[schema.AttrHostName], "step %d", i)
		assert.Equal(t, "fs", fields["rule"], "step %d", i)
		assert.Equal(t, schema.MetricFilesystemUtilization, fields["metric"], "step %d", i)
		assert.Equal(t, "system.filesystem.mountpoint=/var", fields["attributes"], "step %d", i)
		for k, v := range s.fields {
			assert.Equal(t, v, fields[k], "step %d field %s", i, k)
		}
		if s.fields["level"] == "NONE" {
			assert.NotContains(t, fields, "threshold", "step %d", i)
		}
	}
}

// TestExpiryLogs: an expired series is logged when it was pending or firing, naming its
// owner; a quiet one expires silently. A build's CRITICAL series expiring unpauses it.
func TestExpiryLogs(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	p := newTestProcessor(t, []RuleConfig{
		{Name: "slow", Metric: schema.MetricPhaseDuration, Aggregation: "last", Thresholds: ThresholdsConfig{Critical: ptr(100)}},
		{Name: "quiet", Metric: schema.MetricBuildDuration, Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(1e9)}},
	}, zap.New(core))
	b := p.buildFor(context.Background(), "b-1", t0)
	b.lastSeen = t0
	p.lruPushFront(b)
	res := attrMap(schema.AttrRunID, "b-1")
	phase := gaugePoints(schema.MetricPhaseDuration)
	doublePoint(phase, t0, 150, schema.AttrPhase, "BUILD")
	p.observeMetric(context.Background(), p.engine.RulesFor(schema.MetricPhaseDuration), phase, res, b, nil, t0)
	dur := gaugePoints(schema.MetricBuildDuration)
	doublePoint(dur, t0, 10)
	p.observeMetric(context.Background(), p.engine.RulesFor(schema.MetricBuildDuration), dur, res, b, nil, t0)
	require.True(t, b.paused())
	require.Len(t, p.pauseNotices, 1)
	p.pauseNotices = p.pauseNotices[:0]
	p.batch++

	b.lastSeen = t0.Add(20 * time.Minute) // the build itself is still reported
	p.sweep(context.Background(), t0.Add(20*time.Minute))
	assert.False(t, b.paused())
	assert.Equal(t, []*buildState{b}, p.pauseNotices, "the unpause is announced")
	assert.Equal(t, 0, b.alerts.Len())
	expired := logs.FilterMessage("alert series expired without data").All()
	require.Len(t, expired, 1)
	assert.Equal(t, map[string]any{
		schema.AttrRunID: "b-1", "rule": "slow", "attributes": "build.phase=BUILD", "state": "firing", "level": "CRITICAL",
	}, expired[0].ContextMap())
}
