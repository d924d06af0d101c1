package buildprogressprocessor

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/buildmon/buildmon/internal/schema"
	"github.com/buildmon/buildmon/processor/buildprogressprocessor/internal/metadata"
	"github.com/buildmon/buildmon/processor/buildprogressprocessor/internal/metadatatest"
)

func runningBuild(id, host string, at time.Time, done int64) buildIn {
	return buildIn{id: id, pipeline: "ci", host: host, at: at, duration: at.Sub(t0).Seconds() + 1,
		phases: []phaseIn{{name: "BUILD", state: "running", total: 10, done: done}}}
}

// activeAlert returns the build.alert.active value of rule on a resource of out.
func activeAlert(t *testing.T, out pmetric.Metrics, attr, id, rule, level, state string) (float64, bool) {
	t.Helper()
	return pointValue(t, derived(t, out, attr, id)[schema.MetricAlertActive],
		schema.AttrAlertRule, rule, schema.AttrAlertLevel, level, schema.AttrAlertState, state)
}

// TestAlertTimeline drives one host rule through pending, firing after `for`, kept firing
// after the condition clears, and resolved, with a fake clock and a data point every 5 s.
// Each state change is logged once however many data points arrive, and the firing is
// counted in the processor's own telemetry.
func TestAlertTimeline(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tel)
	set.Logger = zap.New(core)

	cfg := createDefaultConfig().(*Config)
	cfg.Rules = []RuleConfig{{
		Name: "cpu_hot", Metric: "cpu_usage", Aggregation: "avg", Window: 10 * time.Second,
		For: 20 * time.Second, KeepFiringFor: 15 * time.Second,
		Thresholds: ThresholdsConfig{Warning: ptr(0.8), Critical: ptr(0.95)},
	}}
	h := newHarness(t, cfg, set)

	type want struct {
		level, state string // "" for no active alert shown
		paused       int64
	}
	steps := []struct {
		cpu  float64
		want want
	}{
		{0.10, want{}},                         // 0 s
		{0.90, want{}},                         // 5 s: avg(0.1, 0.9) = 0.5
		{0.90, want{}},                         // 10 s: avg(0.1, 0.9, 0.9) = 0.63
		{0.90, want{"WARNING", "pending", 0}},  // 15 s: 0.1 left the window: 0.9
		{0.99, want{"WARNING", "pending", 0}},  // 20 s: 0.93
		{0.99, want{"CRITICAL", "pending", 0}}, // 25 s: 0.96, level follows the value
		{0.99, want{"CRITICAL", "pending", 0}}, // 30 s: pending for 15 s < for
		{0.99, want{"CRITICAL", "firing", 1}},  // 35 s: pending for 20 s: fires, pauses
		{0.10, want{"CRITICAL", "firing", 1}},  // 40 s: avg 0.69 clears; kept firing for 15 s
		{0.10, want{"CRITICAL", "firing", 1}},  // 45 s
		{0.10, want{"CRITICAL", "firing", 1}},  // 50 s
		{0.10, want{}},                         // 55 s: clear for 15 s: resolved, unpaused
		{0.10, want{}},                         // 60 s
		{0.10, want{}},                         // 65 s
	}
	for i, s := range steps {
		at := t0.Add(time.Duration(i) * 5 * time.Second)
		out := h.consume(at, batch([]buildIn{runningBuild("b-1", "h1", at, 1)},
			hostIn{name: "h1", at: at, cpu: s.cpu, onlySystem: true}))
		host, hasAlerts := derived(t, out, schema.AttrHostName, "h1")[schema.MetricAlertActive]
		shown := ""
		for k := 0; hasAlerts && k < host.Len(); k++ {
			dp := host.At(k)
			if dp.IntValue() == 1 {
				lvl, _ := dp.Attributes().Get(schema.AttrAlertLevel)
				st, _ := dp.Attributes().Get(schema.AttrAlertState)
				shown = lvl.Str() + "/" + st.Str()
			}
		}
		wantShown := ""
		if s.want.level != "" {
			wantShown = s.want.level + "/" + s.want.state
		}
		assert.Equal(t, wantShown, shown, "at %v", at.Sub(t0))
		assert.Equal(t, s.want.paused, derived(t, out, schema.AttrRunID, "b-1")[schema.MetricBuildPaused].At(0).IntValue(), "paused at %v", at.Sub(t0))
	}

	count := func(msg string) int { return logs.FilterMessage(msg).Len() }
	assert.Equal(t, 1, count("alert pending"))
	assert.Equal(t, 1, count("alert firing"))
	assert.Equal(t, 1, count("alert resolved"))
	firing := logs.FilterMessage("alert firing").All()[0]
	assert.Equal(t, zapcore.ErrorLevel, firing.Level, "CRITICAL fires at error level")
	assert.Equal(t, "CRITICAL", firing.ContextMap()["level"])
	assert.Equal(t, "h1", firing.ContextMap()[schema.AttrHostName])
	assert.Equal(t, "cpu_hot", firing.ContextMap()["rule"])

	metadatatest.AssertEqualProcessorBuildprogressAlertsFired(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String(schema.AttrAlertLevel, "CRITICAL")), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorBuildprogressBuildsTracked(t, tel, []metricdata.DataPoint[int64]{{Value: 1}},
		metricdatatest.IgnoreTimestamp())
}

