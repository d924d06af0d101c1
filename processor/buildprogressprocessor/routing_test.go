package buildprogressprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/internal/alerting"
	"github.com/buildmon/buildmon/internal/schema"
)

// TestDerivedValueSeries: rules on the processor's own values see one series per build for
// build.progress and build.eta, and one per phase for build.phase.progress, keyed by
// build.phase; a phase match selects the phase.
func TestDerivedValueSeries(t *testing.T) {
	p := newTestProcessor(t, []RuleConfig{
		{Name: "stalled", Metric: schema.MetricBuildProgress, Direction: "below", Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(0.5)}},
		{Name: "eta", Metric: schema.MetricBuildETA, Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(1e9)}},
		{Name: "phases", Metric: schema.MetricPhaseProgress, Direction: "below", Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(0.5)}},
		{Name: "test_phase", Metric: schema.MetricPhaseProgress, Direction: "below", Aggregation: "last",
			Match: map[string]string{schema.AttrPhase: "TEST"}, Thresholds: ThresholdsConfig{Warning: ptr(0.5)}},
		{Name: "other_pipeline", Metric: schema.MetricBuildProgress, Direction: "below", Aggregation: "last",
			Match: map[string]string{schema.AttrPipelineName: "nightly"}, Thresholds: ThresholdsConfig{Warning: ptr(0.5)}},
	}, nil)
	md := batch([]buildIn{{id: "b-1", pipeline: "ci", host: "h1", at: t0, duration: 10, phases: []phaseIn{
		{name: "BUILD", state: "running", total: 4, done: 3},
		{name: "TEST", state: "pending", total: 4},
	}}})
	b := p.ingestBuild(context.Background(), "b-1", md.ResourceMetrics().At(0), t0)
	require.InDelta(t, 0.4*0.75/0.7, b.overall, 1e-9)

	expired, _ := b.alerts.Expire(t0.Add(time.Hour), nil)
	got := map[string]alerting.State{}
	for _, e := range expired {
		got[e.Rule.Name+" "+e.Attrs] = e.Alert.State
	}
	assert.Equal(t, map[string]alerting.State{
		"stalled ":                    alerting.Firing, // overall 0.43
		"eta ":                        alerting.Inactive,
		"phases build.phase=BUILD":    alerting.Inactive,
		"phases build.phase=TEST":     alerting.Firing,
		"test_phase build.phase=TEST": alerting.Firing,
	}, got)
}

// TestETARuleNeedsAnETA: a build.eta rule sees no value while the ETA is unknown.
func TestETARuleNeedsAnETA(t *testing.T) {
	p := newTestProcessor(t, []RuleConfig{
		{Name: "eta", Metric: schema.MetricBuildETA, Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(1)}},
	}, nil)
	md := batch([]buildIn{{id: "b-1", pipeline: "ci", host: "h1", at: t0, phases: []phaseIn{
		{name: "BUILD", state: "running", total: 4, done: 0},
	}}})
	b := p.ingestBuild(context.Background(), "b-1", md.ResourceMetrics().At(0), t0)
	require.False(t, b.etaKnown, "no progress yet: no ETA")
	assert.Equal(t, 0, b.alerts.Len())
}

