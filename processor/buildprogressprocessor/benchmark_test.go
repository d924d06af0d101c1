package buildprogressprocessor

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/buildmon/buildmon/internal/pdatacontract"
	"github.com/buildmon/buildmon/internal/schema"
	"github.com/buildmon/buildmon/processor/buildprogressprocessor/internal/metadata"
)

// benchmarkRules are ten rules over every kind of input: host aliases and semantic names,
// per-attribute series, build metrics, and the processor's own progress and ETA.
func benchmarkRules() []RuleConfig {
	return []RuleConfig{
		{Name: "cpu", Metric: "cpu_usage", Aggregation: "avg", For: time.Minute, Thresholds: ThresholdsConfig{Warning: ptr(0.9), Critical: ptr(0.98)}},
		{Name: "mem", Metric: "memory_usage", Aggregation: "max", Thresholds: ThresholdsConfig{Warning: ptr(0.85), Error: ptr(0.95)}},
		{Name: "disk", Metric: "disk_usage", Aggregation: "last", Thresholds: ThresholdsConfig{Info: ptr(0.5), Warning: ptr(0.9)}},
		{Name: "net", Metric: "network_bandwidth", Aggregation: "max", Window: 3 * time.Second, Thresholds: ThresholdsConfig{Critical: ptr(1e9)}},
		{Name: "iops", Metric: "io_operations", Aggregation: "p95", Thresholds: ThresholdsConfig{Warning: ptr(5000)}},
		{Name: "fs", Metric: "system.filesystem.utilization", Aggregation: "avg", Thresholds: ThresholdsConfig{Warning: ptr(0.95)}},
		{Name: "phase_slow", Metric: "build.phase.duration", Aggregation: "last", Match: map[string]string{"build.phase": "BUILD"}, Thresholds: ThresholdsConfig{Warning: ptr(600)}},
		{Name: "build_long", Metric: "build.duration", Aggregation: "max", Thresholds: ThresholdsConfig{Warning: ptr(3600)}},
		{Name: "stalled", Metric: "build.progress", Aggregation: "max", Direction: "below", Window: 10 * time.Minute, Thresholds: ThresholdsConfig{Info: ptr(0.01)}},
		{Name: "eta_long", Metric: "build.eta", Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(7200)}},
	}
}

// benchmarkBatch is one report interval of n running builds of five phases spread over
// n/10 hosts (at least one), plus one scrape of each host.
func benchmarkBatch(n int, at time.Time) pmetric.Metrics {
	hosts := max(n/10, 1)
	builds := make([]buildIn, n)
	for i := range builds {
		builds[i] = buildIn{
			id: fmt.Sprintf("build-%05d", i), pipeline: fmt.Sprintf("pipeline-%d", i%20), host: fmt.Sprintf("host-%d", i%hosts),
			at: at, duration: 120,
			phases: phases5(completed(1), completed(4), phaseIn{state: "running", total: 40, done: int64(i % 40), duration: 60}, pending(10), pending(2)),
		}
	}
	hs := make([]hostIn, hosts)
	for i := range hs {
		hs[i] = hostIn{name: fmt.Sprintf("host-%d", i), at: at, cpu: 0.5, memUsed: 1 << 30, memUtil: 0.5,
			fsUtil: [2]float64{0.4, 0.6}, netRate: 1e6, netTotal: 1e9, diskTotal: 1e9, opsTotal: 1e6, opsRate: 100}
	}
	return batch(builds, hs...)
}

// BenchmarkProcessor measures data points per second through the processor at 100 and
// 10,000 active builds and 10 rules, beside a pass-through processor (processorhelper with an
// identity function) fed the same batches. Both copy the batch first (the receiver would
// build it); the overhead is the ratio of their ns/op. A third baseline, Floor, reads the
// input and appends the processor's output and does nothing else (see floorProcess).
//
// Each run consumes one batch before the timer starts, so that the builds are active (the
// processor tracks them) and the heap has grown, whatever b.N is: a build's state is created
// once in its life, not once per batch. Every batch is stamped one second after the previous
// one, as the clock moves, so the alert windows advance as they would with live data.
func BenchmarkProcessor(b *testing.B) {
	const rules = 10
	for _, builds := range []int{100, 10_000} {
		template := benchmarkBatch(builds, t0)
		points := template.DataPointCount()

		run := func(b *testing.B, proc processor.Metrics, clock *fakeClock) {
			ctx := context.Background()
			consume := func(i int) {
				at := t0.Add(time.Duration(i) * time.Second)
				if clock != nil {
					clock.Set(at)
				}
				md := pmetric.NewMetrics()
				template.CopyTo(md)
				if err := proc.ConsumeMetrics(ctx, md); err != nil {
					b.Fatal(err)
				}
			}
			setTimestamps(template, t0)
			consume(0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 1; i <= b.N; i++ {
				b.StopTimer()
				setTimestamps(template, t0.Add(time.Duration(i)*time.Second))
				b.StartTimer()
				consume(i)
			}
			b.ReportMetric(float64(points)*float64(b.N)/b.Elapsed().Seconds(), "datapoints/s")
		}

		b.Run(fmt.Sprintf("PassThrough/builds=%d", builds), func(b *testing.B) {
			set := processortest.NewNopSettings(metadata.Type)
			proc, err := processorhelper.NewMetrics(context.Background(), set, createDefaultConfig(), consumertest.NewNop(),
				func(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) { return md, nil },
				processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}))
			require.NoError(b, err)
			run(b, proc, nil)
		})
		b.Run(fmt.Sprintf("Floor/builds=%d", builds), func(b *testing.B) {
			set := processortest.NewNopSettings(metadata.Type)
			proc, err := processorhelper.NewMetrics(context.Background(), set, createDefaultConfig(), consumertest.NewNop(),
				floorProcess, processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}))
			require.NoError(b, err)
			run(b, proc, nil)
		})
		b.Run(fmt.Sprintf("builds=%d/rules=%d", builds, rules), func(b *testing.B) {
			cfg := createDefaultConfig().(*Config)
			cfg.Rules = benchmarkRules()
			cfg.MaxBuilds = max(cfg.MaxBuilds, builds)
			clock := &fakeClock{now: t0}
			proc, err := newFactory(clock).CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
			require.NoError(b, err)
			run(b, proc, clock)
		})
	}
}

