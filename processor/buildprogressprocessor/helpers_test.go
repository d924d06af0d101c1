package buildprogressprocessor

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/buildmon/buildmon/internal/pdatacontract"
	"github.com/buildmon/buildmon/internal/schema"
	"github.com/buildmon/buildmon/processor/buildprogressprocessor/internal/metadata"
)

// t0 is the fake clock's start.
var t0 = time.Date(2025, 5, 31, 12, 0, 0, 0, time.UTC)

// fakeClock is an alerting.Clock that moves only when the test says so.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// receiverScope is the scope the buildmon receiver writes its metrics under.
const receiverScope = "github.com/buildmon/buildmon/receiver/buildmonreceiver"

// phaseIn is one phase of a build as the receiver reports it.
type phaseIn struct {
	name        string
	state       string
	total, done int64
	weight      float64 // from the build's plan; 0 = none
	duration    float64
}

// buildIn is one build report as the receiver emits it (state change or report_interval).
type buildIn struct {
	id, pipeline, host string
	at                 time.Time // timestamp of the data points
	phases             []phaseIn
	finished           bool
	result             string
	duration           float64
}

// leftState is the state a phase in state s left, as the receiver reports it (0) beside the
// current state (1); "" for a pending phase.
var leftState = map[string]string{"running": "pending", "completed": "running", "failed": "running", "skipped": "pending"}

var (
	memStates    = []string{"used", "free", "cached", "buffered"}
	netDirection = []string{"transmit", "receive"}
	ioDirection  = []string{"read", "write"}
)

func newMetric(sm pmetric.ScopeMetrics, name, unit string) pmetric.Metric {
	m := sm.Metrics().AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	return m
}

func intPoint(dps pmetric.NumberDataPointSlice, at time.Time, v int64, kv ...string) {
	dp := dps.AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
	dp.SetIntValue(v)
	for i := 0; i < len(kv); i += 2 {
		dp.Attributes().PutStr(kv[i], kv[i+1])
	}
}

func doublePoint(dps pmetric.NumberDataPointSlice, at time.Time, v float64, kv ...string) {
	dp := dps.AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
	dp.SetDoubleValue(v)
	for i := 0; i < len(kv); i += 2 {
		dp.Attributes().PutStr(kv[i], kv[i+1])
	}
}

// addBuild appends a build's ResourceMetrics the way the buildmon receiver writes it: the
// state sets hold the current state and the state left.
func addBuild(md pmetric.Metrics, b buildIn) {
	rm := md.ResourceMetrics().AppendEmpty()
	res := rm.Resource().Attributes()
	res.PutStr(schema.AttrRunID, b.id)
	res.PutStr(schema.AttrPipelineName, b.pipeline)
	res.PutStr(schema.AttrHostName, b.host)
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(receiverScope)
	at := b.at

	total := newMetric(sm, schema.MetricPhaseStepsTotal, "{step}").SetEmptyGauge().DataPoints()
	done := newMetric(sm, schema.MetricPhaseStepsCompleted, "{step}").SetEmptyGauge().DataPoints()
	state := newMetric(sm, schema.MetricPhaseState, "{phase}").SetEmptyGauge().DataPoints()
	dur := newMetric(sm, schema.MetricPhaseDuration, "s").SetEmptyGauge().DataPoints()
	var weight pmetric.NumberDataPointSlice
	hasWeight := false
	for _, ph := range b.phases {
		intPoint(total, at, ph.total, schema.AttrPhase, ph.name)
		intPoint(done, at, ph.done, schema.AttrPhase, ph.name)
		intPoint(state, at, 1, schema.AttrPhase, ph.name, schema.AttrPhaseState, ph.state)
		if left := leftState[ph.state]; left != "" {
			intPoint(state, at, 0, schema.AttrPhase, ph.name, schema.AttrPhaseState, left)
		}
		doublePoint(dur, at, ph.duration, schema.AttrPhase, ph.name)
		if ph.weight > 0 {
			if !hasWeight {
				weight, hasWeight = newMetric(sm, schema.MetricPhaseWeight, "1").SetEmptyGauge().DataPoints(), true
			}
			doublePoint(weight, at, ph.weight, schema.AttrPhase, ph.name)
		}
	}
	bs := newMetric(sm, schema.MetricBuildState, "{build}").SetEmptyGauge().DataPoints()
	if b.finished {
		intPoint(bs, at, 1, schema.AttrBuildState, "finished")
		intPoint(bs, at, 0, schema.AttrBuildState, "running")
		intPoint(newMetric(sm, schema.MetricBuildResult, "{build}").SetEmptyGauge().DataPoints(), at, 1, schema.AttrPipelineResult, b.result)
	} else {
		intPoint(bs, at, 1, schema.AttrBuildState, "running")
	}
	doublePoint(newMetric(sm, schema.MetricBuildDuration, "s").SetEmptyGauge().DataPoints(), at, b.duration)
}

// hostIn is one host scrape.
type hostIn struct {
	name       string
	at         time.Time
	cpu        float64 // busy share
	memUsed    int64   // bytes
	memUtil    float64 // used share
	fsUtil     [2]float64
	netRate    float64 // bytes/s on each of eth0 transmit and receive
	netTotal   int64   // cumulative bytes on each of eth0 transmit and receive
	diskTotal  int64   // cumulative bytes read and written on sda, each
	opsTotal   int64   // cumulative operations read and written on sda, each
	opsRate    float64 // operations/s read and written on sda, each
	onlySystem bool    // only CPU and memory (the 1 s "system" scrape)
}

