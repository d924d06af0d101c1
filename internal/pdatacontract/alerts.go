package pdatacontract // import "github.com/buildmon/buildmon/internal/pdatacontract"

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/internal/schema"
)

// The alert points: the buildprogress processor shows each rule's alert on a resource as a
// build.alert.active point of 1 (alert.rule, alert.level, alert.state) and a
// build.alert.value point (alert.rule, alert.level) with the value the rule compared. When
// the shown alert changes level or state, or ends, the processor also reports the previous
// level and state once with 0, so that consumers that keep the last value of a series (the
// Prometheus exporter) stop showing it. EncodeAlertActive and EncodeAlertValue write these
// points; AlertDecoder reads them back.

// EncodeAlertActive makes dp a build.alert.active point: 1 when active, else 0.
func EncodeAlertActive(dp pmetric.NumberDataPoint, rule, level, state string, active bool) {
	if active {
		dp.SetIntValue(1)
	} else {
		dp.SetIntValue(0)
	}
	attrs := dp.Attributes()
	attrs.EnsureCapacity(3)
	attrs.PutStr(schema.AttrAlertRule, rule)
	attrs.PutStr(schema.AttrAlertLevel, level)
	attrs.PutStr(schema.AttrAlertState, state)
}

// EncodeAlertValue makes dp a build.alert.value point.
func EncodeAlertValue(dp pmetric.NumberDataPoint, rule, level string, v float64) {
	dp.SetDoubleValue(v)
	attrs := dp.Attributes()
	attrs.EnsureCapacity(2)
	attrs.PutStr(schema.AttrAlertRule, rule)
	attrs.PutStr(schema.AttrAlertLevel, level)
}

// Alert is one rule's alert on a resource as its alert points carry it.
type Alert struct {
	Rule     string
	Level    string // alert.level (INFO … CRITICAL)
	State    string // alert.state (pending or firing)
	Active   bool   // build.alert.active was 1
	Value    float64
	HasValue bool
	// TS is the newest timestamp of the rule's points.
	TS pcommon.Timestamp
}

// AlertDecoder collects the alert points of one resource, whatever the order of the metrics
// and of their points: an active point of 1 wins over any 0 of the same rule (the 0 is the
// previous level or state of an alert that is active with another), and a value point counts
// when its level is the alert's. The zero value is ready to use; Reset makes it reusable.
type AlertDecoder struct {
	alerts []Alert // in the order of their first valid point
	marks  []ruleMark
}

// ruleMark is what a decoder knows of a rule beyond its Alert.
type ruleMark struct {
	rule string
	// listed is set when the rule has a build.alert.active point (with any value): only
	// those rules are alerts, a value alone says nothing about an alert's state.
	listed bool
	// on is set when the rule has an active point of 1.
	on bool
}

// Reset forgets what the decoder collected and keeps its memory.
func (d *AlertDecoder) Reset() {
	clear(d.alerts)
	d.alerts = d.alerts[:0]
	clear(d.marks)
	d.marks = d.marks[:0]
}

// IsAlertMetric reports whether a metric name is one of the alert metrics.
func IsAlertMetric(name string) bool {
	return name == schema.MetricAlertActive || name == schema.MetricAlertValue
}

// Add reads the points of an alert metric; points without a time count as observed at now,
// points without alert.rule or a finite value are ignored. It returns false, and reads
// nothing, when m is not an alert metric.
func (d *AlertDecoder) Add(m pmetric.Metric, now pcommon.Timestamp) bool {
	if !IsAlertMetric(m.Name()) {
		return false
	}
	active := m.Name() == schema.MetricAlertActive
	dps, ok := NumberPoints(m)
	if !ok {
		return true
	}
	if active {
		for j := 0; j < dps.Len(); j++ {
			if rule := Str(dps.At(j).Attributes(), schema.AttrAlertRule); rule != "" {
				d.mark(rule).listed = true
			}
		}
	}
	for j := 0; j < dps.Len(); j++ {
		dp := dps.At(j)
		v, ok := FiniteValue(dp)
		rule := Str(dp.Attributes(), schema.AttrAlertRule)
		if !ok || rule == "" {
			continue
		}
		a := d.alert(rule)
		a.TS = max(a.TS, Timestamp(dp, now))
		level := Str(dp.Attributes(), schema.AttrAlertLevel)
		mark := d.mark(rule)
		if !active {
			if a.Level == "" || level == "" || level == a.Level || !mark.on {
				a.Value, a.HasValue = v, true
				if a.Level == "" {
					a.Level = level
				}
			}
			continue
		}
		if v == 0 && mark.on {
			continue
		}
		mark.on = mark.on || v != 0
		a.Active = v != 0
		if level != "" {
			a.Level = level
		}
		if st := Str(dp.Attributes(), schema.AttrAlertState); st != "" {
			a.State = st
		}
	}
	return true
}

// Alerts returns the alerts of the rules that have a build.alert.active point, in the order
// their points came; an alert without alert.state is firing. The slice is the decoder's own
// until Reset.
func (d *AlertDecoder) Alerts() []Alert {
	out := d.alerts[:0]
	for _, a := range d.alerts {
		if m := d.find(a.Rule); m != nil && m.listed {
			if a.State == "" {
				a.State = schema.AlertStateFiring
			}
			out = append(out, a)
		}
	}
	clear(d.alerts[len(out):])
	d.alerts = out
	return out
}

func (d *AlertDecoder) alert(rule string) *Alert {
	for i := range d.alerts {
		if d.alerts[i].Rule == rule {
			return &d.alerts[i]
		}
	}
	d.alerts = append(d.alerts, Alert{Rule: rule})
	return &d.alerts[len(d.alerts)-1]
}

func (d *AlertDecoder) find(rule string) *ruleMark {
	for i := range d.marks {
		if d.marks[i].rule == rule {
			return &d.marks[i]
		}
	}
	return nil
}

func (d *AlertDecoder) mark(rule string) *ruleMark {
	if m := d.find(rule); m != nil {
		return m
	}
	d.marks = append(d.marks, ruleMark{rule: rule})
	return &d.marks[len(d.marks)-1]
}
