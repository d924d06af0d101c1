package buildprogressprocessor // import "github.com/buildmon/buildmon/processor/buildprogressprocessor"

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/internal/alerting"
	"github.com/buildmon/buildmon/internal/pdatacontract"
	"github.com/buildmon/buildmon/internal/schema"
	"github.com/buildmon/buildmon/processor/buildprogressprocessor/internal/metadata"
)

// metricDesc is the name, description and unit of an emitted metric, as in the schema
// (metadata.yaml at the repository root).
type metricDesc struct{ name, description, unit string }

var (
	descPhaseProgress = metricDesc{schema.MetricPhaseProgress, "Completed share of the phase, 0 to 1 (completed steps / total steps; 1 once completed or skipped).", "1"}
	descProgress      = metricDesc{schema.MetricBuildProgress, "Weighted overall progress of the build, 0 to 1; never decreases within a build.", "1"}
	descETA           = metricDesc{schema.MetricBuildETA, "Estimated time until the build finishes.", "s"}
	descPaused        = metricDesc{schema.MetricBuildPaused, "1 while a CRITICAL alert on the build or its host asks the build to pause, else 0.", "{build}"}
	descAlertActive   = metricDesc{schema.MetricAlertActive, "1 for each alert that is pending or firing, by rule and level.", "{alert}"}
	descAlertValue    = metricDesc{schema.MetricAlertValue, "The aggregated value that the alert rule compared with its threshold.", "1"}
	descPhaseCPUAvg   = metricDesc{schema.MetricPhaseCPUAvg, "Average host CPU utilization while the phase ran (opt-in, emitted when the phase ends).", "1"}
	descPhaseCPUMax   = metricDesc{schema.MetricPhaseCPUMax, "Highest host CPU utilization while the phase ran (opt-in, emitted when the phase ends).", "1"}
	descPhaseMemMax   = metricDesc{schema.MetricPhaseMemoryMax, "Peak host memory in use while the phase ran (opt-in, emitted when the phase ends).", "By"}
	descPhaseDiskIO   = metricDesc{schema.MetricPhaseDiskIO, "Bytes the host read and wrote while the phase ran (opt-in, emitted when the phase ends).", "By"}
	descPhaseNetIO    = metricDesc{schema.MetricPhaseNetworkIO, "Bytes the host sent and received while the phase ran (opt-in, emitted when the phase ends).", "By"}
	descPhaseDiskOps  = metricDesc{schema.MetricPhaseDiskOperations, "Disk operations of the host while the phase ran (opt-in, emitted when the phase ends).", "{operation}"}
)

// Attribute values of the direction attributes, indexed like hostusage.Totals.
var (
	diskDirections    = [2]string{schema.DiskRead, schema.DiskWrite}
	networkDirections = [2]string{schema.NetworkTransmit, schema.NetworkReceive}
)

// gauge appends a gauge metric to ms and returns its data points.
func gauge(ms pmetric.MetricSlice, d metricDesc) pmetric.NumberDataPointSlice {
	m := ms.AppendEmpty()
	m.SetName(d.name)
	m.SetDescription(d.description)
	m.SetUnit(d.unit)
	return m.SetEmptyGauge().DataPoints()
}

// lazyGauge appends its gauge to the scope on first use.
type lazyGauge struct {
	scope *lazyScope
	desc  metricDesc
	dps   pmetric.NumberDataPointSlice
	ok    bool
}

// point appends a data point with timestamp ts.
func (g *lazyGauge) point(ts pcommon.Timestamp) pmetric.NumberDataPoint {
	if !g.ok {
		g.dps, g.ok = gauge(g.scope.metrics(), g.desc), true
	}
	dp := g.dps.AppendEmpty()
	dp.SetTimestamp(ts)
	return dp
}

// lazyScope appends the processor's ScopeMetrics to a ResourceMetrics on first use, so a
// resource with nothing to add gets no empty scope.
type lazyScope struct {
	rm      pmetric.ResourceMetrics
	ms      pmetric.MetricSlice
	created bool
}

func (l *lazyScope) metrics() pmetric.MetricSlice {
	if !l.created {
		sm := l.rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName(metadata.ScopeName)
		l.ms, l.created = sm.Metrics(), true
	}
	return l.ms
}

// emitBuild appends a build's derived metrics to its ResourceMetrics.
func (p *buildProgressProcessor) emitBuild(rm pmetric.ResourceMetrics, b *buildState, now time.Time) {
	scope := lazyScope{rm: rm}
	ms := scope.metrics()
	ms.EnsureCapacity(4)
	ts := b.stamp.next(now)
	if n := len(b.progress.Phases); n > 0 {
		dps := gauge(ms, descPhaseProgress)
		dps.EnsureCapacity(n)
		for i := range b.progress.Phases {
			dp := dps.AppendEmpty()
			dp.SetTimestamp(ts)
			dp.SetDoubleValue(b.phaseProgress[i])
			dp.Attributes().PutStr(schema.AttrPhase, b.progress.Phases[i].Name)
		}
	}
	dp := gauge(ms, descProgress).AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetDoubleValue(b.overall)
	if b.etaKnown {
		emitETA(ms, b, ts)
	}
	p.emitPaused(ms, b, ts)
	p.emitAlerts(&scope, &b.alerts, ts)
	if len(b.reports) > 0 {
		emitReports(&scope, b.reports, ts)
		clear(b.reports)
		b.reports = b.reports[:0]
	}
}