// TestScopeRouting: a host rule's value goes to the host; a build rule's on a build metric to
// that build; a build rule's on a host metric to each running build on the host.
func TestScopeRouting(t *testing.T) {
	p := newTestProcessor(t, []RuleConfig{
		{Name: "host_mem", Metric: "memory_usage", Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(0.5)}},
		{Name: "build_mem", Metric: "memory_usage", Scope: "build", Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(0.5)}},
		{Name: "slow", Metric: schema.MetricBuildDuration, Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(5)}},
	}, nil)
	ctx := context.Background()
	md := batch([]buildIn{
		{id: "run-1", pipeline: "ci", host: "h1", at: t0, duration: 10},
		{id: "run-2", pipeline: "ci", host: "h1", at: t0, duration: 1},
		{id: "done", pipeline: "ci", host: "h1", at: t0, duration: 10, finished: true, result: "success"},
		{id: "elsewhere", pipeline: "ci", host: "h2", at: t0, duration: 1},
	}, hostIn{name: "h1", at: t0, memUtil: 0.7, onlySystem: true})
	rms := md.ResourceMetrics()
	builds := map[string]*buildState{}
	for i, id := range []string{"run-1", "run-2", "done", "elsewhere"} {
		builds[id] = p.ingestBuild(ctx, id, rms.At(i), t0)
	}
	h := p.ingestHost(ctx, "h1", rms.At(4), t0)

	rulesOf := func(set *alerting.Set) []string {
		expired, _ := set.Expire(t0.Add(time.Hour), nil)
		var names []string
		for _, e := range expired {
			names = append(names, e.Rule.Name)
		}
		return names
	}
	assert.Equal(t, []string{"host_mem"}, rulesOf(&h.alerts))
	assert.Equal(t, []string{"slow", "build_mem"}, rulesOf(&builds["run-1"].alerts))
	assert.Equal(t, []string{"slow", "build_mem"}, rulesOf(&builds["run-2"].alerts))
	assert.Equal(t, []string{"slow"}, rulesOf(&builds["done"].alerts), "a finished build gets no host values")
	assert.Equal(t, []string{"slow"}, rulesOf(&builds["elsewhere"].alerts), "another host's values stay there")
}

// TestSweepForgetsIdleHosts: a host is forgotten once it sent nothing for expiry and has
// neither builds nor alert series; until then it is kept.
func TestSweepForgetsIdleHosts(t *testing.T) {
	p := newTestProcessor(t, []RuleConfig{
		{Name: "mem", Metric: "memory_usage", Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(0.5)}},
	}, nil)
	ctx := context.Background()
	md := batch(nil, hostIn{name: "quiet", at: t0, memUtil: 0.7, onlySystem: true})
	p.ingestHost(ctx, "quiet", md.ResourceMetrics().At(0), t0)
	withBuild := p.hostFor("busy")
	withBuild.lastSeen = t0
	b := p.buildFor(ctx, "b-1", t0)
	b.lastSeen = t0.Add(time.Hour)
	p.lruPushFront(b)
	p.attachHost(b, "busy", t0)

	p.sweep(ctx, t0.Add(time.Minute))
	assert.Contains(t, p.hosts, "quiet", "not expired yet")
	p.sweep(ctx, t0.Add(p.expiry+time.Second))
	assert.NotContains(t, p.hosts, "quiet", "silent, no builds, its series expired")
	assert.Contains(t, p.hosts, "busy", "a build still names it")
	assert.Equal(t, t0.Add(p.expiry+time.Second), p.lastSweep)
}

// TestLevelChangeEmitsPrevious: when a rule's shown alert changes level, the batch carries
// the old level with 0 beside the new one with 1, and build.alert.value only for the new.
func TestLevelChangeEmitsPrevious(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Rules = []RuleConfig{{Name: "mem", Metric: "memory_usage", Aggregation: "last",
		Thresholds: ThresholdsConfig{Warning: ptr(0.5), Error: ptr(0.9)}}}
	h := newHarness(t, cfg)
	h.consume(t0, batch(nil, hostIn{name: "h1", at: t0, memUtil: 0.6, onlySystem: true}))
	at := t0.Add(time.Second)
	out := h.consume(at, batch(nil, hostIn{name: "h1", at: at, memUtil: 0.95, onlySystem: true}))
	got := derived(t, out, schema.AttrHostName, "h1")
	require.Equal(t, 2, got[schema.MetricAlertActive].Len())
	v, ok := activeAlert(t, out, schema.AttrHostName, "h1", "mem", "WARNING", "firing")
	require.True(t, ok)
	assert.InDelta(t, 0.0, v, 0)
	v, ok = activeAlert(t, out, schema.AttrHostName, "h1", "mem", "ERROR", "firing")
	require.True(t, ok)
	assert.InDelta(t, 1.0, v, 0)
	require.Equal(t, 1, got[schema.MetricAlertValue].Len())
	v, ok = pointValue(t, got[schema.MetricAlertValue], schema.AttrAlertRule, "mem", schema.AttrAlertLevel, "ERROR")
	require.True(t, ok)
	assert.InDelta(t, 0.95, v, 0)
}

