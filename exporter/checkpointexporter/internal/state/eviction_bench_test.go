package state

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkApplyNewBuildAtMaxBuilds measures a new build arriving while the store holds
// max_builds builds (half finished): each one evicts the oldest finished build and, once the
// tombstones are full, the oldest tombstone.
func BenchmarkApplyNewBuildAtMaxBuilds(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			s, c := newStore(Limits{MaxBuilds: n})
			for i := 0; i < 2*n; i++ {
				c.Advance(time.Millisecond)
				o := BuildObservation{ID: "warm-" + strconv.Itoa(i), State: At(BuildRunning, ts(i))}
				if i%2 == 0 {
					o.State = At(BuildFinished, ts(i))
				}
				s.Apply(Batch{Builds: []BuildObservation{o}})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.Advance(time.Millisecond)
				st := BuildRunning
				if i%2 == 0 {
					st = BuildFinished
				}
				s.Apply(Batch{Builds: []BuildObservation{{ID: "new-" + strconv.Itoa(i), State: At(st, ts(2*n+i))}}})
			}
		})
	}
}

// BenchmarkApplyUpdatesAdvancingClock measures updates of held builds while the exporter's
// clock moves, so that each update moves the build in the eviction order.
func BenchmarkApplyUpdatesAdvancingClock(b *testing.B) {
	const n = 10000
	s, c := newStore(Limits{MaxBuilds: n})
	batch := Batch{Builds: make([]BuildObservation, n)}
	for i := range batch.Builds {
		batch.Builds[i] = BuildObservation{ID: "b" + strconv.Itoa(i), State: At(BuildRunning, ts(0))}
	}
	s.Apply(batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Advance(time.Millisecond)
		o := &batch.Builds[i%n]
		o.Duration = At(float64(i), ts(i+1))
		s.Apply(Batch{Builds: batch.Builds[i%n : i%n+1]})
	}
}
