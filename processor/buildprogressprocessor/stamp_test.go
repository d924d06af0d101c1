package buildprogressprocessor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/internal/schema"
)

// millis is a point's time as Prometheus keeps it.
func millis(dps pmetric.NumberDataPointSlice) int64 {
	return int64(dps.At(0).Timestamp()) / int64(time.Millisecond)
}

// Two batches naming one build and one host, handled within one millisecond, with new values:
// the derived points of the second are a millisecond later, so Prometheus (which keeps
// milliseconds and refuses a second value at a time it has, failing the whole remote write
// request) takes both. A batch a second later keeps the clock's time.
func TestDerivedPointsOfOneResourceOneMillisecondApart(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Rules = []RuleConfig{{Name: "cpu", Metric: "cpu_usage", Aggregation: "last", Window: time.Minute,
		Thresholds: ThresholdsConfig{Warning: ptr(0.1)}}}
	h := newHarness(t, cfg)
	build := func(done int64) []buildIn {
		return []buildIn{{id: "b-1", pipeline: "p", host: "h1", at: t0, phases: []phaseIn{{name: "BUILD", state: "running", total: 4, done: done}}}}
	}
	first := h.consume(t0, batch(build(1), hostIn{name: "h1", at: t0, cpu: 0.5, onlySystem: true}))
	second := h.consume(t0.Add(300*time.Microsecond), batch(build(2), hostIn{name: "h1", at: t0, cpu: 0.7, onlySystem: true}))

	for _, c := range []struct{ attr, id, metric string }{
		{schema.AttrRunID, "b-1", schema.MetricBuildProgress},
		{schema.AttrHostName, "h1", schema.MetricAlertValue},
	} {
		a, b := derived(t, first, c.attr, c.id)[c.metric], derived(t, second, c.attr, c.id)[c.metric]
		require.Positive(t, a.Len(), c.metric)
		require.Positive(t, b.Len(), c.metric)
		assert.NotEqual(t, a.At(0).DoubleValue(), b.At(0).DoubleValue(), "%s: the value changed", c.metric)
		assert.Equal(t, millis(a)+1, millis(b), "%s: the second batch's points are a millisecond later", c.metric)
	}
	later := h.consume(t0.Add(time.Second), batch(build(3)))
	assert.Equal(t, t0.Add(time.Second).UnixNano(), int64(derived(t, later, schema.AttrRunID, "b-1")[schema.MetricBuildProgress].At(0).Timestamp()))
}