// TestLevelActions checks each level's action: INFO is only logged, WARNING and ERROR show
// in telemetry (ERROR logged as an error), CRITICAL also pauses the builds on the host.
func TestLevelActions(t *testing.T) {
	tests := []struct {
		level      string
		th         ThresholdsConfig
		inTelem    bool
		logLevel   zapcore.Level
		wantPaused int64
	}{
		{"INFO", ThresholdsConfig{Info: ptr(0.5)}, false, zapcore.InfoLevel, 0},
		{"WARNING", ThresholdsConfig{Warning: ptr(0.5)}, true, zapcore.WarnLevel, 0},
		{"ERROR", ThresholdsConfig{Error: ptr(0.5)}, true, zapcore.ErrorLevel, 0},
		{"CRITICAL", ThresholdsConfig{Critical: ptr(0.5)}, true, zapcore.ErrorLevel, 1},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			core, logs := observer.New(zapcore.InfoLevel)
			set := metadatatest.NewSettings(componenttest.NewTelemetry())
			set.Logger = zap.New(core)
			cfg := createDefaultConfig().(*Config)
			cfg.Rules = []RuleConfig{{Name: "mem", Metric: "memory_usage", Aggregation: "last", Thresholds: tt.th}}
			h := newHarness(t, cfg, set)
			out := h.consume(t0, batch([]buildIn{runningBuild("b-1", "h1", t0, 1)},
				hostIn{name: "h1", at: t0, memUtil: 0.7, onlySystem: true}))
			_, shown := activeAlert(t, out, schema.AttrHostName, "h1", "mem", tt.level, "firing")
			assert.Equal(t, tt.inTelem, shown)
			require.Equal(t, 1, logs.FilterMessage("alert firing").Len())
			assert.Equal(t, tt.logLevel, logs.FilterMessage("alert firing").All()[0].Level)
			assert.Equal(t, tt.wantPaused, derived(t, out, schema.AttrRunID, "b-1")[schema.MetricBuildPaused].At(0).IntValue())
		})
	}
}

// TestExpiredAlertIsClearedOnce: a shown alert whose series expires while its build keeps
// reporting (the build no longer sends the matching data point) is reported once more with
// 0 on the build's next emission, then no more.
func TestExpiredAlertIsClearedOnce(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Expiry = time.Minute
	cfg.Rules = []RuleConfig{{Name: "phase_slow", Metric: "build.phase.duration", Aggregation: "last",
		Match: map[string]string{"build.phase": "BUILD"}, Thresholds: ThresholdsConfig{Warning: ptr(100)}}}
	h := newHarness(t, cfg)
	report := func(at time.Time, phase string) pmetric.Metrics {
		return h.consume(at, batch([]buildIn{{id: "b-1", pipeline: "ci", host: "h1", at: at, duration: 200,
			phases: []phaseIn{{name: phase, state: "running", total: 10, done: 1, duration: 150}}}}))
	}
	shown := func(out pmetric.Metrics) (float64, bool) {
		return activeAlert(t, out, schema.AttrRunID, "b-1", "phase_slow", "WARNING", "firing")
	}

	v, ok := shown(report(t0, "BUILD"))
	require.True(t, ok)
	assert.InDelta(t, 1.0, v, 0)
	// The build moves on to TEST: the BUILD series gets no value but is not expired yet.
	v, ok = shown(report(t0.Add(30*time.Second), "TEST"))
	require.True(t, ok)
	assert.InDelta(t, 1.0, v, 0)
	// Past expiry the series is dropped: its alert is reported once with 0…
	out := report(t0.Add(61*time.Second), "TEST")
	v, ok = shown(out)
	require.True(t, ok)
	assert.InDelta(t, 0.0, v, 0)
	_, hasValue := derived(t, out, schema.AttrRunID, "b-1")[schema.MetricAlertValue]
	assert.False(t, hasValue)
	// …and then no more.
	out = report(t0.Add(62*time.Second), "TEST")
	_, hasActive := derived(t, out, schema.AttrRunID, "b-1")[schema.MetricAlertActive]
	assert.False(t, hasActive)
}

