package pdatacontract

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/internal/schema"
)

// activePoint is one build.alert.active point to encode.
type activePoint struct {
	rule, level, state string
	active             bool
}

// valuePoint is one build.alert.value point to encode.
type valuePoint struct {
	rule, level string
	v           float64
}

const ts = pcommon.Timestamp(1_700_000_000_000_000_000)

// encodeAlerts writes the points with the encoders into two gauges; valuesFirst puts the
// value metric before the active one.
func encodeAlerts(active []activePoint, values []valuePoint, valuesFirst bool) pmetric.MetricSlice {
	ms := pmetric.NewMetricSlice()
	addActive := func() {
		m := ms.AppendEmpty()
		m.SetName(schema.MetricAlertActive)
		dps := m.SetEmptyGauge().DataPoints()
		for _, p := range active {
			dp := dps.AppendEmpty()
			dp.SetTimestamp(ts)
			EncodeAlertActive(dp, p.rule, p.level, p.state, p.active)
		}
	}
	addValues := func() {
		if len(values) == 0 {
			return
		}
		m := ms.AppendEmpty()
		m.SetName(schema.MetricAlertValue)
		dps := m.SetEmptyGauge().DataPoints()
		for _, p := range values {
			dp := dps.AppendEmpty()
			dp.SetTimestamp(ts)
			EncodeAlertValue(dp, p.rule, p.level, p.v)
		}
	}
	if valuesFirst {
		addValues()
		addActive()
	} else {
		addActive()
		addValues()
	}
	return ms
}

func decode(t *testing.T, ms pmetric.MetricSlice) []Alert {
	var d AlertDecoder
	for i := 0; i < ms.Len(); i++ {
		require.True(t, d.Add(ms.At(i), 0))
	}
	return d.Alerts()
}

func TestEncodeAlertPoints(t *testing.T) {
	dp := pmetric.NewNumberDataPoint()
	EncodeAlertActive(dp, "cpu", "ERROR", "firing", true)
	assert.Equal(t, pmetric.NumberDataPointValueTypeInt, dp.ValueType())
	assert.Equal(t, int64(1), dp.IntValue())
	assert.Equal(t, map[string]any{schema.AttrAlertRule: "cpu", schema.AttrAlertLevel: "ERROR", schema.AttrAlertState: "firing"}, dp.Attributes().AsRaw())

	dp = pmetric.NewNumberDataPoint()
	EncodeAlertActive(dp, "cpu", "WARNING", "pending", false)
	assert.Equal(t, int64(0), dp.IntValue())
	assert.Equal(t, pmetric.NumberDataPointValueTypeInt, dp.ValueType())

	dp = pmetric.NewNumberDataPoint()
	EncodeAlertValue(dp, "cpu", "ERROR", 0.97)
	assert.Equal(t, pmetric.NumberDataPointValueTypeDouble, dp.ValueType())
	assert.Equal(t, 0.97, dp.DoubleValue())
	assert.Equal(t, map[string]any{schema.AttrAlertRule: "cpu", schema.AttrAlertLevel: "ERROR"}, dp.Attributes().AsRaw())
}

// TestAlertRoundTrip encodes what the processor shows for an alert's transitions (the
// previous level or state with 0 next to the current one with 1) and decodes it, in every
// order of the points and of the two metrics.
func TestAlertRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		active []activePoint
		values []valuePoint
		want   []Alert
	}{
		{
			"firing",
			[]activePoint{{"cpu", "ERROR", "firing", true}},
			[]valuePoint{{"cpu", "ERROR", 0.97}},
			[]Alert{{Rule: "cpu", Level: "ERROR", State: "firing", Active: true, Value: 0.97, HasValue: true, TS: ts}},
		},
		{
			"level change, old first",
			[]activePoint{{"cpu", "ERROR", "firing", false}, {"cpu", "CRITICAL", "firing", true}},
			[]valuePoint{{"cpu", "CRITICAL", 0.99}},
			[]Alert{{Rule: "cpu", Level: "CRITICAL", State: "firing", Active: true, Value: 0.99, HasValue: true, TS: ts}},
		},
		{
			"level change, new first",
			[]activePoint{{"cpu", "CRITICAL", "firing", true}, {"cpu", "ERROR", "firing", false}},
			[]valuePoint{{"cpu", "CRITICAL", 0.99}},
			[]Alert{{Rule: "cpu", Level: "CRITICAL", State: "firing", Active: true, Value: 0.99, HasValue: true, TS: ts}},
		},
		{
			"pending to firing",
			[]activePoint{{"mem", "WARNING", "pending", false}, {"mem", "WARNING", "firing", true}},
			[]valuePoint{{"mem", "WARNING", 0.8}},
			[]Alert{{Rule: "mem", Level: "WARNING", State: "firing", Active: true, Value: 0.8, HasValue: true, TS: ts}},
		},
		{
			"ended",
			[]activePoint{{"cpu", "ERROR", "firing", false}},
			nil,
			[]Alert{{Rule: "cpu", Level: "ERROR", State: "firing", Active: false, TS: ts}},
		},
		{
			"two rules keep their order",
			[]activePoint{{"disk", "WARNING", "pending", true}, {"cpu", "ERROR", "firing", true}},
			[]valuePoint{{"cpu", "ERROR", 0.9}, {"disk", "WARNING", 0.85}},
			[]Alert{
				{Rule: "disk", Level: "WARNING", State: "pending", Active: true, Value: 0.85, HasValue: true, TS: ts},
				{Rule: "cpu", Level: "ERROR", State: "firing", Active: true, Value: 0.9, HasValue: true, TS: ts},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, decode(t, encodeAlerts(tc.active, tc.values, false)))
			got := decode(t, encodeAlerts(tc.active, tc.values, true))
			if len(tc.want) == 1 {
				assert.Equal(t, tc.want, got, "value metric first")
			} else {
				assert.ElementsMatch(t, tc.want, got, "value metric first")
			}
		})
	}
}

