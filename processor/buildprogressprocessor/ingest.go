package buildprogressprocessor // import "github.com/buildmon/buildmon/processor/buildprogressprocessor"

import (
	"context"
	"math"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/buildmon/buildmon/internal/hostusage"
	"github.com/buildmon/buildmon/internal/pdatacontract"
	"github.com/buildmon/buildmon/internal/phaseusage"
	"github.com/buildmon/buildmon/internal/progress"
	"github.com/buildmon/buildmon/internal/schema"
	"github.com/buildmon/buildmon/processor/buildprogressprocessor/internal/metadata"
)

// ingestBuild reads the build metrics of one build resource into the build's state, feeds
// the rules that watch them and recomputes the build's progress and ETA.
func (p *buildProgressProcessor) ingestBuild(ctx context.Context, id string, rm pmetric.ResourceMetrics, now time.Time) *buildState {
	b := p.buildFor(ctx, id, now)
	b.lastSeen = now
	p.lruPushFront(b)
	res := rm.Resource().Attributes()
	if !b.resource.Equal(res) {
		res.CopyTo(b.resource)
		if name := pdatacontract.Str(res, schema.AttrPipelineName); name != b.pipeline {
			b.pipeline = strings.Clone(name)
			p.resolveConfigWeights(b)
		}
		p.attachHost(b, pdatacontract.Str(res, schema.AttrHostName), now)
	} else if b.host != nil {
		b.host.lastSeen = now
	}
	wasFinished := b.progress.Finished

	sms := rm.ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		if sms.At(i).Scope().Name() == metadata.ScopeName {
			continue // derived upstream: passed on as it is (fleet.go)
		}
		ms := sms.At(i).Metrics()
		for j := 0; j < ms.Len(); j++ {
			m := ms.At(j)
			dps, ok := pdatacontract.NumberPoints(m)
			if !ok {
				continue
			}
			switch m.Name() {
			case schema.MetricPhaseStepsTotal:
				for k := 0; k < dps.Len(); k++ {
					if ph := p.phase(b, dps.At(k)); ph >= 0 {
						b.progress.Phases[ph].StepsTotal = pdatacontract.IntValue(dps.At(k))
					}
				}
			case schema.MetricPhaseStepsCompleted:
				for k := 0; k < dps.Len(); k++ {
					if ph := p.phase(b, dps.At(k)); ph >= 0 {
						b.progress.Phases[ph].StepsCompleted = pdatacontract.IntValue(dps.At(k))
					}
				}
			case schema.MetricPhaseState:
				for k := 0; k < dps.Len(); k++ {
					dp := dps.At(k)
					if pdatacontract.Value(dp) != 1 {
						continue
					}
					state, ok := progress.ParseState(pdatacontract.Str(dp.Attributes(), schema.AttrPhaseState))
					if !ok {
						continue
					}
					if ph := p.phase(b, dp); ph >= 0 {
						p.setPhaseState(b, ph, state)
					}
				}
			case schema.MetricPhaseDuration:
				for k := 0; k < dps.Len(); k++ {
					if ph := p.phase(b, dps.At(k)); ph >= 0 {
						b.timing[ph].setReported(pdatacontract.Value(dps.At(k)))
					}
				}
			case schema.MetricPhaseWeight:
				for k := 0; k < dps.Len(); k++ {
					w := pdatacontract.Value(dps.At(k))
					if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
						continue
					}
					if ph := p.phase(b, dps.At(k)); ph >= 0 {
						b.progress.Phases[ph].PlanWeight, b.progress.Phases[ph].HasPlanWeight = w, true
					}
				}
			case schema.MetricBuildState:
				for k := 0; k < dps.Len(); k++ {
					dp := dps.At(k)
					if pdatacontract.Value(dp) == 1 {
						b.progress.Finished = pdatacontract.Str(dp.Attributes(), schema.AttrBuildState) == schema.BuildStateFinished
					}
				}
			case schema.MetricBuildResult:
				for k := 0; k < dps.Len(); k++ {
					dp := dps.At(k)
					if pdatacontract.Value(dp) == 1 {
						if r := pdatacontract.Str(dp.Attributes(), schema.AttrPipelineResult); r != b.result {
							b.result = strings.Clone(r)
						}
					}
				}
			case schema.MetricBuildDuration:
				if dps.Len() > 0 {
					if d := pdatacontract.Value(dps.At(dps.Len() - 1)); d >= 0 && d < math.MaxInt64/float64(time.Second) {
						b.elapsed, b.hasElapsed = time.Duration(d*float64(time.Second)), true
					}
				}
			}
			if rules := p.engine.RulesFor(m.Name()); rules != nil && !b.upstream {
				p.observeMetric(ctx, rules, dps, res, b, b.host, now)
			}
		}
	}
	b.progress.Succeeded = b.result == schema.ResultSuccess
	if b.progress.Finished && !wasFinished {
		p.finishBuild(b)
	}
	p.computeProgress(ctx, b)
	return b
}

// phase returns the index of the phase a build data point names (adding the phase), or -1.
func (p *buildProgressProcessor) phase(b *buildState, dp pmetric.NumberDataPoint) int {
	name := pdatacontract.Str(dp.Attributes(), schema.AttrPhase)
	if name == "" {
		return -1
	}
	for i := range b.progress.Phases {
		if b.progress.Phases[i].Name == name {
			return i
		}
	}
	ph, _ := b.progress.Phase(strings.Clone(name))
	ph.ConfigWeight, ph.HasConfigWeight = p.weights.Lookup(b.pipeline, name)
	b.usage = append(b.usage, nil)
	b.timing = append(b.timing, phaseTiming{})
	return len(b.progress.Phases) - 1
}