// TestManySeriesOnOneHost: a rule with a series per mountpoint keeps each series' state from
// batch to batch whether the host has a few series or many (indexed), and across the expiry
// of most of them.
func TestManySeriesOnOneHost(t *testing.T) {
	// mounts reports mountpoints /m<from> to /m<to-1> of h1, the last one at 0.95 and the
	// others at 0.1.
	mounts := func(at time.Time, from, to int) pmetric.Metrics {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr(schema.AttrHostName, "h1")
		dps := newMetric(rm.ScopeMetrics().AppendEmpty(), schema.MetricFilesystemUtilization, "1").SetEmptyGauge().DataPoints()
		for i := from; i < to; i++ {
			v := 0.1
			if i == to-1 {
				v = 0.95
			}
			doublePoint(dps, at, v, schema.AttrMountpoint, fmt.Sprintf("/m%d", i))
		}
		return md
	}
	state := func(out pmetric.Metrics) string {
		for _, st := range []string{"pending", "firing"} {
			if v, ok := activeAlert(t, out, schema.AttrHostName, "h1", "fs_full", "WARNING", st); ok && v == 1 {
				return st
			}
		}
		return ""
	}
	// 40 mountpoints of which 20 stay: indexed before and after the expiry; 3 of which 2 stay:
	// never indexed.
	for _, n := range []struct{ all, kept int }{{40, 20}, {3, 2}} {
		t.Run(fmt.Sprintf("mountpoints=%d", n.all), func(t *testing.T) {
			core, logs := observer.New(zapcore.InfoLevel)
			set := processortest.NewNopSettings(metadata.Type)
			set.Logger = zap.New(core)
			cfg := createDefaultConfig().(*Config)
			cfg.Expiry = time.Minute
			cfg.Rules = []RuleConfig{{Name: "fs_full", Metric: schema.MetricFilesystemUtilization, Aggregation: "last",
				For: 10 * time.Second, Thresholds: ThresholdsConfig{Warning: ptr(0.9)}}}
			h := newHarness(t, cfg, set)
			report := func(d time.Duration, from int) string {
				at := t0.Add(d)
				return state(h.consume(at, mounts(at, from, n.all)))
			}
			assert.Equal(t, "pending", report(0, 0))
			assert.Equal(t, "pending", report(5*time.Second, 0))
			assert.Equal(t, "firing", report(10*time.Second, 0))
			// The first mountpoints go away and their series expire (the others move up); the
			// last one keeps firing.
			for _, d := range []time.Duration{30 * time.Second, 75 * time.Second, 80 * time.Second} {
				assert.Equal(t, "firing", report(d, n.all-n.kept), "at %v", d)
			}
			assert.Equal(t, 1, logs.FilterMessage("alert pending").Len())
			assert.Equal(t, 1, logs.FilterMessage("alert firing").Len())
		})
	}
}

