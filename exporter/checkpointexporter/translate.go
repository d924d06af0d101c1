package checkpointexporter // import "github.com/buildmon/buildmon/exporter/checkpointexporter"

import (
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
	"github.com/buildmon/buildmon/internal/hostusage"
	"github.com/buildmon/buildmon/internal/pdatacontract"
	"github.com/buildmon/buildmon/internal/schema"
)

// translate turns a batch of metrics into observations: a ResourceMetrics with
// cicd.pipeline.run.id is a build, one with only host.name a host (pdatacontract.Classify),
// read through readers. Data points without a timestamp count as observed at now; NaN and
// infinite values are ignored.
func translate(md pmetric.Metrics, now int64, readers *hostReaders) state.Batch {
	var batch state.Batch
	var alerts pdatacontract.AlertDecoder
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		switch kind, key := pdatacontract.Classify(rm.Resource().Attributes()); kind {
		case pdatacontract.Build:
			batch.Builds = append(batch.Builds, translateBuild(key, rm, now, &alerts))
		case pdatacontract.Host:
			batch.Hosts = append(batch.Hosts, translateHost(key, rm, now, &alerts, readers))
		}
	}
	return batch
}

func newerF(dst *state.Point[float64], v float64, t int64) {
	if !dst.OK || t >= dst.TS {
		*dst = state.At(v, t)
	}
}

func newerI(dst *state.Point[int64], v float64, t int64) {
	if !dst.OK || t >= dst.TS {
		*dst = state.At(int64(math.Round(v)), t)
	}
}

func newerS(dst *state.Point[string], v string, t int64) {
	if !dst.OK || t >= dst.TS {
		*dst = state.At(v, t)
	}
}

// walkPoints calls fn (if not nil) for every finite number data point of rm's metrics and
// reads the alert points (build.alert.active and build.alert.value) with the shared decoder
// on the way; builds and hosts share it.
func walkPoints(rm pmetric.ResourceMetrics, now int64, alerts *pdatacontract.AlertDecoder, fn func(metric string, attrs pcommon.Map, v float64, t int64)) []state.AlertObservation {
	alerts.Reset()
	nowTS := pcommon.Timestamp(now)
	sms := rm.ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		ms := sms.At(i).Metrics()
		for k := 0; k < ms.Len(); k++ {
			m := ms.At(k)
			if alerts.Add(m, nowTS) {
				continue
			}
			dps, ok := pdatacontract.NumberPoints(m)
			if !ok || fn == nil {
				continue
			}
			for j := 0; j < dps.Len(); j++ {
				dp := dps.At(j)
				if v, ok := pdatacontract.FiniteValue(dp); ok {
					fn(m.Name(), dp.Attributes(), v, int64(pdatacontract.Timestamp(dp, nowTS)))
				}
			}
		}
	}
	decoded := alerts.Alerts()
	if len(decoded) == 0 {
		return nil
	}
	out := make([]state.AlertObservation, len(decoded))
	for i, a := range decoded {
		out[i] = state.AlertObservation{Rule: a.Rule, Level: a.Level, State: a.State, Active: a.Active,
			Value: a.Value, HasValue: a.HasValue, TS: int64(a.TS)}
	}
	return out
}

func translateBuild(id string, rm pmetric.ResourceMetrics, now int64, alerts *pdatacontract.AlertDecoder) state.BuildObservation {
	r := pdatacontract.ReadResource(rm.Resource().Attributes())
	o := state.BuildObservation{
		ID: id,
		Resource: state.Resource{Pipeline: r.Pipeline, Host: r.Host, Worker: r.Worker, Repository: r.Repository,
			Branch: r.Branch, Revision: r.Revision},
	}
	phaseIndex := map[string]int{}
	phase := func(name string) *state.PhaseObservation {
		i, ok := phaseIndex[name]
		if !ok {
			i = len(o.Phases)
			phaseIndex[name] = i
			o.Phases = append(o.Phases, state.PhaseObservation{Name: name})
		}
		return &o.Phases[i]
	}
	o.Alerts = walkPoints(rm, now, alerts, func(metric string, attrs pcommon.Map, v float64, t int64) {
		switch metric {
		case schema.MetricBuildState:
			if v == 1 {
				newerS(&o.State, pdatacontract.Str(attrs, schema.AttrBuildState), t)
			}
		case schema.MetricBuildResult:
			if v == 1 {
				newerS(&o.Result, pdatacontract.Str(attrs, schema.AttrPipelineResult), t)
			}
		case schema.MetricBuildDuration:
			newerF(&o.Duration, v, t)
		case schema.MetricBuildProgress:
			newerF(&o.Progress, v, t)
			o.AlertsComplete = true
			o.AlertsAt = max(o.AlertsAt, t)
		case schema.MetricBuildETA:
			if !o.ETA.OK || t >= o.ETA.TS {
				newerF(&o.ETA, v, t)
				newerS(&o.ETASource, pdatacontract.Str(attrs, schema.AttrETASource), t)
			}
		case schema.MetricBuildStartTime:
			newerF(&o.Start, v, t)
		case schema.MetricBuildPaused:
			if !o.Paused.OK || t >= o.Paused.TS {
				o.Paused = state.At(v != 0, t)
			}
		default:
			name := pdatacontract.Str(attrs, schema.AttrPhase)
			if name == "" {
				return
			}
			translatePhasePoint(phase, name, metric, attrs, v, t)
		}
	})
	return o
}

