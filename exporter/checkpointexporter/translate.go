package checkpointexporter // import "github.com/buildmon/buildmon/exporter/checkpointexporter"

import (
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
	"github.com/buildmon/buildmon/internal/schema"
)

// translate turns a batch of metrics into observations: a ResourceMetrics with
// cicd.pipeline.run.id is a build, one with only host.name a host. Data points without a
// timestamp count as observed at now; NaN and infinite values are ignored.
func translate(md pmetric.Metrics, now int64) state.Batch {
	var batch state.Batch
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		attrs := rm.Resource().Attributes()
		if id := str(attrs, schema.AttrRunID); id != "" {
			batch.Builds = append(batch.Builds, translateBuild(id, rm, now))
			continue
		}
		if host := str(attrs, schema.AttrHostName); host != "" {
			batch.Hosts = append(batch.Hosts, translateHost(host, rm, now))
		}
	}
	return batch
}

func str(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return v.AsString()
	}
	return ""
}

// points returns the number data points of a gauge or sum.
func points(m pmetric.Metric) pmetric.NumberDataPointSlice {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints()
	default:
		return pmetric.NewNumberDataPointSlice()
	}
}

// value returns a data point's value as float64; ok is false for NaN, infinities and points
// without a value.
func value(dp pmetric.NumberDataPoint) (float64, bool) {
	var v float64
	switch dp.ValueType() {
	case pmetric.NumberDataPointValueTypeInt:
		return float64(dp.IntValue()), true
	case pmetric.NumberDataPointValueTypeDouble:
		v = dp.DoubleValue()
	default:
		return 0, false
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

func ts(dp pmetric.NumberDataPoint, now int64) int64 {
	if t := int64(dp.Timestamp()); t != 0 {
		return t
	}
	return now
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

// alertSet collects the alert data points of one resource. When an alert changes level or
// state the processor reports the old level and state once with 0 next to the new ones
// with 1: a 1 wins over any 0 of the same rule, whatever their order.
type alertSet struct {
	list []state.AlertObservation
	// on holds the rules with an active point of 1.
	on map[string]bool
}

func (s *alertSet) get(rule string) *state.AlertObservation {
	for i := range s.list {
		if s.list[i].Rule == rule {
			return &s.list[i]
		}
	}
	s.list = append(s.list, state.AlertObservation{Rule: rule})
	return &s.list[len(s.list)-1]
}

func (s *alertSet) add(m pmetric.Metric, now int64) {
	dps := points(m)
	for j := 0; j < dps.Len(); j++ {
		dp := dps.At(j)
		v, ok := value(dp)
		rule := str(dp.Attributes(), schema.AttrAlertRule)
		if !ok || rule == "" {
			continue
		}
		t := ts(dp, now)
		a := s.get(rule)
		a.TS = max(a.TS, t)
		level := str(dp.Attributes(), schema.AttrAlertLevel)
		switch m.Name() {
		case schema.MetricAlertActive:
			if v == 0 && s.on[rule] {
				continue // the old level or state of an alert that is active with another
			}
			if v != 0 {
				if s.on == nil {
					s.on = map[string]bool{}
				}
				s.on[rule] = true
			}
			a.Active = v != 0
			if level != "" {
				a.Level = level
			}
			if st := str(dp.Attributes(), schema.AttrAlertState); st != "" {
				a.State = st
			}
		case schema.MetricAlertValue:
			if a.Level == "" || level == "" || level == a.Level || !s.on[rule] {
				a.Value, a.HasValue = v, true
				if a.Level == "" {
					a.Level = level
				}
			}
		}
	}
}

// observations returns the alerts that have an active data point; a value alone says
// nothing about the alert's state.
func (s *alertSet) observations(hasActive map[string]bool) []state.AlertObservation {
	out := s.list[:0]
	for _, a := range s.list {
		if hasActive[a.Rule] {
			if a.State == "" {
				a.State = state.AlertFiring
			}
			out = append(out, a)
		}
	}
	return out
}

func activeRules(m pmetric.Metric, into map[string]bool) {
	dps := points(m)
	for j := 0; j < dps.Len(); j++ {
		if rule := str(dps.At(j).Attributes(), schema.AttrAlertRule); rule != "" {
			into[rule] = true
		}
	}
}

// walkPoints calls fn for every number data point of rm's metrics and collects the alerts
// (build.alert.active and build.alert.value) on the way; builds and hosts share it.
func walkPoints(rm pmetric.ResourceMetrics, now int64, fn func(metric string, attrs pcommon.Map, v float64, t int64)) []state.AlertObservation {
	var alerts alertSet
	hasActive := map[string]bool{}
	sms := rm.ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		ms := sms.At(i).Metrics()
		for k := 0; k < ms.Len(); k++ {
			m := ms.At(k)
			switch m.Name() {
			case schema.MetricAlertActive:
				activeRules(m, hasActive)
				alerts.add(m, now)
				continue
			case schema.MetricAlertValue:
				alerts.add(m, now)
				continue
			}
			dps := points(m)
			for j := 0; j < dps.Len(); j++ {
				dp := dps.At(j)
				if v, ok := value(dp); ok {
					fn(m.Name(), dp.Attributes(), v, ts(dp, now))
				}
			}
		}
	}
	return alerts.observations(hasActive)
}

func translateBuild(id string, rm pmetric.ResourceMetrics, now int64) state.BuildObservation {
	attrs := rm.Resource().Attributes()
	o := state.BuildObservation{
		ID: id,
		Resource: state.Resource{
			Pipeline:   str(attrs, schema.AttrPipelineName),
			Host:       str(attrs, schema.AttrHostName),
			Worker:     str(attrs, schema.AttrWorkerID),
			Repository: str(attrs, schema.AttrRepositoryURL),
			Branch:     str(attrs, schema.AttrRefHeadName),
			Revision:   str(attrs, schema.AttrRefHeadRevision),
		},
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
	o.Alerts = walkPoints(rm, now, func(metric string, attrs pcommon.Map, v float64, t int64) {
		switch metric {
		case schema.MetricBuildState:
			if v == 1 {
				newerS(&o.State, str(attrs, schema.AttrBuildState), t)
			}
		case schema.MetricBuildResult:
			if v == 1 {
				newerS(&o.Result, str(attrs, schema.AttrPipelineResult), t)
			}
		case schema.MetricBuildDuration:
			newerF(&o.Duration, v, t)
		case schema.MetricBuildProgress:
			newerF(&o.Progress, v, t)
			o.AlertsComplete = true
			o.AlertsAt = max(o.AlertsAt, t)
		case schema.MetricBuildETA:
			newerF(&o.ETA, v, t)
		case schema.MetricBuildStartTime:
			newerF(&o.Start, v, t)
		case schema.MetricBuildPaused:
			if !o.Paused.OK || t >= o.Paused.TS {
				o.Paused = state.At(v != 0, t)
			}
		default:
			name := str(attrs, schema.AttrPhase)
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
			newerS(&phase(name).State, str(attrs, schema.AttrPhaseState), t)
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
		switch str(attrs, schema.AttrDiskDirection) {
		case "read":
			newerI(&p.DiskRead, v, t)
		case "write":
			newerI(&p.DiskWrite, v, t)
		}
	case schema.MetricPhaseDiskOperations:
		p := phase(name)
		switch str(attrs, schema.AttrDiskDirection) {
		case "read":
			newerI(&p.DiskOpsRead, v, t)
		case "write":
			newerI(&p.DiskOpsWrite, v, t)
		}
	case schema.MetricPhaseNetworkIO:
		p := phase(name)
		switch str(attrs, schema.AttrNetworkDirection) {
		case "transmit":
			newerI(&p.NetTransmit, v, t)
		case "receive":
			newerI(&p.NetReceive, v, t)
		}
	}
}

// sumPoint adds up the data points of one metric (e.g. all interfaces) that pass keep,
// stamped with the newest timestamp.
type sumPoint struct {
	v  float64
	t  int64
	ok bool
}

func (s *sumPoint) add(v float64, t int64) {
	s.v += v
	s.t = max(s.t, t)
	s.ok = true
}

func (s sumPoint) float() state.Point[float64] {
	if !s.ok {
		return state.Point[float64]{}
	}
	return state.At(s.v, s.t)
}

func (s sumPoint) int() state.Point[int64] {
	if !s.ok {
		return state.Point[int64]{}
	}
	return state.At(int64(math.Round(s.v)), s.t)
}

func translateHost(name string, rm pmetric.ResourceMetrics, now int64) state.HostObservation {
	o := state.HostObservation{Name: name}
	var cpuBusy, cpuOther, memUsed, memTotal, netTx, netRx, opsR, opsW sumPoint
	alerts := walkPoints(rm, now, func(metric string, attrs pcommon.Map, v float64, t int64) {
		switch metric {
		case schema.MetricCPUUtilization:
			switch mode := str(attrs, schema.AttrCPUMode); mode {
			case "busy", "":
				cpuBusy.add(v, t)
			case "idle", "wait", "iowait", "steal":
			default:
				cpuOther.add(v, t)
			}
		case schema.MetricMemoryUtilization:
			if str(attrs, schema.AttrMemoryState) == "used" {
				newerF(&o.MemUtil, v, t)
			}
		case schema.MetricMemoryUsage:
			memTotal.add(v, t)
			if str(attrs, schema.AttrMemoryState) == "used" {
				memUsed.add(v, t)
			}
		case schema.MetricFilesystemUtilization:
			if !o.FSUtil.OK || v > o.FSUtil.V {
				o.FSUtil = state.At(v, max(t, o.FSUtil.TS))
				o.FSMount = str(attrs, schema.AttrMountpoint)
			} else {
				o.FSUtil.TS = max(o.FSUtil.TS, t)
			}
		case schema.MetricNetworkIORate:
			switch str(attrs, schema.AttrNetworkDirection) {
			case "transmit":
				netTx.add(v, t)
			case "receive":
				netRx.add(v, t)
			}
		case schema.MetricDiskOperationsRate:
			switch str(attrs, schema.AttrDiskDirection) {
			case "read":
				opsR.add(v, t)
			case "write":
				opsW.add(v, t)
			}
		}
	})
	if cpuBusy.ok {
		o.CPU = cpuBusy.float()
	} else {
		o.CPU = cpuOther.float()
	}
	o.MemUsed, o.MemTotal = memUsed.int(), memTotal.int()
	o.NetTransmit, o.NetReceive = netTx.float(), netRx.float()
	o.DiskOpsRead, o.DiskOpsWrite = opsR.float(), opsW.float()
	o.Alerts = alerts
	return o
}
