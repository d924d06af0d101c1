package state

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scanVictim is the eviction rule as a scan of every build (what makeRoomForBuild did before
// the queue): the reference the queue must agree with.
func scanVictim(s *Store) *Build {
	var victim *Build
	for _, b := range s.builds {
		if victim == nil || evictBefore(b, victim) {
			victim = b
		}
	}
	return victim
}

// scanOldestTombstone is the tombstone rule as a scan.
func scanOldestTombstone(s *Store) string {
	oldest, at := "", int64(0)
	for id, t := range s.tombstones {
		if oldest == "" || t.RemovedAt < at || (t.RemovedAt == at && id < oldest) {
			oldest, at = id, t.RemovedAt
		}
	}
	return oldest
}

// Under a random mix of new builds, updates, finishes and expiries, every eviction takes the
// build the scan would take, and every tombstone dropped is the one the scan would drop.
func TestEvictionOrderMatchesScan(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		t.Run("seed "+strconv.FormatUint(seed, 10), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0))
			const maxBuilds = 40
			s, c := newStore(Limits{MaxBuilds: maxBuilds, FinishedRetention: 30 * time.Second})
			ids := []string{}
			evictions, tombDrops := 0, 0
			for step := 0; step < 3000; step++ {
				switch rng.IntN(8) {
				case 0, 1:
					c.Advance(time.Duration(rng.IntN(3)) * time.Second) // equal times happen too
				case 2:
					c.Advance(-time.Second) // a wall clock that went back
				}
				at := int(c.Now().Sub(t0)/time.Second) + 1
				switch op := rng.IntN(10); {
				case op < 5 || len(ids) == 0: // a new build
					id := "b" + strconv.Itoa(len(ids))
					full := s.Len() >= maxBuilds
					_, held := s.builds[id]
					var want *Build
					if full && !held {
						want = scanVictim(s)
					}
					tombsFull := len(s.tombstones) >= maxBuilds
					wantTomb := ""
					if want != nil && tombsFull {
						// The victim's tombstone goes in first; then the oldest goes.
						saved := s.tombstones[want.ID]
						s.tombstones[want.ID] = tombstone{RemovedAt: c.Now().UnixNano()}
						wantTomb = scanOldestTombstone(s)
						if saved.RemovedAt != 0 {
							s.tombstones[want.ID] = saved
						} else {
							delete(s.tombstones, want.ID)
						}
					}
					tombsBefore := clonedKeys(s.tombstones)
					obs := BuildObservation{ID: id, State: At(BuildRunning, ts(at+step))}
					if rng.IntN(2) == 0 {
						obs.State = At(BuildFinished, ts(at+step))
					}
					res := s.Apply(Batch{Builds: []BuildObservation{obs}})
					if want != nil {
						require.Equal(t, 1, res.Evicted)
						_, still := s.builds[want.ID]
						require.False(t, still, "step %d: the scan's victim %s was evicted", step, want.ID)
						evictions++
					}
					if wantTomb != "" {
						_, kept := s.tombstones[wantTomb]
						require.False(t, kept && tombsBefore[wantTomb], "step %d: the oldest tombstone %s was dropped", step, wantTomb)
						tombDrops++
					}
					ids = append(ids, id)
				case op < 8: // an update of a held build changes its key
					id := ids[rng.IntN(len(ids))]
					s.Apply(Batch{Builds: []BuildObservation{{ID: id, Duration: At(float64(step), ts(at+step))}}})
				case op < 9: // a running build finishes
					id := ids[rng.IntN(len(ids))]
					s.Apply(Batch{Builds: []BuildObservation{{ID: id, State: At(BuildFinished, ts(at+step))}}})
				default: // retention removes old finished builds and tombstones
					s.Expire()
				}
				require.Len(t, s.evict, len(s.builds), "the queue holds every build")
				require.LessOrEqual(t, len(s.tombstones), maxBuilds)
			}
			assert.Positive(t, evictions)
			assert.Positive(t, tombDrops)
		})
	}
}

func clonedKeys(m map[string]tombstone) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// The queues are rebuilt from a loaded checkpoint: eviction after a restore takes the same
// build as before it.
func TestEvictionQueueAfterLoad(t *testing.T) {
	s, c := newStore(Limits{MaxBuilds: 3})
	for i, st := range []string{BuildRunning, BuildFinished, BuildRunning} {
		c.Advance(time.Second)
		s.Apply(Batch{Builds: []BuildObservation{{ID: "b" + strconv.Itoa(i), State: At(st, ts(i))}}})
	}
	data, _, err := s.Snapshot()
	require.NoError(t, err)
	s2, c2 := newStore(Limits{MaxBuilds: 3})
	c2.Advance(time.Hour) // after the restart
	require.NoError(t, s2.Load(data))
	require.Len(t, s2.evict, 3)
	assert.Equal(t, "b1", s2.evict[0].ID, "the finished build goes first")
	res := s2.Apply(Batch{Builds: []BuildObservation{{ID: "new", State: At(BuildRunning, ts(9))}}})
	assert.Equal(t, 1, res.Evicted)
	_, ok := s2.BuildCopy("b1")
	assert.False(t, ok)
	// Then the least recently changed running build.
	s2.Apply(Batch{Builds: []BuildObservation{{ID: "new2", State: At(BuildRunning, ts(10))}}})
	_, ok = s2.BuildCopy("b0")
	assert.False(t, ok)
	_, ok = s2.BuildCopy("b2")
	assert.True(t, ok)
}
