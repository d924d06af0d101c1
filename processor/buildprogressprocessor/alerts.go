package buildprogressprocessor // import "github.com/buildmon/buildmon/processor/buildprogressprocessor"

import (
	"context"
	"math"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/buildmon/buildmon/internal/alerting"
	"github.com/buildmon/buildmon/internal/pdatacontract"
	"github.com/buildmon/buildmon/internal/schema"
)

// matches reports whether every filter attribute has its value on the data point or, failing
// that, on the resource.
func matches(filter []alerting.AttrMatch, dp, res pcommon.Map) bool {
	for _, f := range filter {
		v, ok := pdatacontract.Lookup(dp, res, f.Key)
		if !ok || pdatacontract.String(v) != f.Value {
			return false
		}
	}
	return true
}

// matchesPhase is matches for a derived value whose only data point attribute is
// build.phase=phase ("" for none).
func matchesPhase(filter []alerting.AttrMatch, phase string, res pcommon.Map) bool {
	for _, f := range filter {
		if phase != "" && f.Key == schema.AttrPhase {
			if f.Value != phase {
				return false
			}
			continue
		}
		v, ok := res.Get(f.Key)
		if !ok || pdatacontract.String(v) != f.Value {
			return false
		}
	}
	return true
}

// appendAttrs appends a data point's attributes as "k=v" sorted by key and joined by commas.
func (p *buildProgressProcessor) appendAttrs(key []byte, attrs pcommon.Map) []byte {
	if attrs.Len() == 0 {
		return key
	}
	keys := p.attrKeys[:0]
	for k := range attrs.All() {
		keys = append(keys, k)
	}
	// Insertion sort: data points have a handful of attributes.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	for i, k := range keys {
		if i > 0 {
			key = append(key, ',')
		}
		key = append(key, k...)
		key = append(key, '=')
		v, _ := attrs.Get(k)
		switch v.Type() {
		case pcommon.ValueTypeStr:
			key = append(key, v.Str()...)
		case pcommon.ValueTypeInt:
			key = strconv.AppendInt(key, v.Int(), 10)
		case pcommon.ValueTypeBool:
			key = strconv.AppendBool(key, v.Bool())
		default:
			key = append(key, v.AsString()...)
		}
	}
	clear(keys)
	p.attrKeys = keys[:0]
	return key
}

// matchesAlias reports whether an alias rule's own match holds on a host resource (the
// alias's filter, such as cpu.mode=busy, is what the normalized sample already is).
func matchesAlias(r *alerting.CompiledRule, res pcommon.Map) bool {
	a, _ := alerting.LookupAlias(r.Alias)
	for _, f := range r.Filter {
		if f == a.Filter {
			continue
		}
		v, ok := res.Get(f.Key)
		if !ok || pdatacontract.String(v) != f.Value {
			return false
		}
	}
	return true
}

// observeMetric feeds the data points of one metric to the rules that watch it. b is the
// build whose resource carries the metric (nil on a host resource), h the host. On a host
// resource (b nil) alias rules are left out: observeAliases feeds them.
func (p *buildProgressProcessor) observeMetric(ctx context.Context, rules []*alerting.CompiledRule, dps pmetric.NumberDataPointSlice, res pcommon.Map, b *buildState, h *hostState, now time.Time) {
	for _, r := range rules {
		if b == nil && r.Alias != "" {
			continue
		}
		if r.Combine != alerting.CombineNone {
			var v float64
			var ts time.Time
			n := 0
			for k := 0; k < dps.Len(); k++ {
				dp := dps.At(k)
				x := pdatacontract.Value(dp)
				if math.IsNaN(x) || !matches(r.Filter, dp.Attributes(), res) {
					continue
				}
				if n == 0 || (r.Combine == alerting.CombineMax && x > v) {
					v = x
				} else if r.Combine == alerting.CombineSum {
					v += x
				}
				n++
				if t := pdatacontract.PointTime(dp, now); t.After(ts) {
					ts = t
				}
			}
			if n > 0 {
				p.deliver(ctx, r, nil, ts, v, b, h)
			}
			continue
		}
		for k := 0; k < dps.Len(); k++ {
			dp := dps.At(k)
			if !matches(r.Filter, dp.Attributes(), res) {
				continue
			}
			// The buffer is reused: the engine copies the attributes only into a new series.
			p.attrBuf = p.appendAttrs(p.attrBuf[:0], dp.Attributes())
			p.deliver(ctx, r, p.attrBuf, pdatacontract.PointTime(dp, now), pdatacontract.Value(dp), b, h)
		}
	}
}