func translatePhasePoint(phase func(string) *state.PhaseObservation, name, metric string, attrs pcommon.Map, v float64, t int64) {
	switch metric {
	case schema.MetricPhaseStepsTotal:
		newerI(&phase(name).StepsTotal, v, t)
	case schema.MetricPhaseStepsCompleted:
		newerI(&phase(name).StepsCompleted, v, t)
	case schema.MetricPhaseState:
		if v == 1 {
			newerS(&phase(name).State, pdatacontract.Str(attrs, schema.AttrPhaseState), t)
		} else {
			phase(name) // keep the plan order even before the phase has a state
		}
	case schema.MetricPhaseDuration:
		newerF(&phase(name).Duration, v, t)
	case schema.MetricPhaseWeight:
		newerF(&phase(name).Weight, v, t)
	case schema.MetricPhaseProgress:
		newerF(&phase(name).Progress, v, t)
	case schema.MetricPhaseStartTime:
		newerF(&phase(name).Start, v, t)
	case schema.MetricPhaseCPUAvg:
		newerF(&phase(name).CPUAvg, v, t)
	case schema.MetricPhaseCPUMax:
		newerF(&phase(name).CPUMax, v, t)
	case schema.MetricPhaseMemoryMax:
		newerI(&phase(name).MemoryMax, v, t)
	case schema.MetricPhaseDiskIO:
		p := phase(name)
		switch pdatacontract.Str(attrs, schema.AttrDiskDirection) {
		case schema.DiskRead:
			newerI(&p.DiskRead, v, t)
		case schema.DiskWrite:
			newerI(&p.DiskWrite, v, t)
		}
	case schema.MetricPhaseDiskOperations:
		p := phase(name)
		switch pdatacontract.Str(attrs, schema.AttrDiskDirection) {
		case schema.DiskRead:
			newerI(&p.DiskOpsRead, v, t)
		case schema.DiskWrite:
			newerI(&p.DiskOpsWrite, v, t)
		}
	case schema.MetricPhaseNetworkIO:
		p := phase(name)
		switch pdatacontract.Str(attrs, schema.AttrNetworkDirection) {
		case schema.NetworkTransmit:
			newerI(&p.NetTransmit, v, t)
		case schema.NetworkReceive:
			newerI(&p.NetReceive, v, t)
		}
	}
}

// translateHost reads a host resource through the host readers (internal/hostusage): its
// utilization, rates (the source's own rate gauges, else derived from its counters) and the
// totals phases are attributed from.
func translateHost(name string, rm pmetric.ResourceMetrics, now int64, alerts *pdatacontract.AlertDecoder, readers *hostReaders) state.HostObservation {
	o := state.HostObservation{Name: name}
	o.Alerts = walkPoints(rm, now, alerts, nil)
	s, usage := readers.read(name, rm, pcommon.Timestamp(now))
	o.Usage = usage
	t := int64(s.TS)
	if s.HasCPU {
		o.CPU = state.At(s.CPU, t)
	}
	if s.HasMemUtil {
		o.MemUtil = state.At(s.MemUtil, t)
	}
	if s.HasMemUsed {
		o.MemUsed = state.At(s.MemUsed, t)
	}
	if s.HasMemTotal {
		o.MemTotal = state.At(s.MemTotal, t)
	}
	if s.HasFSUtil {
		o.FSUtil, o.FSMount = state.At(s.FSUtil, t), s.FSMount
	}
	if s.HasNetRate {
		o.NetTransmit, o.NetReceive = state.At(s.NetRate[hostusage.Transmit], t), state.At(s.NetRate[hostusage.Receive], t)
	}
	if s.HasOpsRate {
		o.DiskOpsRead, o.DiskOpsWrite = state.At(s.OpsRate[hostusage.Read], t), state.At(s.OpsRate[hostusage.Write], t)
	}
	return o
}
