package state

import (
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// JSON has no NaN or infinity: a state holding one cannot be encoded, and Snapshot says which
// part failed instead of writing a checkpoint that cannot be loaded. Once a finite value
// replaces it, snapshots work again.
func TestSnapshotRefusesValuesJSONCannotHold(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bad   Batch
		fixed Batch
		want  string
	}{
		{
			name:  "build progress NaN",
			bad:   Batch{Builds: []BuildObservation{{ID: "b", Progress: At(math.NaN(), ts(1))}}},
			fixed: Batch{Builds: []BuildObservation{{ID: "b", Progress: At(0.5, ts(2))}}},
			want:  `encoding build "b"`,
		},
		{
			name:  "phase duration infinite",
			bad:   Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{{Name: "P", Duration: At(math.Inf(1), ts(1))}}}}},
			fixed: Batch{Builds: []BuildObservation{{ID: "b", Phases: []PhaseObservation{{Name: "P", Duration: At(3.0, ts(2))}}}}},
			want:  `encoding build "b"`,
		},
		{
			name:  "host CPU NaN",
			bad:   Batch{Hosts: []HostObservation{{Name: "h", CPU: At(math.NaN(), ts(1))}}},
			fixed: Batch{Hosts: []HostObservation{{Name: "h", CPU: At(0.2, ts(2))}}},
			want:  "encoding hosts",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(Limits{})
			s.Apply(tc.bad)
			data, _, err := s.Snapshot()
			require.ErrorContains(t, err, tc.want)
			assert.Nil(t, data)
			assert.True(t, s.Dirty(), "nothing was written")

			s.Apply(tc.fixed)
			data, v, err := s.Snapshot()
			require.NoError(t, err)
			s.MarkWritten(v)
			assert.False(t, s.Dirty())
			s2, _ := newStore(Limits{})
			require.NoError(t, s2.Load(data))
		})
	}
}

// The payload is the documented JSON: format, written_at from the store's clock, builds,
// hosts and tombstones; a build's fields carry the timestamps of the points that set them.
func TestSnapshotPayloadShape(t *testing.T) {
	s, c := newStore(Limits{MaxBuilds: 1})
	s.Apply(Batch{Builds: []BuildObservation{{ID: "gone", State: At(BuildFinished, ts(1))}}})
	s.Apply(Batch{
		Builds: []BuildObservation{{ID: "b", Resource: Resource{Pipeline: "p"}, Progress: At(0.25, ts(2)),
			Phases: []PhaseObservation{{Name: "BUILD", State: At(PhaseRunning, ts(2)), CPUMax: At(0.8, ts(2))}}}},
		Hosts: []HostObservation{{Name: "h", MemUsed: At(int64(512), ts(2))}},
	})
	data, _, err := s.Snapshot()
	require.NoError(t, err)
	var m struct {
		Format     int                        `json:"format"`
		WrittenAt  int64                      `json:"written_at"`
		Builds     []map[string]any           `json:"builds"`
		Hosts      []map[string]any           `json:"hosts"`
		Tombstones map[string]json.RawMessage `json:"tombstones"`
	}
	require.NoError(t, json.Unmarshal(data, &m))
	assert.Equal(t, FormatVersion, m.Format)
	assert.Equal(t, c.Now().UnixNano(), m.WrittenAt)
	require.Len(t, m.Builds, 1)
	assert.Equal(t, "b", m.Builds[0]["id"])
	assert.Equal(t, "p", m.Builds[0]["pipeline"])
	assert.Equal(t, map[string]any{"v": 0.25, "t": float64(ts(2))}, m.Builds[0]["progress"])
	assert.NotContains(t, m.Builds[0], "eta", "fields never set are left out")
	phase := m.Builds[0]["phases"].([]any)[0].(map[string]any)
	assert.Equal(t, map[string]any{"cpu_max": map[string]any{"v": 0.8, "t": float64(ts(2))}}, phase["resources"])
	require.Len(t, m.Hosts, 1)
	assert.Equal(t, map[string]any{"v": float64(512), "t": float64(ts(2))}, m.Hosts[0]["mem_used"])
	assert.Contains(t, m.Tombstones, "gone")
}

// A checkpoint holding a null build with max_builds set loads without it, and the null does
// not count as trimmed.
func TestLoadNullBuildWithMaxBuilds(t *testing.T) {
	payload := payloadWith(t, func(m map[string]any) {
		m["builds"] = append([]any{nil}, append(m["builds"].([]any), nil)...)
		m["hosts"] = append(m["hosts"].([]any), nil)
	})
	s, _ := newStore(Limits{MaxBuilds: 5})
	require.NoError(t, s.Load(payload))
	assert.Zero(t, s.LoadTrimmed())
	assert.Equal(t, 1, s.Len())
	assert.Len(t, s.Hosts(), 1)
}

// The store is safe for concurrent use: writers applying observations and readers taking
// views and snapshots at once (run with -race).
func TestStoreConcurrentUse(t *testing.T) {
	s, _ := newStore(Limits{MaxBuilds: 100})
	const writers, builds = 4, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range builds {
				id := fmt.Sprintf("w%d-b%d", w, i)
				s.Apply(Batch{
					Builds: []BuildObservation{{ID: id, Resource: Resource{Host: fmt.Sprint("h", w)},
						Phases: []PhaseObservation{phaseObs("BUILD", PhaseCompleted, 1, 1, i+1)}}},
					Hosts: []HostObservation{{Name: fmt.Sprint("h", w), CPU: At(0.5, ts(i+1))}},
				})
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range builds {
				_ = s.Builds(BuildFilter{})
				_ = s.Hosts()
				for _, j := range s.DueReports() {
					s.ReportWritten(j, 1)
				}
				if _, v, err := s.Snapshot(); err == nil {
					s.MarkWritten(v)
				}
				s.Expire()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, writers*builds, s.Len())
	assert.Len(t, s.Hosts(), writers)
	data, _, err := s.Snapshot()
	require.NoError(t, err)
	s2, _ := newStore(Limits{MaxBuilds: 100})
	require.NoError(t, s2.Load(data))
	assert.Equal(t, writers*builds, s2.Len())
}