// deliver routes one value to the series of the rule's scope: the host's; the build's; or,
// for a build-scoped rule on a host metric, each running build on that host.
func (p *buildProgressProcessor) deliver(ctx context.Context, r *alerting.CompiledRule, attrs []byte, ts time.Time, v float64, b *buildState, h *hostState) {
	switch {
	case r.Scope == alerting.ScopeHost && h != nil:
		p.observe(ctx, r, &h.alerts, attrs, ts, v, nil, h)
	case r.Scope == alerting.ScopeBuild && b != nil:
		p.observe(ctx, r, &b.alerts, attrs, ts, v, b, nil)
	case r.Scope == alerting.ScopeBuild && h != nil:
		for bb := range h.builds {
			if bb.running() {
				p.observe(ctx, r, &bb.alerts, attrs, ts, v, bb, nil)
			}
		}
	}
}

// observe feeds one value to the engine, logs what changed and queues pause notices.
// Exactly one of b and h is the resource that owns set.
func (p *buildProgressProcessor) observe(ctx context.Context, r *alerting.CompiledRule, set *alerting.Set, attrs []byte, ts time.Time, v float64, b *buildState, h *hostState) {
	o := p.engine.Observe(set, r, attrs, ts, v, p.now)
	if !o.StateChanged() && !o.LevelChanged() {
		return
	}
	p.logChange(ctx, o.Series, o.Change, b, h)
	if !o.Pause.Changed() {
		return
	}
	if b != nil {
		p.notifyPause(b)
	} else {
		p.hostPauseChanged(h)
	}
}

// zapLevel maps an alert level to the level its firing is logged at: INFO is logged as
// info, WARNING as a warning, ERROR and CRITICAL as errors.
func zapLevel(l alerting.Level) zapcore.Level {
	switch l {
	case alerting.Warning:
		return zapcore.WarnLevel
	case alerting.Error, alerting.Critical:
		return zapcore.ErrorLevel
	}
	return zapcore.InfoLevel
}

// logChange logs an alert's state or level change once and counts alerts that fire.
func (p *buildProgressProcessor) logChange(ctx context.Context, s *alerting.Series, c alerting.Change, b *buildState, h *hostState) {
	r := s.Rule()
	fields := make([]zap.Field, 0, 10)
	fields = append(fields, logOwner(b, h), zap.String("rule", r.Name), zap.String("metric", r.Metric))
	if s.Attrs() != "" {
		fields = append(fields, zap.String("attributes", s.Attrs()))
	}
	fields = append(fields,
		zap.String("state", c.ToState.String()), zap.String("previous_state", c.FromState.String()),
		zap.String("level", c.ToLevel.String()), zap.Float64("value", s.Alert().Value))
	if c.ToLevel != alerting.None {
		th, _ := r.Thresholds.Get(c.ToLevel)
		fields = append(fields, zap.Float64("threshold", th))
	}
	switch {
	case c.ToState == alerting.Firing:
		if c.LevelChanged() {
			fields = append(fields, zap.String("previous_level", c.FromLevel.String()))
		}
		p.logger.Log(zapLevel(c.ToLevel), "alert firing", fields...)
		p.telemetry.ProcessorBuildprogressAlertsFired.Add(ctx, 1,
			metric.WithAttributeSet(attribute.NewSet(attribute.String(schema.AttrAlertLevel, c.ToLevel.String()))))
	case c.ToState == alerting.Pending && c.StateChanged():
		p.logger.Info("alert pending", fields...)
	case c.ToState == alerting.Resolved:
		p.logger.Info("alert resolved", fields...)
	case c.FromState == alerting.Pending && c.ToState == alerting.Inactive:
		p.logger.Info("alert cleared before firing", fields...)
	default:
		p.logger.Debug("alert changed", fields...)
	}
}
