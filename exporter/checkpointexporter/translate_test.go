package checkpointexporter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
	"github.com/buildmon/buildmon/internal/schema"
)

// alertPoints builds a host resource with build.alert.active points given as
// (level, state, value) in order, and one build.alert.value point.
func alertPoints(points [][3]string, valueLevel string) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr(schema.AttrHostName, "h")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	active := ms.AppendEmpty()
	active.SetName(schema.MetricAlertActive)
	ts := pcommon.NewTimestampFromTime(t0)
	dps := active.SetEmptyGauge().DataPoints()
	for _, p := range points {
		dp := dps.AppendEmpty()
		dp.SetTimestamp(ts)
		dp.Attributes().PutStr(schema.AttrAlertRule, "cpu")
		dp.Attributes().PutStr(schema.AttrAlertLevel, p[0])
		dp.Attributes().PutStr(schema.AttrAlertState, p[1])
		if p[2] == "1" {
			dp.SetIntValue(1)
		} else {
			dp.SetIntValue(0)
		}
	}
	if valueLevel != "" {
		value := ms.AppendEmpty()
		value.SetName(schema.MetricAlertValue)
		dp := value.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(0.97)
		dp.Attributes().PutStr(schema.AttrAlertRule, "cpu")
		dp.Attributes().PutStr(schema.AttrAlertLevel, valueLevel)
	}
	return md
}

func TestTranslateAlertTransitions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		points [][3]string
		value  string
		want   state.AlertObservation
	}{
		{"level change, old first", [][3]string{{"ERROR", "firing", "0"}, {"CRITICAL", "firing", "1"}}, "CRITICAL",
			state.AlertObservation{Rule: "cpu", Level: "CRITICAL", State: "firing", Active: true, Value: 0.97, HasValue: true}},
		{"level change, new first", [][3]string{{"CRITICAL", "firing", "1"}, {"ERROR", "firing", "0"}}, "CRITICAL",
			state.AlertObservation{Rule: "cpu", Level: "CRITICAL", State: "firing", Active: true, Value: 0.97, HasValue: true}},
		{"pending to firing", [][3]string{{"ERROR", "pending", "0"}, {"ERROR", "firing", "1"}}, "ERROR",
			state.AlertObservation{Rule: "cpu", Level: "ERROR", State: "firing", Active: true, Value: 0.97, HasValue: true}},
		{"ended", [][3]string{{"ERROR", "firing", "0"}}, "",
			state.AlertObservation{Rule: "cpu", Level: "ERROR", State: "firing", Active: false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batch := translate(alertPoints(tc.points, tc.value), 0, newHostReaders(0))
			require.Len(t, batch.Hosts, 1)
			require.Len(t, batch.Hosts[0].Alerts, 1)
			tc.want.TS = t0.UnixNano()
			assert.Equal(t, tc.want, batch.Hosts[0].Alerts[0])
		})
	}
}

func TestTranslateSkipsBadPoints(t *testing.T) {
	md := running("b", 1).metrics()
	// A NaN progress and a point without timestamp.
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	m := ms.AppendEmpty()
	m.SetName(schema.MetricBuildETA)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetDoubleValue(nan())
	dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Hour)))
	now := t0.Add(time.Minute).UnixNano()
	m = ms.AppendEmpty()
	m.SetName(schema.MetricBuildDuration)
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(99)
	o := translate(md, now, newHostReaders(0)).Builds[0]
	assert.Equal(t, 30.0, o.ETA.V, "the NaN point is ignored")
	assert.Equal(t, state.At(99.0, now), o.Duration, "no timestamp: observed now")
	assert.True(t, o.AlertsComplete)
	assert.Equal(t, []string{"INIT", "BUILD", "TEST"}, []string{o.Phases[0].Name, o.Phases[1].Name, o.Phases[2].Name})
}

func nan() float64 {
	var zero float64
	return zero / zero
}