func TestAlertDecoderEdges(t *testing.T) {
	t.Run("a value alone is no alert", func(t *testing.T) {
		assert.Empty(t, decode(t, encodeAlerts(nil, []valuePoint{{"cpu", "ERROR", 1}}, false)))
	})
	t.Run("a value of the previous level does not replace the current one", func(t *testing.T) {
		got := decode(t, encodeAlerts(
			[]activePoint{{"cpu", "CRITICAL", "firing", true}},
			[]valuePoint{{"cpu", "ERROR", 0.5}, {"cpu", "CRITICAL", 0.99}}, false))
		require.Len(t, got, 1)
		assert.Equal(t, 0.99, got[0].Value)
	})
	t.Run("a value without a level counts", func(t *testing.T) {
		got := decode(t, encodeAlerts([]activePoint{{"cpu", "ERROR", "firing", true}}, []valuePoint{{"cpu", "", 0.7}}, false))
		require.Len(t, got, 1)
		assert.Equal(t, 0.7, got[0].Value)
		assert.Equal(t, "ERROR", got[0].Level)
	})
	t.Run("missing state is firing", func(t *testing.T) {
		got := decode(t, encodeAlerts([]activePoint{{"cpu", "ERROR", "", true}}, nil, false))
		require.Len(t, got, 1)
		assert.Equal(t, schema.AlertStateFiring, got[0].State)
	})
	t.Run("points without a rule or a finite value are ignored", func(t *testing.T) {
		ms := encodeAlerts([]activePoint{{"", "ERROR", "firing", true}, {"cpu", "ERROR", "firing", true}}, nil, false)
		dp := ms.At(0).Gauge().DataPoints().AppendEmpty()
		EncodeAlertActive(dp, "mem", "ERROR", "firing", true)
		dp.SetDoubleValue(math.NaN())
		got := decode(t, ms)
		require.Len(t, got, 1)
		assert.Equal(t, "cpu", got[0].Rule)
	})
	t.Run("an alert whose active point is NaN is listed by its value", func(t *testing.T) {
		ms := encodeAlerts([]activePoint{{"mem", "ERROR", "firing", true}}, []valuePoint{{"mem", "ERROR", 0.6}}, false)
		ms.At(0).Gauge().DataPoints().At(0).SetDoubleValue(math.NaN())
		got := decode(t, ms)
		require.Len(t, got, 1)
		assert.Equal(t, Alert{Rule: "mem", Level: "ERROR", State: "firing", Value: 0.6, HasValue: true, TS: ts}, got[0])
	})
	t.Run("unstamped points count as now, the newest time wins", func(t *testing.T) {
		ms := encodeAlerts([]activePoint{{"cpu", "ERROR", "firing", true}}, []valuePoint{{"cpu", "ERROR", 1}}, false)
		ms.At(0).Gauge().DataPoints().At(0).SetTimestamp(0)
		var d AlertDecoder
		d.Add(ms.At(0), ts+5)
		d.Add(ms.At(1), ts+5)
		require.Len(t, d.Alerts(), 1)
		assert.Equal(t, ts+5, d.Alerts()[0].TS)
	})
	t.Run("other metrics are not read", func(t *testing.T) {
		var d AlertDecoder
		m := pmetric.NewMetric()
		m.SetName(schema.MetricBuildProgress)
		m.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(1)
		assert.False(t, d.Add(m, 0))
		assert.False(t, IsAlertMetric(m.Name()))
		assert.True(t, IsAlertMetric(schema.MetricAlertActive))
		assert.True(t, IsAlertMetric(schema.MetricAlertValue))
		m.SetName(schema.MetricAlertActive)
		m.SetEmptyHistogram()
		assert.True(t, d.Add(m, 0), "an alert metric of the wrong type is read as empty")
		assert.Empty(t, d.Alerts())
	})
	t.Run("reset", func(t *testing.T) {
		var d AlertDecoder
		ms := encodeAlerts([]activePoint{{"cpu", "ERROR", "firing", true}}, nil, false)
		d.Add(ms.At(0), 0)
		require.Len(t, d.Alerts(), 1)
		d.Reset()
		assert.Empty(t, d.Alerts())
		ms = encodeAlerts([]activePoint{{"cpu", "ERROR", "firing", false}}, nil, false)
		d.Add(ms.At(0), 0)
		require.Len(t, d.Alerts(), 1)
		assert.False(t, d.Alerts()[0].Active, "the 1 before the reset does not win over this 0")
	})
}