// TestBuildScopedRuleOnHostMetric: a build-scoped rule on a host metric keeps one series per
// running build on that host; its CRITICAL pauses those builds only and shows on them.
func TestBuildScopedRuleOnHostMetric(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Rules = []RuleConfig{{Name: "io_storm", Metric: "io_operations", Aggregation: "last", Scope: "build",
		Thresholds: ThresholdsConfig{Critical: ptr(1000)}}}
	h := newHarness(t, cfg)
	h.consume(t0, batch([]buildIn{
		runningBuild("on-h1", "h1", t0, 1),
		runningBuild("on-h2", "h2", t0, 1),
		{id: "done-h1", pipeline: "ci", host: "h1", at: t0, finished: true, result: "success", duration: 10},
	}))
	at := t0.Add(time.Second)
	out := h.consume(at, batch(nil, hostIn{name: "h1", at: at, opsRate: 800}))
	// 800 read + 800 write ops/s: CRITICAL for the running build on h1 only.
	rms := out.ResourceMetrics()
	require.Equal(t, 2, rms.Len(), "host resource and one pause notice")
	notice := derived(t, out, schema.AttrRunID, "on-h1")
	assert.Equal(t, int64(1), notice[schema.MetricBuildPaused].At(0).IntValue())
	v, ok := pointValue(t, notice[schema.MetricAlertActive], schema.AttrAlertRule, "io_storm", schema.AttrAlertLevel, "CRITICAL")
	require.True(t, ok)
	assert.InDelta(t, 1.0, v, 0)
	assert.Empty(t, derived(t, out, schema.AttrHostName, "h1"), "nothing on the host resource")
	// The notice carries the build's last seen resource.
	res := rms.At(1).Resource().Attributes()
	pipeline, _ := res.Get(schema.AttrPipelineName)
	assert.Equal(t, "ci", pipeline.Str())

	out = h.consume(at, batch([]buildIn{runningBuild("on-h2", "h2", at, 2), {id: "done-h1", pipeline: "ci", host: "h1", at: t0, finished: true, result: "success", duration: 10}}))
	assert.Equal(t, int64(0), derived(t, out, schema.AttrRunID, "on-h2")[schema.MetricBuildPaused].At(0).IntValue())
	assert.Equal(t, int64(0), derived(t, out, schema.AttrRunID, "done-h1")[schema.MetricBuildPaused].At(0).IntValue())
}

// TestOwnScopeIsRecomputed: metrics that already passed a buildprogress processor (agent and
// gateway both running one) do not end up with two copies of the derived metrics (fleet_test.go
// checks that they are the agent's).
func TestOwnScopeIsRecomputed(t *testing.T) {
	first := newHarness(t, createDefaultConfig().(*Config))
	second := newHarness(t, createDefaultConfig().(*Config))
	out := first.consume(t0, batch([]buildIn{runningBuild("b-1", "h1", t0, 5)}))
	again := second.consume(t0, out)
	sms := again.ResourceMetrics().At(0).ScopeMetrics()
	require.Equal(t, 2, sms.Len())
	assert.Equal(t, receiverScope, sms.At(0).Scope().Name())
	assert.Equal(t, metadata.ScopeName, sms.At(1).Scope().Name())
}

// TestBuildInSeveralResourcesOfOneBatch: derived metrics go once, on the build's last
// resource of the batch, and reflect all of them.
func TestBuildInSeveralResourcesOfOneBatch(t *testing.T) {
	h := newHarness(t, createDefaultConfig().(*Config))
	md := batch([]buildIn{runningBuild("b-1", "h1", t0, 2), runningBuild("b-1", "h1", t0, 6)})
	out := h.consume(t0, md)
	rms := out.ResourceMetrics()
	assert.Equal(t, 1, rms.At(0).ScopeMetrics().Len())
	require.Equal(t, 2, rms.At(1).ScopeMetrics().Len())
	assert.InDelta(t, 0.6, derived(t, out, schema.AttrRunID, "b-1")[schema.MetricBuildProgress].At(0).DoubleValue(), 1e-9)
}

// TestOtherResourcesPassThrough: a resource that is neither a build nor a host is untouched.
func TestOtherResourcesPassThrough(t *testing.T) {
	h := newHarness(t, createDefaultConfig().(*Config))
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "something")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(schema.MetricBuildProgress)
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(0.3)
	want := pmetric.NewMetrics()
	md.CopyTo(want)
	out := h.consume(t0, md)
	assert.Equal(t, want, out)
}

// TestProgressFromOTLPShapes: step counts sent as doubles in sums (another agent's encoding)
// work as well as the receiver's int gauges.
func TestProgressFromOTLPShapes(t *testing.T) {
	h := newHarness(t, createDefaultConfig().(*Config))
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr(schema.AttrRunID, "remote-1")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	add := func(name string, v float64, kv ...string) {
		m := ms.AppendEmpty()
		m.SetName(name)
		dp := m.SetEmptySum().DataPoints().AppendEmpty()
		dp.SetDoubleValue(v)
		for i := 0; i < len(kv); i += 2 {
			dp.Attributes().PutStr(kv[i], kv[i+1])
		}
	}
	add(schema.MetricPhaseStepsTotal, 4, schema.AttrPhase, "BUILD")
	add(schema.MetricPhaseStepsCompleted, 1, schema.AttrPhase, "BUILD")
	add(schema.MetricPhaseState, 1, schema.AttrPhase, "BUILD", schema.AttrPhaseState, "running")
	out := h.consume(t0, md)
	assert.InDelta(t, 0.25, derived(t, out, schema.AttrRunID, "remote-1")[schema.MetricBuildProgress].At(0).DoubleValue(), 1e-9)
}

