package pdatacontract

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

func TestNumberPoints(t *testing.T) {
	for _, tc := range []struct {
		name   string
		make   func(pmetric.Metric)
		wantOK bool
		want   int
	}{
		{"gauge", func(m pmetric.Metric) { m.SetEmptyGauge().DataPoints().AppendEmpty() }, true, 1},
		{"sum", func(m pmetric.Metric) {
			dps := m.SetEmptySum().DataPoints()
			dps.AppendEmpty()
			dps.AppendEmpty()
		}, true, 2},
		{"histogram", func(m pmetric.Metric) { m.SetEmptyHistogram().DataPoints().AppendEmpty() }, false, 0},
		{"summary", func(m pmetric.Metric) { m.SetEmptySummary().DataPoints().AppendEmpty() }, false, 0},
		{"exponential histogram", func(m pmetric.Metric) { m.SetEmptyExponentialHistogram().DataPoints().AppendEmpty() }, false, 0},
		{"empty", func(pmetric.Metric) {}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := pmetric.NewMetric()
			tc.make(m)
			dps, ok := NumberPoints(m)
			assert.Equal(t, tc.wantOK, ok)
			if ok {
				assert.Equal(t, tc.want, dps.Len())
			}
		})
	}
}

func TestValues(t *testing.T) {
	for _, tc := range []struct {
		name       string
		set        func(pmetric.NumberDataPoint)
		value      float64 // Value (NaN compared as NaN)
		finite     float64
		finiteOK   bool
		whole      int64
		wantNaNVal bool
	}{
		{"int", func(dp pmetric.NumberDataPoint) { dp.SetIntValue(-7) }, -7, -7, true, -7, false},
		{"large int", func(dp pmetric.NumberDataPoint) { dp.SetIntValue(1 << 53) }, 1 << 53, 1 << 53, true, 1 << 53, false},
		{"double", func(dp pmetric.NumberDataPoint) { dp.SetDoubleValue(2.75) }, 2.75, 2.75, true, 2, false},
		{"negative double truncates toward zero", func(dp pmetric.NumberDataPoint) { dp.SetDoubleValue(-2.75) }, -2.75, -2.75, true, -2, false},
		{"NaN", func(dp pmetric.NumberDataPoint) { dp.SetDoubleValue(math.NaN()) }, 0, 0, false, 0, true},
		{"+Inf", func(dp pmetric.NumberDataPoint) { dp.SetDoubleValue(math.Inf(1)) }, math.Inf(1), 0, false, math.MinInt64, false},
		{"-Inf", func(dp pmetric.NumberDataPoint) { dp.SetDoubleValue(math.Inf(-1)) }, math.Inf(-1), 0, false, math.MinInt64, false},
		{"no value", func(pmetric.NumberDataPoint) {}, 0, 0, false, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dp := pmetric.NewNumberDataPoint()
			tc.set(dp)
			if tc.wantNaNVal {
				assert.True(t, math.IsNaN(Value(dp)))
			} else {
				assert.Equal(t, tc.value, Value(dp))
			}
			v, ok := FiniteValue(dp)
			assert.Equal(t, tc.finiteOK, ok)
			assert.Equal(t, tc.finite, v)
			if !math.IsInf(Value(dp), 0) && !math.IsNaN(Value(dp)) {
				// Converting an infinity or NaN to int64 is implementation-defined.
				assert.Equal(t, tc.whole, IntValue(dp))
			}
		})
	}
}

func TestTimestamp(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	now := time.Now() // carries a monotonic reading, which PointTime must keep
	for _, tc := range []struct {
		name   string
		ts     pcommon.Timestamp
		wantTS pcommon.Timestamp
		want   time.Time
	}{
		{"stamped", pcommon.NewTimestampFromTime(at), pcommon.NewTimestampFromTime(at), at},
		{"unstamped", 0, pcommon.NewTimestampFromTime(now), now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dp := pmetric.NewNumberDataPoint()
			dp.SetTimestamp(tc.ts)
			assert.Equal(t, tc.wantTS, Timestamp(dp, pcommon.NewTimestampFromTime(now)))
			got := PointTime(dp, now)
			assert.True(t, tc.want.Equal(got), "got %v, want %v", got, tc.want)
			if tc.ts == 0 {
				assert.Equal(t, now, got, "now comes back untouched")
			}
		})
	}
}
