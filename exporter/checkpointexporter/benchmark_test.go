package checkpointexporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/checkpoint"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/encryption"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
)

// benchBatch is one report of n running builds with five phases each, at second s, as the
// receiver emits them every report interval.
func benchBatch(n, s int) state.Batch {
	at := t0.Add(time.Duration(s) * time.Second).UnixNano()
	batch := state.Batch{Builds: make([]state.BuildObservation, n)}
	names := []string{"INIT", "SETUP", "BUILD", "TEST", "CLEANUP"}
	for i := range batch.Builds {
		phases := make([]state.PhaseObservation, len(names))
		for j, name := range names {
			st := state.PhasePending
			switch {
			case j < 2:
				st = state.PhaseCompleted
			case j == 2:
				st = state.PhaseRunning
			}
			phases[j] = state.PhaseObservation{
				Name: name, State: state.At(st, at), StepsTotal: state.At(int64(100), at),
				StepsCompleted: state.At(int64(s%100), at), Duration: state.At(float64(s), at), Progress: state.At(0.5, at),
			}
		}
		batch.Builds[i] = state.BuildObservation{
			ID:       fmt.Sprintf("build-%06d", i),
			Resource: state.Resource{Pipeline: fmt.Sprintf("pipeline-%d", i%50), Host: fmt.Sprintf("host-%d", i%200)},
			State:    state.At(state.BuildRunning, at), Duration: state.At(float64(s), at),
			Progress: state.At(0.3, at), ETA: state.At(120.0, at), Paused: state.At(false, at),
			Phases: phases, AlertsComplete: true, AlertsAt: at,
		}
	}
	return batch
}

// BenchmarkCheckpoint measures one checkpoint (snapshot, gzip, checksum, temp file, fsync,
// rename, directory fsync) of a state in which every build changed since the previous
// checkpoint, the worst case, as when every build reports every interval.
func BenchmarkCheckpoint(b *testing.B) {
	for _, n := range []int{100, 10000} {
		for _, encrypted := range []bool{false, true} {
			name := fmt.Sprintf("builds=%d", n)
			if encrypted {
				name += "/encrypted"
			}
			b.Run(name, func(b *testing.B) {
				fc := clock.NewFake(t0)
				store := state.New(fc, state.Limits{MaxBuilds: 2 * n}, plainNamer{})
				codec := checkpoint.Codec{}
				if encrypted {
					codec.Keyring = benchKeyring(b)
				}
				gens := &checkpoint.Generations{Dir: b.TempDir(), FS: checkpoint.OS{}, Codec: codec, Keep: 3}
				batches := []state.Batch{benchBatch(n, 1), benchBatch(n, 2)}
				var bytes, lockNs int64
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					store.Apply(batches[i%2])
					b.StartTimer()
					start := time.Now()
					payload, version, err := store.Snapshot()
					lockNs += time.Since(start).Nanoseconds()
					if err != nil {
						b.Fatal(err)
					}
					written, err := gens.Write(payload)
					if err != nil {
						b.Fatal(err)
					}
					store.MarkWritten(version)
					bytes += int64(written)
				}
				b.ReportMetric(float64(bytes)/float64(b.N), "bytes/checkpoint")
				b.ReportMetric(float64(lockNs)/float64(b.N), "snapshot-ns/op")
			})
		}
	}
}

// BenchmarkConsume measures the consume path: reducing one report of every build.
func BenchmarkConsume(b *testing.B) {
	const n = 1000
	store := state.New(clock.NewFake(t0), state.Limits{MaxBuilds: 2 * n}, plainNamer{})
	batches := []state.Batch{benchBatch(n, 1), benchBatch(n, 2)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		store.Apply(batches[i%2])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/build")
}

func benchKeyring(b *testing.B) *encryption.Keyring {
	b.Helper()
	k, err := encryption.NewKey(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	return encryption.NewKeyring(k)
}

// consumeBatch is one report interval of a fleet's gateway: n running builds (five phases,
// the third running) on hosts hosts, and one hostmetrics scrape (two CPUs, two disks, two
// interfaces) of every host, at second s.
func consumeBatch(n, hosts, s int) pmetric.Metrics {
	at := t0.Add(time.Duration(s) * time.Second)
	md := pmetric.NewMetrics()
	for i := range n {
		b := buildSpec{id: fmt.Sprintf("build-%06d", i), pipeline: fmt.Sprintf("pipeline-%d", i%50), host: fmt.Sprintf("host-%d", i%hosts),
			at: at, duration: float64(s), processed: true, progress: 0.3, eta: 120}
		for j, name := range []string{"INIT", "SETUP", "BUILD", "TEST", "CLEANUP"} {
			// Ended phases keep their final figures, so that their reports are not due again.
			ph := phaseSpec{name: name, state: "pending", total: 100}
			switch {
			case j < 2:
				ph.state, ph.completed, ph.duration, ph.progress = "completed", 100, 10, 1
			case j == 2:
				ph.state, ph.completed, ph.duration, ph.progress = "running", int64(s%100), float64(s), 0.5
			}
			b.phases = append(b.phases, ph)
		}
		b.metrics().ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
	}
	for i := range hosts {
		k := int64(s)
		hostmetricsScrape{name: fmt.Sprintf("host-%d", i), at: at, cpuBusy: float64(k), cpuIdle: float64(k),
			memUsed: 3 << 30, memFree: 1 << 30,
			hostCounters: hostCounters{diskRead: 1000 * k, diskWrite: 2000 * k, opsRead: 10 * k, opsWrite: 20 * k, netTx: 500 * k, netRx: 700 * k},
		}.appendTo(md)
	}
	return md
}

// BenchmarkConsumeMetrics measures the exporter's per-batch cost through its factory:
// translating and reducing one report interval of 200 running builds on 50 hosts, each host
// a hostmetrics scrape, with timestamps that advance every batch.
func BenchmarkConsumeMetrics(b *testing.B) {
	const n, hosts, batches = 200, 50, 64
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Directory = b.TempDir()
	cfg.Status.NetAddr.Endpoint = ""
	exp, err := f.CreateMetrics(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	mds := make([]pmetric.Metrics, batches)
	for i := range mds {
		mds[i] = consumeBatch(n, hosts, i+1)
	}
	// Later rounds shift every timestamp past the previous round's, so that counters advance.
	shift := func(md pmetric.Metrics, d time.Duration) {
		rms := md.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			sms := rms.At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					var dps pmetric.NumberDataPointSlice
					switch m := ms.At(k); m.Type() {
					case pmetric.MetricTypeGauge:
						dps = m.Gauge().DataPoints()
					case pmetric.MetricTypeSum:
						dps = m.Sum().DataPoints()
					default:
						continue
					}
					for l := 0; l < dps.Len(); l++ {
						dps.At(l).SetTimestamp(dps.At(l).Timestamp() + pcommon.Timestamp(d))
					}
				}
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 && i%batches == 0 {
			b.StopTimer()
			for _, md := range mds {
				shift(md, batches*time.Second)
			}
			b.StartTimer()
		}
		if err := exp.ConsumeMetrics(context.Background(), mds[i%batches]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/build")
}