// addHost appends a host's ResourceMetrics the way the buildmon receiver writes it.
func addHost(md pmetric.Metrics, h hostIn) {
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr(schema.AttrHostName, h.name)
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(receiverScope)
	at := h.at
	doublePoint(newMetric(sm, schema.MetricCPUUtilization, "1").SetEmptyGauge().DataPoints(), at, h.cpu, schema.AttrCPUMode, "busy")
	mu := newMetric(sm, schema.MetricMemoryUsage, "By").SetEmptySum()
	mu.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i, s := range memStates {
		v := int64(0)
		if i == 0 {
			v = h.memUsed
		}
		intPoint(mu.DataPoints(), at, v, schema.AttrMemoryState, s)
	}
	doublePoint(newMetric(sm, schema.MetricMemoryUtilization, "1").SetEmptyGauge().DataPoints(), at, h.memUtil, schema.AttrMemoryState, "used")
	if h.onlySystem {
		return
	}
	fs := newMetric(sm, schema.MetricFilesystemUtilization, "1").SetEmptyGauge().DataPoints()
	for i, mp := range []string{"/", "/var/lib/builds"} {
		doublePoint(fs, at, h.fsUtil[i], schema.AttrDevice, "sda"+string(rune('1'+i)), schema.AttrMountpoint, mp, schema.AttrFilesystemType, "ext4")
	}
	netIO := newMetric(sm, schema.MetricNetworkIO, "By").SetEmptySum()
	netIO.SetIsMonotonic(true)
	netIO.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	netRate := newMetric(sm, schema.MetricNetworkIORate, "By/s").SetEmptyGauge().DataPoints()
	for _, d := range netDirection {
		intPoint(netIO.DataPoints(), at, h.netTotal, schema.AttrInterface, "eth0", schema.AttrNetworkDirection, d)
		doublePoint(netRate, at, h.netRate, schema.AttrInterface, "eth0", schema.AttrNetworkDirection, d)
	}
	diskIO := newMetric(sm, schema.MetricDiskIO, "By").SetEmptySum()
	diskIO.SetIsMonotonic(true)
	diskIO.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	ops := newMetric(sm, schema.MetricDiskOperations, "{operation}").SetEmptySum()
	ops.SetIsMonotonic(true)
	ops.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	opsRate := newMetric(sm, schema.MetricDiskOperationsRate, "{operation}/s").SetEmptyGauge().DataPoints()
	for _, d := range ioDirection {
		intPoint(diskIO.DataPoints(), at, h.diskTotal, schema.AttrDevice, "sda", schema.AttrDiskDirection, d)
		intPoint(ops.DataPoints(), at, h.opsTotal, schema.AttrDevice, "sda", schema.AttrDiskDirection, d)
		doublePoint(opsRate, at, h.opsRate, schema.AttrDevice, "sda", schema.AttrDiskDirection, d)
	}
}

// batch builds one pmetric.Metrics from builds and hosts (in that order).
func batch(builds []buildIn, hosts ...hostIn) pmetric.Metrics {
	md := pmetric.NewMetrics()
	for _, b := range builds {
		addBuild(md, b)
	}
	for _, h := range hosts {
		addHost(md, h)
	}
	return md
}

// harness runs a processor made by the public factory with a fake clock into a sink.
type harness struct {
	t     testing.TB
	clock *fakeClock
	proc  processor.Metrics
	sink  *consumertest.MetricsSink
}

func newHarness(t testing.TB, cfg *Config, set ...processor.Settings) *harness {
	t.Helper()
	clock := &fakeClock{now: t0}
	sink := new(consumertest.MetricsSink)
	settings := processortest.NewNopSettings(metadata.Type)
	if len(set) > 0 {
		settings = set[0]
	}
	proc, err := newFactory(clock).CreateMetrics(context.Background(), settings, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), nil))
	t.Cleanup(func() { require.NoError(t, proc.Shutdown(context.Background())) })
	return &harness{t: t, clock: clock, proc: proc, sink: sink}
}

// consume sends md at clock time at and returns what the processor passed on.
func (h *harness) consume(at time.Time, md pmetric.Metrics) pmetric.Metrics {
	h.t.Helper()
	h.clock.Set(at)
	h.sink.Reset()
	require.NoError(h.t, h.proc.ConsumeMetrics(context.Background(), md))
	all := h.sink.AllMetrics()
	require.Len(h.t, all, 1)
	return all[0]
}

// derived returns the metrics the processor appended to the resource of build id (or host
// name) in out, by metric name, as data point slices.
func derived(t testing.TB, out pmetric.Metrics, attr, id string) map[string]pmetric.NumberDataPointSlice {
	t.Helper()
	got := map[string]pmetric.NumberDataPointSlice{}
	rms := out.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		if v, ok := rm.Resource().Attributes().Get(attr); !ok || v.Str() != id {
			continue
		}
		if attr == schema.AttrHostName {
			if _, isBuild := rm.Resource().Attributes().Get(schema.AttrRunID); isBuild {
				continue
			}
		}
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			if sms.At(j).Scope().Name() != metadata.ScopeName {
				continue
			}
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				got[ms.At(k).Name()] = ms.At(k).Gauge().DataPoints()
			}
		}
	}
	return got
}

// pointValue returns the value of the data point with the given attributes.
func pointValue(t testing.TB, dps pmetric.NumberDataPointSlice, kv ...string) (float64, bool) {
	t.Helper()
	if dps == (pmetric.NumberDataPointSlice{}) {
		return 0, false // no such metric
	}
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		ok := true
		for j := 0; j < len(kv); j += 2 {
			if v, has := dp.Attributes().Get(kv[j]); !has || v.Str() != kv[j+1] {
				ok = false
			}
		}
		if ok {
			return pdatacontract.Value(dp), true
		}
	}
	return 0, false
}
