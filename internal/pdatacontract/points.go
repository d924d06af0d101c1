// Package pdatacontract reads and writes the buildmon telemetry schema in pdata: the number
// data points of build and host metrics, their attributes, the resource that says whose they
// are, and the alert points the buildprogress processor emits. The receiver, the processor
// and the checkpoint exporter use it so that each reads the pipeline with one algorithm; the
// names themselves are in internal/schema, tied to the generated metadata by its tests.
package pdatacontract // import "github.com/buildmon/buildmon/internal/pdatacontract"

import (
	"math"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// NumberPoints returns the number data points of a gauge or a sum; ok is false for the other
// metric types, which the schema does not use.
func NumberPoints(m pmetric.Metric) (dps pmetric.NumberDataPointSlice, ok bool) {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints(), true
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints(), true
	}
	return pmetric.NumberDataPointSlice{}, false
}

// Value returns a data point's value as float64 whatever its value type (0 for a point
// without a value). NaN and infinities are returned as they are.
func Value(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

// FiniteValue returns a data point's value as float64; ok is false for a point without a
// value, NaN and infinities.
func FiniteValue(dp pmetric.NumberDataPoint) (v float64, ok bool) {
	switch dp.ValueType() {
	case pmetric.NumberDataPointValueTypeInt:
		return float64(dp.IntValue()), true
	case pmetric.NumberDataPointValueTypeDouble:
		v = dp.DoubleValue()
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, false
		}
		return v, true
	}
	return 0, false
}

// IntValue returns a data point's value as int64 whatever its value type: a double is
// truncated toward zero (step counts and byte counts are whole numbers on the wire).
func IntValue(dp pmetric.NumberDataPoint) int64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeDouble {
		return int64(dp.DoubleValue())
	}
	return dp.IntValue()
}

// Timestamp returns a data point's timestamp, or now when it has none: a point without a
// time counts as observed when it arrived.
func Timestamp(dp pmetric.NumberDataPoint, now pcommon.Timestamp) pcommon.Timestamp {
	if ts := dp.Timestamp(); ts != 0 {
		return ts
	}
	return now
}

// PointTime is Timestamp for callers that keep time.Time: now is returned as it is (with its
// monotonic reading) when the point has no timestamp.
func PointTime(dp pmetric.NumberDataPoint, now time.Time) time.Time {
	if ts := dp.Timestamp(); ts != 0 {
		return ts.AsTime()
	}
	return now
}
