package checkpointexporter

import (
	"fmt"
	"testing"
	"time"

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