// floorPhases are the phases of the builds of benchmarkBatch.
var floorPhases = [...]string{"INIT", "SETUP", "BUILD", "TEST", "CLEANUP"}

// floorSink keeps the compiler from dropping floorProcess's reads.
var floorSink float64

// floorProcess does what any processor that derives this output from this input must do, and
// nothing else: it reads the value and the phase of every data point of every build, and
// appends to each build the metrics emitBuild appends to a running build without alerts
// (build.phase.progress per phase, build.progress, build.eta, build.paused). It keeps no
// state and computes nothing. Its cost over the pass-through is a lower bound for the
// processor; the processor's cost over it is what the processor's own logic costs.
func floorProcess(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	ts := pcommon.NewTimestampFromTime(t0)
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		if _, isBuild := rm.Resource().Attributes().Get(schema.AttrRunID); !isBuild {
			continue
		}
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				dps, _ := pdatacontract.NumberPoints(ms.At(k))
				for l := 0; l < dps.Len(); l++ {
					dp := dps.At(l)
					floorSink += pdatacontract.Value(dp)
					if phase, ok := dp.Attributes().Get(schema.AttrPhase); ok {
						floorSink += float64(len(phase.Str()))
					}
				}
			}
		}
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName(metadata.ScopeName)
		ms := sm.Metrics()
		ms.EnsureCapacity(4)
		dps := gauge(ms, descPhaseProgress)
		dps.EnsureCapacity(len(floorPhases))
		for _, phase := range floorPhases {
			dp := dps.AppendEmpty()
			dp.SetTimestamp(ts)
			dp.SetDoubleValue(0.5)
			dp.Attributes().PutStr(schema.AttrPhase, phase)
		}
		for _, d := range []metricDesc{descProgress, descETA} {
			dp := gauge(ms, d).AppendEmpty()
			dp.SetTimestamp(ts)
			dp.SetDoubleValue(0.5)
		}
		dp := gauge(ms, descPaused).AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetIntValue(0)
	}
	return md, nil
}

// setTimestamps sets the timestamp of every data point of md to at.
func setTimestamps(md pmetric.Metrics, at time.Time) {
	ts := pcommon.NewTimestampFromTime(at)
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				dps, _ := pdatacontract.NumberPoints(ms.At(k))
				for l := 0; l < dps.Len(); l++ {
					dps.At(l).SetTimestamp(ts)
				}
			}
		}
	}
}

// BenchmarkMemory10kBuilds reports the heap the processor holds per build with 10,000
// active builds, each reported twice: without rules, and with the ten benchmark rules (four
// of them per build) and phase attribution on.
func BenchmarkMemory10kBuilds(b *testing.B) {
	const builds = 10000
	batches := make([]pmetric.Metrics, 0, 2*builds/100)
	for round := range 2 {
		all := benchmarkBatch(builds, t0.Add(time.Duration(round)*time.Second))
		// Split into batches of 100 builds (and their hosts) as a receiver would send them.
		rms := all.ResourceMetrics()
		for start := 0; start < builds; start += 100 {
			md := pmetric.NewMetrics()
			for i := start; i < start+100; i++ {
				rms.At(i).CopyTo(md.ResourceMetrics().AppendEmpty())
			}
			for i := builds + start/10; i < builds+start/10+10; i++ {
				rms.At(i).CopyTo(md.ResourceMetrics().AppendEmpty())
			}
			batches = append(batches, md)
		}
	}
	for _, withRules := range []bool{false, true} {
		name := "rules=0"
		if withRules {
			name = "rules=10,phase_resources"
		}
		b.Run(name, func(b *testing.B) { memoryPerBuild(b, batches, builds, withRules) })
	}
}

func memoryPerBuild(b *testing.B, batches []pmetric.Metrics, builds int, withRules bool) {
	var perBuild float64
	for i := 0; i < b.N; i++ {
		cfg := createDefaultConfig().(*Config)
		if withRules {
			cfg.Rules = benchmarkRules()
			cfg.PhaseResources.Enabled = true
		}
		clock := &fakeClock{now: t0}
		proc, err := newFactory(clock).CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
		require.NoError(b, err)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for j, tmpl := range batches {
			// A fresh copy per batch that the Nop sink drops: only the processor's state stays.
			md := pmetric.NewMetrics()
			tmpl.CopyTo(md)
			clock.Set(t0.Add(time.Duration(j) * 100 * time.Millisecond))
			require.NoError(b, proc.ConsumeMetrics(context.Background(), md))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perBuild = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(builds)
		runtime.KeepAlive(proc)
		require.NoError(b, proc.Shutdown(context.Background()))
	}
	b.ReportMetric(perBuild, "bytes/build")
}