// TestExpiryAndMaxBuilds: builds that send nothing for `expiry` are forgotten, and beyond
// max_builds the least recently seen build is dropped (and counted).
func TestExpiryAndMaxBuilds(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	cfg := createDefaultConfig().(*Config)
	cfg.Expiry = time.Minute
	cfg.MaxBuilds = 3
	h := newHarness(t, cfg, metadatatest.NewSettings(tel))

	for i := range 4 {
		at := t0.Add(time.Duration(i) * time.Second)
		h.consume(at, batch([]buildIn{runningBuild(fmt.Sprintf("b-%d", i), "h1", at, 5)}))
	}
	metadatatest.AssertEqualProcessorBuildprogressBuildsEvicted(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorBuildprogressBuildsTracked(t, tel, []metricdata.DataPoint[int64]{{Value: 3}}, metricdatatest.IgnoreTimestamp())

	// b-0 was dropped; b-3 is still tracked, so a lower report does not lower its progress.
	at := t0.Add(10 * time.Second)
	out := h.consume(at, batch([]buildIn{runningBuild("b-3", "h1", at, 1)}))
	assert.InDelta(t, 0.5, derived(t, out, schema.AttrRunID, "b-3")[schema.MetricBuildProgress].At(0).DoubleValue(), 1e-9)

	// Two minutes of silence: everything but the build that still reports expires.
	at = t0.Add(2 * time.Minute)
	h.consume(at, batch([]buildIn{runningBuild("b-9", "h1", at, 1)}))
	metadatatest.AssertEqualProcessorBuildprogressBuildsTracked(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	out = h.consume(at, batch([]buildIn{runningBuild("b-3", "h1", at, 1)}))
	assert.InDelta(t, 0.1, derived(t, out, schema.AttrRunID, "b-3")[schema.MetricBuildProgress].At(0).DoubleValue(), 1e-9,
		"an expired build starts over")
}

// TestHostSeriesExpiryUnpauses: a host whose CRITICAL alert fires and that then goes silent
// does not keep its builds paused forever: the series expires and the builds get a notice.
func TestHostSeriesExpiryUnpauses(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Expiry = time.Minute
	cfg.Rules = []RuleConfig{{Name: "mem", Metric: "memory_usage", Aggregation: "last", Thresholds: ThresholdsConfig{Critical: ptr(0.9)}}}
	h := newHarness(t, cfg)
	out := h.consume(t0, batch([]buildIn{runningBuild("b-1", "h1", t0, 1)}, hostIn{name: "h1", at: t0, memUtil: 0.95, onlySystem: true}))
	assert.Equal(t, int64(1), derived(t, out, schema.AttrRunID, "b-1")[schema.MetricBuildPaused].At(0).IntValue())
	// The build keeps reporting, the host is silent.
	at := t0.Add(30 * time.Second)
	out = h.consume(at, batch([]buildIn{runningBuild("b-1", "h1", at, 2)}))
	assert.Equal(t, int64(1), derived(t, out, schema.AttrRunID, "b-1")[schema.MetricBuildPaused].At(0).IntValue())
	at = t0.Add(61 * time.Second)
	out = h.consume(at, batch([]buildIn{runningBuild("b-1", "h1", at, 3)}))
	assert.Equal(t, int64(0), derived(t, out, schema.AttrRunID, "b-1")[schema.MetricBuildPaused].At(0).IntValue())
}

// TestConcurrentBatches exercises the mutex under the race detector.
func TestConcurrentBatches(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.PhaseResources.Enabled = true
	cfg.Rules = benchmarkRules()
	h := newHarness(t, cfg)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				at := t0.Add(time.Duration(i) * time.Second)
				md := batch([]buildIn{runningBuild(fmt.Sprintf("g%d-%d", g, i%5), "h1", at, int64(i%10))},
					hostIn{name: "h1", at: at, cpu: 0.5, netRate: float64(i)})
				assert.NoError(t, h.proc.ConsumeMetrics(context.Background(), md))
			}
		}()
	}
	wg.Wait()
	assert.NotEmpty(t, h.sink.AllMetrics())
}