// TestPauseNoticeOncePerBatch: two CRITICAL host series starting in one batch give the
// absent build one pause notice; the unpause comes only when the last one stops.
func TestPauseNoticeOncePerBatch(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Rules = []RuleConfig{{Name: "fs", Metric: schema.MetricFilesystemUtilization, Aggregation: "last",
		Thresholds: ThresholdsConfig{Critical: ptr(0.9)}}}
	h := newHarness(t, cfg)
	h.consume(t0, batch([]buildIn{runningBuild("b-1", "h1", t0, 1)}))
	paused := func(out pmetric.Metrics) (int64, int) {
		notices := 0
		for i := 0; i < out.ResourceMetrics().Len(); i++ {
			if _, ok := out.ResourceMetrics().At(i).Resource().Attributes().Get(schema.AttrRunID); ok {
				notices++
			}
		}
		if notices == 0 {
			return -1, 0
		}
		return derived(t, out, schema.AttrRunID, "b-1")[schema.MetricBuildPaused].At(0).IntValue(), notices
	}
	steps := []struct {
		fs      [2]float64
		paused  int64 // -1: no notice
		notices int
	}{
		{[2]float64{0.95, 0.95}, 1, 1}, // both mounts CRITICAL: one notice
		{[2]float64{0.5, 0.95}, -1, 0}, // one still CRITICAL: no change
		{[2]float64{0.5, 0.5}, 0, 1},   // the last one stops: unpaused
		{[2]float64{0.5, 0.5}, -1, 0},
	}
	for i, s := range steps {
		at := t0.Add(time.Duration(i+1) * time.Second)
		p, n := paused(h.consume(at, batch(nil, hostIn{name: "h1", at: at, fsUtil: s.fs})))
		assert.Equal(t, s.paused, p, "step %d", i)
		assert.Equal(t, s.notices, n, "step %d", i)
	}
}

// TestQuietHostGetsNoScope: a host whose rules show nothing keeps its resource as it came:
// the processor's scope is added only when there is something to put in it.
func TestQuietHostGetsNoScope(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Rules = []RuleConfig{{Name: "mem", Metric: "memory_usage", Aggregation: "last",
		Thresholds: ThresholdsConfig{Info: ptr(0.5), Warning: ptr(0.9)}}}
	h := newHarness(t, cfg)
	for i, util := range []float64{0.1, 0.6, 0.1} { // quiet, INFO only (logged, not shown), quiet
		at := t0.Add(time.Duration(i) * time.Second)
		out := h.consume(at, batch(nil, hostIn{name: "h1", at: at, memUtil: util, onlySystem: true}))
		require.Equal(t, 1, out.ResourceMetrics().Len())
		sms := out.ResourceMetrics().At(0).ScopeMetrics()
		require.Equal(t, 1, sms.Len(), "step %d", i)
		assert.Equal(t, receiverScope, sms.At(0).Scope().Name())
	}
}

// TestNonStringResourceAttributes: the processor reads attributes in their string form, as
// the checkpoint exporter does, so a build whose run id arrives as an int (a CI system's
// numeric run number over OTLP) is a build, not a host: it gets its progress.
func TestNonStringResourceAttributes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		set       func(res pcommon.Map)
		wantBuild bool
	}{
		{"string run id", func(pcommon.Map) {}, true},
		{"int run id", func(res pcommon.Map) { res.PutInt(schema.AttrRunID, 4711) }, true},
		{"empty run id", func(res pcommon.Map) { res.PutStr(schema.AttrRunID, "") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, createDefaultConfig().(*Config))
			md := batch([]buildIn{{id: "4711", pipeline: "ci", host: "h1", at: t0, phases: []phaseIn{
				{name: "BUILD", state: "running", total: 4, done: 2},
			}}})
			tc.set(md.ResourceMetrics().At(0).Resource().Attributes())
			out := h.consume(t0, md)
			sms := out.ResourceMetrics().At(0).ScopeMetrics()
			var progress pmetric.NumberDataPointSlice
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					if ms.At(k).Name() == schema.MetricBuildProgress {
						progress = ms.At(k).Gauge().DataPoints()
					}
				}
			}
			v, ok := pointValue(t, progress)
			require.Equal(t, tc.wantBuild, ok, "build.progress appended")
			if ok {
				assert.InDelta(t, 0.5, v, 1e-9)
			}
		})
	}
}