// resolveConfigWeights looks up the configured weight of every phase of b again (its
// pipeline changed).
func (p *buildProgressProcessor) resolveConfigWeights(b *buildState) {
	for i := range b.progress.Phases {
		ph := &b.progress.Phases[i]
		ph.ConfigWeight, ph.HasConfigWeight = p.weights.Lookup(b.pipeline, ph.Name)
	}
}

// setPhaseState moves phase i of b to state, starting or ending its resource attribution.
func (p *buildProgressProcessor) setPhaseState(b *buildState, i int, state progress.State) {
	ph := &b.progress.Phases[i]
	old := ph.State
	ph.State = state
	b.timing[i].stateChanged(old, state, p.now)
	if !p.phaseResources || b.upstream || old == state {
		return
	}
	switch {
	case state == progress.Running && b.usage[i] == nil && b.host != nil:
		u := phaseusage.Start(b.host.usage.Totals, b.host.samples)
		b.usage[i] = &u
	case state.Ended() && b.usage[i] != nil:
		if b.host != nil {
			if r, ok := b.usage[i].End(b.host.usage.Totals, b.host.usage.Kinds(), b.host.samples); ok {
				b.reports = append(b.reports, phaseReport{phase: ph.Name, Usage: r})
			}
		}
		b.usage[i] = nil
	}
}

// computeProgress recomputes b's progress and ETA and feeds them to the rules that watch
// build.progress, build.phase.progress or build.eta.
func (p *buildProgressProcessor) computeProgress(ctx context.Context, b *buildState) {
	if cap(b.phaseProgress) < len(b.progress.Phases) {
		b.phaseProgress = make([]float64, len(b.progress.Phases), len(b.progress.Phases)+2)
	}
	plan := p.planFromHistory(b)
	b.overall, b.phaseProgress = b.progress.Progress(b.phaseProgress[:len(b.progress.Phases)])
	p.estimateETA(b, plan)
	if len(p.engine.Rules()) == 0 || b.upstream {
		return
	}
	now := b.lastSeen
	for _, r := range p.engine.RulesFor(schema.MetricBuildProgress) {
		if matchesPhase(r.Filter, "", b.resource) {
			p.observe(ctx, r, &b.alerts, nil, now, b.overall, b, nil)
		}
	}
	if b.etaKnown {
		for _, r := range p.engine.RulesFor(schema.MetricBuildETA) {
			if matchesPhase(r.Filter, "", b.resource) {
				p.observe(ctx, r, &b.alerts, nil, now, b.eta.Seconds(), b, nil)
			}
		}
	}
	for _, r := range p.engine.RulesFor(schema.MetricPhaseProgress) {
		for i := range b.progress.Phases {
			name := b.progress.Phases[i].Name
			if !matchesPhase(r.Filter, name, b.resource) {
				continue
			}
			attrs := append(p.attrBuf[:0], schema.AttrPhase...)
			attrs = append(attrs, '=')
			attrs = append(attrs, name...)
			p.attrBuf = attrs
			p.observe(ctx, r, &b.alerts, attrs, now, b.phaseProgress[i], b, nil)
		}
	}
}

// ingestHost reads one host resource: it normalizes its host metrics (whatever their source
// and shape) into a sample, feeds the alias rules from that sample and the other rules from
// the metrics they name, and, with phase_resources enabled, attributes the sample to the
// phases running on the host.
func (p *buildProgressProcessor) ingestHost(ctx context.Context, name string, rm pmetric.ResourceMetrics, now time.Time) *hostState {
	h := p.hostFor(name)
	h.lastSeen = now
	res := rm.Resource().Attributes()
	sample := h.usage.Read(rm, pcommon.NewTimestampFromTime(now))
	h.samples++
	sms := rm.ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		ms := sms.At(i).Metrics()
		for j := 0; j < ms.Len(); j++ {
			m := ms.At(j)
			dps, ok := pdatacontract.NumberPoints(m)
			if !ok {
				continue
			}
			if rules := p.engine.RulesFor(m.Name()); rules != nil {
				p.observeMetric(ctx, rules, dps, res, nil, h, now)
			}
		}
	}
	p.observeAliases(ctx, &sample, res, h, now)
	if p.phaseResources {
		p.attributeSample(h, &sample)
	}
	return h
}

// observeAliases feeds the alias rules (cpu_usage, memory_usage, disk_usage,
// network_bandwidth, io_operations) the host's normalized figures.
func (p *buildProgressProcessor) observeAliases(ctx context.Context, s *hostusage.Sample, res pcommon.Map, h *hostState, now time.Time) {
	if len(p.aliasRules) == 0 {
		return
	}
	ts := now
	if s.TS != 0 {
		ts = s.TS.AsTime()
	}
	for _, r := range p.aliasRules {
		var v float64
		var ok bool
		switch r.Alias {
		case "cpu_usage":
			v, ok = s.CPU, s.HasCPU
		case "memory_usage":
			v, ok = s.MemUtil, s.HasMemUtil
		case "disk_usage":
			v, ok = s.FSUtil, s.HasFSUtil
		case "network_bandwidth":
			v, ok = s.Bandwidth()
		case "io_operations":
			v, ok = s.IOPS()
		}
		if !ok || !matchesAlias(r, res) {
			continue
		}
		p.deliver(ctx, r, nil, ts, v, nil, h)
	}
}

// logOwner returns the log field that names an alert's resource.
func logOwner(b *buildState, h *hostState) zap.Field {
	if b != nil {
		return zap.String(attrBuildID, b.id)
	}
	return zap.String(attrHostName, h.name)
}
