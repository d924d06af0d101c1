package buildprogressprocessor

import (
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/internal/schema"
	"github.com/buildmon/buildmon/processor/buildprogressprocessor/internal/metadata"
)

// withoutETA returns a copy of md without build.eta.
func withoutETA(md pmetric.Metrics) pmetric.Metrics {
	out := pmetric.NewMetrics()
	md.CopyTo(out)
	rms := out.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			sms.At(j).Metrics().RemoveIf(func(m pmetric.Metric) bool { return m.Name() == schema.MetricBuildETA })
		}
	}
	return out
}

// ownScopes counts the processor's scopes on each resource of md and fails on any with more
// than one.
func requireOneOwnScopeAtMost(t *testing.T, md pmetric.Metrics, msg string) {
	t.Helper()
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		n := 0
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			if sms.At(j).Scope().Name() == metadata.ScopeName {
				n++
			}
		}
		require.LessOrEqual(t, n, 1, "%s: resource %d has %d scopes of the processor", msg, i, n)
	}
}

// TestGatewayOutputEqualsAgentOutput runs every golden case through an agent's processor and
// its output through a second processor with the same configuration (a gateway): what the
// gateway passes on equals what the agent passed on, except build.eta. The golden cases cover
// progress, history, a CRITICAL host alert with pause notices for builds not in the batch,
// build-scoped alerts and per-phase resources.
func TestGatewayOutputEqualsAgentOutput(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			agent := newHarness(t, cfg)
			gateway := newHarness(t, cfg)
			for i, next := range tc.batches {
				at, md := next()
				out := agent.consume(at, md)
				in := pmetric.NewMetrics()
				out.CopyTo(in)
				// The gateway handles the batch later (network, queues): only ETA may differ.
				again := gateway.consume(at.Add(3*time.Second), in)
				requireOneOwnScopeAtMost(t, again, tc.name)
				require.NoError(t, pmetrictest.CompareMetrics(withoutETA(out), withoutETA(again)), "batch %d", i+1)
			}
		})
	}
}

// TestGatewayEvaluatesNoRulesOnProcessedData: with rules that would fire on the gateway too,
// the alerts the gateway passes on are the agent's, once, and the gateway sends no pause
// notices of its own (the pause decision is the agent's).
func TestGatewayEvaluatesNoRulesOnProcessedData(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Rules = []RuleConfig{
		{Name: "cpu_critical", Metric: "cpu_usage", Aggregation: "last", Thresholds: ThresholdsConfig{Critical: ptr(0.9)}},
		{Name: "slow_build", Metric: schema.MetricBuildDuration, Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(10)}},
	}
	agent := newHarness(t, cfg)
	gateway := newHarness(t, cfg)
	for i := range 4 {
		at := t0.Add(time.Duration(i) * time.Second)
		md := batch([]buildIn{runningBuild("b-1", "h1", at, int64(i))}, hostIn{name: "h1", at: at, cpu: 0.95})
		if i == 2 {
			md = batch(nil, hostIn{name: "h1", at: at, cpu: 0.95}) // b-1 not in the batch
		}
		out := agent.consume(at, md)
		in := pmetric.NewMetrics()
		out.CopyTo(in)
		again := gateway.consume(at, in)
		require.Equal(t, out.ResourceMetrics().Len(), again.ResourceMetrics().Len(), "batch %d: no resources added", i)
		requireOneOwnScopeAtMost(t, again, "batch")
		v, ok := activeAlert(t, again, schema.AttrHostName, "h1", "cpu_critical", "CRITICAL", "firing")
		require.True(t, ok, "batch %d: the agent's host alert passes", i)
		assert.InDelta(t, 1.0, v, 0)
		require.NoError(t, pmetrictest.CompareMetrics(withoutETA(out), withoutETA(again)), "batch %d", i)
	}
}

// TestFleetETAFromOtherHosts: a pipeline's run on a host that never ran it gets no ETA from
// its agent (no history there, no progress yet) but gets one from the gateway, whose history
// holds the runs the other hosts finished; and the gateway's ETA replaces the agent's where
// both have one.
func TestFleetETAFromOtherHosts(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	gateway := newHarness(t, cfg)
	forward := func(agent *harness, at time.Time, md pmetric.Metrics) (pmetric.Metrics, pmetric.Metrics) {
		out := agent.consume(at, md)
		in := pmetric.NewMetrics()
		out.CopyTo(in)
		return out, gateway.consume(at, in)
	}
	// Hosts h1 and h2 each run "web" to success: 100 s and 120 s.
	for i, host := range []string{"h1", "h2"} {
		agent := newHarness(t, cfg)
		id := "web-" + host
		d := float64(100 + 20*i)
		forward(agent, t0, batch([]buildIn{{id: id, pipeline: "web", host: host, at: t0, duration: 1,
			phases: []phaseIn{{name: "BUILD", state: "running", total: 4}}}}))
		forward(agent, t0.Add(time.Duration(d)*time.Second), batch([]buildIn{{id: id, pipeline: "web", host: host, at: t0, duration: d,
			finished: true, result: "success", phases: []phaseIn{{name: "BUILD", state: "completed", total: 4, done: 4}}}}))
	}
	// h3 never ran "web".
	h3 := newHarness(t, cfg)
	at := t0.Add(time.Hour)
	out, again := forward(h3, at, batch([]buildIn{{id: "web-h3", pipeline: "web", host: "h3", at: at, duration: 0,
		phases: []phaseIn{{name: "BUILD", state: "running", total: 4}}}}))
	_, ok := pointValue(t, derived(t, out, schema.AttrRunID, "web-h3")[schema.MetricBuildETA])
	assert.False(t, ok, "the agent on h3 has no history of web")
	eta, ok := pointValue(t, derived(t, again, schema.AttrRunID, "web-h3")[schema.MetricBuildETA])
	require.True(t, ok, "the gateway estimates from the fleet's history")
	assert.InDelta(t, 110.0, eta, 1e-9, "the median of 100 s and 120 s")
	_, src, _ := etaOf(derived(t, again, schema.AttrRunID, "web-h3"))
	assert.Equal(t, "history", src)

	// Once h3's agent has an estimate of its own (its own pace), the gateway's replaces it.
	out, again = forward(h3, at.Add(10*time.Second), batch([]buildIn{{id: "web-h3", pipeline: "web", host: "h3", at: at, duration: 10,
		phases: []phaseIn{{name: "BUILD", state: "running", total: 4, done: 2}}}}))
	agentETA, ok := pointValue(t, derived(t, out, schema.AttrRunID, "web-h3")[schema.MetricBuildETA])
	require.True(t, ok)
	assert.InDelta(t, 10.0, agentETA, 1e-9, "own pace only: 10 s for half")
	eta, src, ok = etaOf(derived(t, again, schema.AttrRunID, "web-h3"))
	require.True(t, ok)
	// BUILD is expected to take 110 s (the fleet's phase history) and has run 10 s with 2 of
	// 4 steps: f = 0.5, step rate 10 × 0.5 / 0.5 = 10 s, history 110 − 10 = 100 s:
	// 0.5 × 10 + 0.5 × 100.
	assert.InDelta(t, 0.5*10+0.5*100, eta, 1e-9)
	assert.Equal(t, "blend", src)
	requireOneOwnScopeAtMost(t, again, "eta")
}
