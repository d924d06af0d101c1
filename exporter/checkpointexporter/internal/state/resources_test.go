package state

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/internal/phaseusage"
)

// reading is a host observation with a sample and the host's totals after it.
func reading(host string, seq uint64, at int, cpu float64, disk int64) HostObservation {
	return HostObservation{Name: host, CPU: At(cpu, ts(at)), MemUsed: At(int64(seq), ts(at)),
		Usage: HostUsage{Totals: phaseusage.Totals{Disk: [2]int64{disk, disk}}, Kinds: phaseusage.Kinds{Disk: true}, Seq: seq}}
}

func build(id, host string, at int, finished bool, phases ...PhaseObservation) BuildObservation {
	o := BuildObservation{ID: id, Resource: Resource{Pipeline: "p", Host: host}, State: At(BuildRunning, ts(at)), Phases: phases}
	if finished {
		o.State = At(BuildFinished, ts(at))
	}
	return o
}

// TestUsageEndsWithTheBuild: a phase that ends in the same observation as its build is
// attributed (the accumulators go only after the phases were applied).
func TestUsageEndsWithTheBuild(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Hosts: []HostObservation{reading("h", 1, 0, 0.1, 100)}})
	s.Apply(Batch{Builds: []BuildObservation{build("b", "h", 1, false, phaseObs("BUILD", PhaseRunning, 0, 1, 1))}})
	s.Apply(Batch{Hosts: []HostObservation{reading("h", 2, 5, 0.3, 400)}})
	s.Apply(Batch{Builds: []BuildObservation{build("b", "h", 9, true, phaseObs("BUILD", PhaseCompleted, 1, 1, 9))}})
	p := s.builds["b"].Phases[0]
	assert.Nil(t, p.usage)
	assert.Equal(t, Stamped[int64]{V: 300, T: ts(9)}, p.HostUsage.DiskWrite)
	assert.Equal(t, Stamped[float64]{V: 0.3, T: ts(9)}, p.HostUsage.CPUAvg)
	assert.False(t, p.HostUsage.NetTransmit.Set(), "the host sent no network counters")
}

// TestUsageOutOfOrderReadings: a reading older than the host's newest (batches consumed
// concurrently) adds its sample but does not move the host's totals back.
func TestUsageOutOfOrderReadings(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Hosts: []HostObservation{reading("h", 1, 0, 0.1, 100)}})
	s.Apply(Batch{Builds: []BuildObservation{build("b", "h", 1, false, phaseObs("BUILD", PhaseRunning, 0, 1, 1))}})
	s.Apply(Batch{Hosts: []HostObservation{reading("h", 3, 6, 0.5, 900)}})
	s.Apply(Batch{Hosts: []HostObservation{reading("h", 2, 5, 0.3, 400)}})
	s.Apply(Batch{Builds: []BuildObservation{build("b", "h", 9, false, phaseObs("BUILD", PhaseCompleted, 1, 1, 9))}})
	hu := s.builds["b"].Phases[0].HostUsage
	assert.Equal(t, int64(800), hu.DiskRead.V)
	assert.InDelta(t, 0.4, hu.CPUAvg.V, 1e-9)
	assert.Equal(t, 0.5, hu.CPUMax.V)
}

// TestUsageStopsWhenTheBuildMoves: a build whose host changes drops what it accumulated on
// the old host; its running phase starts again with the new host's next reading.
func TestUsageStopsWhenTheBuildMoves(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Hosts: []HostObservation{reading("h1", 1, 0, 0.9, 1<<40), reading("h2", 2, 0, 0.1, 10)}})
	s.Apply(Batch{Builds: []BuildObservation{build("b", "h1", 1, false, phaseObs("BUILD", PhaseRunning, 0, 1, 1))}})
	s.Apply(Batch{Builds: []BuildObservation{build("b", "h2", 2, false, phaseObs("BUILD", PhaseRunning, 0, 1, 2))}})
	assert.Nil(t, s.builds["b"].Phases[0].usage)
	s.Apply(Batch{Hosts: []HostObservation{reading("h2", 3, 3, 0.2, 50)}})
	s.Apply(Batch{Hosts: []HostObservation{reading("h2", 4, 4, 0.4, 80)}})
	s.Apply(Batch{Builds: []BuildObservation{build("b", "h2", 5, false, phaseObs("BUILD", PhaseCompleted, 1, 1, 5))}})
	hu := s.builds["b"].Phases[0].HostUsage
	assert.Equal(t, int64(30), hu.DiskRead.V, "from h2's first reading after the move")
	assert.InDelta(t, 0.3, hu.CPUAvg.V, 1e-9)
}

// TestPayloadPerBuildWithBothResources: a finished build of five phases, each with the
// processor's and the exporter's figures, every field set, and a report recorded, stays
// within the checkpoint budget per build.
func TestPayloadPerBuildWithBothResources(t *testing.T) {
	full := PhaseResources{
		CPUAvg: Stamped[float64]{V: 0.123456789, T: ts(1)}, CPUMax: Stamped[float64]{V: 0.987654321, T: ts(1)},
		MemoryMax: Stamped[int64]{V: 1 << 40, T: ts(1)}, DiskRead: Stamped[int64]{V: 1 << 40, T: ts(1)},
		DiskWrite: Stamped[int64]{V: 1 << 40, T: ts(1)}, NetTransmit: Stamped[int64]{V: 1 << 40, T: ts(1)},
		NetReceive: Stamped[int64]{V: 1 << 40, T: ts(1)}, DiskOpsRead: Stamped[int64]{V: 1 << 30, T: ts(1)},
		DiskOpsWrite: Stamped[int64]{V: 1 << 30, T: ts(1)},
	}
	b := &Build{ID: "build-000001", Resource: Resource{Pipeline: "pipeline", Host: "host-1"}, State: Stamped[string]{V: BuildFinished, T: ts(1)},
		Report: ReportMark{Version: 1, Written: 1, File: "build.json", Bytes: 4000}, ReportDir: "build-000001"}
	for _, name := range []string{"INIT", "SETUP", "BUILD", "TEST", "CLEANUP"} {
		b.Phases = append(b.Phases, &Phase{Name: name, State: Stamped[string]{V: PhaseCompleted, T: ts(1)},
			StepsTotal: Stamped[int64]{V: 100, T: ts(1)}, StepsCompleted: Stamped[int64]{V: 100, T: ts(1)},
			Duration: Stamped[float64]{V: 123.456, T: ts(1)}, Progress: Stamped[float64]{V: 1, T: ts(1)},
			Start: Stamped[float64]{V: 1740830400.123, T: ts(1)}, EndedAt: ts(1),
			Resources: full, HostUsage: full, Report: ReportMark{Version: 1, Written: 1, File: fmt.Sprintf("phase-%s.json", name), Bytes: 1500}})
	}
	data, err := json.Marshal(b)
	require.NoError(t, err)
	assert.Less(t, len(data), payloadPerBuild, "%d bytes", len(data))
	t.Logf("%d bytes", len(data))
}