func (p *buildProgressProcessor) emitPaused(ms pmetric.MetricSlice, b *buildState, ts pcommon.Timestamp) {
	dp := gauge(ms, descPaused).AppendEmpty()
	dp.SetTimestamp(ts)
	if b.paused() {
		dp.SetIntValue(1)
	} else {
		dp.SetIntValue(0)
	}
}

// emitHost appends a host's alerts to its ResourceMetrics (nothing when it has none).
func (p *buildProgressProcessor) emitHost(rm pmetric.ResourceMetrics, h *hostState, now time.Time) {
	scope := lazyScope{rm: rm}
	p.emitAlerts(&scope, &h.alerts, h.stamp.next(now))
}

// emitPauseNotice fills rm with a build's last seen resource, build.paused and its alerts:
// a CRITICAL alert changed the build's pause state while the build was not in the batch.
func (p *buildProgressProcessor) emitPauseNotice(rm pmetric.ResourceMetrics, b *buildState, now time.Time) {
	b.resource.CopyTo(rm.Resource().Attributes())
	scope := lazyScope{rm: rm}
	ts := b.stamp.next(now)
	p.emitPaused(scope.metrics(), b, ts)
	p.emitAlerts(&scope, &b.alerts, ts)
}

// emitAlerts appends build.alert.active and build.alert.value for the alerts of one
// resource. Per rule it shows what the engine's Display selects: the resource's most severe
// pending or firing series of level WARNING or above (INFO alerts are only logged). A rule
// whose shown alert changed or ended reports its previous level and state once with value 0,
// so that consumers that keep the last value (the Prometheus exporter) do not keep showing
// it.
func (p *buildProgressProcessor) emitAlerts(scope *lazyScope, set *alerting.Set, ts pcommon.Timestamp) {
	shown := p.engine.Display(set)
	if len(shown) == 0 {
		return
	}
	active := lazyGauge{scope: scope, desc: descAlertActive}
	values := lazyGauge{scope: scope, desc: descAlertValue}
	for i := range shown {
		d := &shown[i]
		if d.Prev.Level != alerting.None && d.Prev != d.Cur {
			pdatacontract.EncodeAlertActive(active.point(ts), d.Rule.Name, d.Prev.Level.String(), d.Prev.State.String(), false)
		}
		if d.Cur.Level != alerting.None {
			pdatacontract.EncodeAlertActive(active.point(ts), d.Rule.Name, d.Cur.Level.String(), d.Cur.State.String(), true)
			pdatacontract.EncodeAlertValue(values.point(ts), d.Rule.Name, d.Cur.Level.String(), d.Value)
		}
	}
}

// emitReports appends the resource use of the phases that ended.
func emitReports(scope *lazyScope, reports []phaseReport, ts pcommon.Timestamp) {
	cpuAvg := lazyGauge{scope: scope, desc: descPhaseCPUAvg}
	cpuMax := lazyGauge{scope: scope, desc: descPhaseCPUMax}
	memMax := lazyGauge{scope: scope, desc: descPhaseMemMax}
	disk := lazyGauge{scope: scope, desc: descPhaseDiskIO}
	net := lazyGauge{scope: scope, desc: descPhaseNetIO}
	ops := lazyGauge{scope: scope, desc: descPhaseDiskOps}
	point := func(g *lazyGauge, phase string) pmetric.NumberDataPoint {
		dp := g.point(ts)
		dp.Attributes().PutStr(schema.AttrPhase, phase)
		return dp
	}
	for i := range reports {
		r := &reports[i]
		if r.HasCPU {
			point(&cpuAvg, r.phase).SetDoubleValue(r.CPUAvg)
			point(&cpuMax, r.phase).SetDoubleValue(r.CPUMax)
		}
		if r.HasMem {
			point(&memMax, r.phase).SetIntValue(r.MemMax)
		}
		for dir := range 2 {
			if r.HasDisk {
				dp := point(&disk, r.phase)
				dp.SetIntValue(r.Disk[dir])
				dp.Attributes().PutStr(schema.AttrDiskDirection, diskDirections[dir])
			}
			if r.HasNet {
				dp := point(&net, r.phase)
				dp.SetIntValue(r.Net[dir])
				dp.Attributes().PutStr(schema.AttrNetworkDirection, networkDirections[dir])
			}
			if r.HasOps {
				dp := point(&ops, r.phase)
				dp.SetIntValue(r.Ops[dir])
				dp.Attributes().PutStr(schema.AttrDiskDirection, diskDirections[dir])
			}
		}
	}
}
