package buildmonreceiver

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"

	bmetadata "github.com/buildmon/buildmon/internal/metadata"
	"github.com/buildmon/buildmon/internal/schema"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/metadata"
)

func newTestEmitter(t *testing.T) *emitter {
	t.Helper()
	return newEmitter(bmetadata.NewDefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type))
}

// doublePoints returns a build metric's double points of one build, by build.phase ("" for a
// build-level point).
func doublePoints(md pmetric.Metrics, buildID, name string) map[string]float64 {
	out := map[string]float64{}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		if id, _ := rms.At(i).Resource().Attributes().Get(schema.AttrRunID); id.Str() != buildID {
			continue
		}
		ms := rms.At(i).ScopeMetrics().At(0).Metrics()
		for k := 0; k < ms.Len(); k++ {
			if ms.At(k).Name() != name {
				continue
			}
			dps := ms.At(k).Gauge().DataPoints()
			for d := 0; d < dps.Len(); d++ {
				ph, _ := dps.At(d).Attributes().Get(schema.AttrPhase)
				out[ph.Str()] = dps.At(d).DoubleValue()
			}
		}
	}
	return out
}

func TestUnixSeconds(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		want float64
	}{
		{"epoch", time.Unix(0, 0), 0},
		{"whole seconds", time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC), 1795867200},
		{"half a second", time.Date(2026, 11, 28, 12, 0, 0, 500_000_000, time.UTC), 1795867200.5},
		{"another zone, same instant", time.Date(2026, 11, 28, 13, 0, 0, 0, time.FixedZone("CET", 3600)), 1795867200},
		{"before the epoch", time.Unix(-10, 250_000_000), -9.75},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, unixSeconds(tt.t))
		})
	}
}

// A millisecond survives the conversion: a float64 holds today's Unix seconds to about a
// microsecond.
func TestUnixSecondsKeepsMilliseconds(t *testing.T) {
	at := time.Date(2026, 11, 28, 12, 0, 0, 123_000_000, time.UTC)
	assert.InDelta(t, 0.123, unixSeconds(at)-1795867200, 1e-6)
}

// build.start_time and build.phase.start_time carry the receiver's record of when the build
// and each phase started; a pending phase has no point, a skipped or failed-from-pending phase
// has the time it ended (which is when it "started").
func TestEmitterStartTimes(t *testing.T) {
	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	b := events.Build{
		ID: "b-1", Pipeline: "web", Host: "h", Started: start, Updated: at(9),
		Phases: []events.Phase{
			{Name: "INIT", State: events.PhaseCompleted, Left: events.PhaseRunning, Start: at(1), End: at(2)},
			{Name: "SETUP", State: events.PhaseSkipped, Left: events.PhasePending, Start: at(3), End: at(3)},
			{Name: "BUILD", State: events.PhaseRunning, Left: events.PhasePending, Start: at(4.25)},
			{Name: "TEST", State: events.PhaseFailed, Left: events.PhasePending, Start: at(5), End: at(5)},
			{Name: "CLEANUP", State: events.PhasePending},
		},
	}
	md := newTestEmitter(t).metrics([]events.Change{{Build: b}}, at(10))
	base := unixSeconds(start)
	assert.Equal(t, map[string]float64{"": base}, doublePoints(md, "b-1", schema.MetricBuildStartTime))
	assert.Equal(t, map[string]float64{
		"INIT":  base + 1,
		"SETUP": base + 3,
		"BUILD": base + 4.25,
		"TEST":  base + 5,
	}, doublePoints(md, "b-1", schema.MetricPhaseStartTime), "CLEANUP is pending: no point")
}

// The start times are emitted with every emission of a build, finished or not, like
// build.duration; a removed build emits nothing.
func TestEmitterStartTimesEveryEmission(t *testing.T) {
	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	running := events.Build{ID: "run", Pipeline: "p", Host: "h", Started: start, Updated: start,
		Phases: []events.Phase{{Name: "BUILD", State: events.PhaseRunning, Start: start.Add(time.Second)}}}
	finished := running
	finished.ID = "done"
	finished.Finished, finished.Result = start.Add(time.Minute), "success"
	e := newTestEmitter(t)
	for range 2 {
		md := e.metrics([]events.Change{{Build: running}, {Build: finished}, {Build: events.Build{ID: "gone"}, Removed: true}}, start.Add(2*time.Minute))
		require.Equal(t, 2, md.ResourceMetrics().Len())
		for _, id := range []string{"run", "done"} {
			assert.Equal(t, map[string]float64{"": unixSeconds(start)}, doublePoints(md, id, schema.MetricBuildStartTime), id)
			assert.Equal(t, map[string]float64{"BUILD": unixSeconds(start) + 1}, doublePoints(md, id, schema.MetricPhaseStartTime), id)
		}
		assert.Empty(t, doublePoints(md, "gone", schema.MetricBuildStartTime))
	}
}

// promSeries checks emissions by the rule of a Prometheus TSDB (and so of its remote write
// receiver, which refuses a whole request over one sample): per series, a sample's time is not
// before the series' last one, and a sample at the same time has the same value.
type promSeries map[string]promSample

type promSample struct {
	ts uint64
	v  float64
}

func (s promSeries) accept(t *testing.T, md pmetric.Metrics, emission string) {
	t.Helper()
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		id, _ := rms.At(i).Resource().Attributes().Get(schema.AttrRunID)
		ms := rms.At(i).ScopeMetrics().At(0).Metrics()
		for k := 0; k < ms.Len(); k++ {
			dps := ms.At(k).Gauge().DataPoints()
			for d := 0; d < dps.Len(); d++ {
				dp := dps.At(d)
				key := id.Str() + " " + ms.At(k).Name() + " " + fmtAttrs(dp.Attributes().AsRaw())
				v := dp.DoubleValue()
				if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
					v = float64(dp.IntValue())
				}
				ts := uint64(dp.Timestamp()) / uint64(time.Millisecond) // Prometheus keeps milliseconds
				if last, ok := s[key]; ok {
					if ts < last.ts {
						t.Errorf("%s: %s goes back in time (%d after %d)", emission, key, ts, last.ts)
					}
					if ts == last.ts && v != last.v {
						t.Errorf("%s: %s has a second value %v at time %d (was %v): a duplicate sample", emission, key, v, ts, last.v)
					}
				}
				s[key] = promSample{ts, v}
			}
		}
	}
}

func fmtAttrs(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%v,", k, m[k])
	}
	return b.String()
}

// Re-emissions of a running build (every report_interval) and the emission of its finish,
// whose client time is before the last re-emission, are all samples a Prometheus accepts:
// the durations measured to now used to be sent at the newest event's time with a new value
// each time, and Prometheus remote write refused every request that carried one.
func TestEmitterReemissionsArePrometheusSamples(t *testing.T) {
	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	b := events.Build{ID: "b-1", Pipeline: "p", Host: "h", Started: start, Updated: at(1),
		Phases: []events.Phase{{Name: "BUILD", State: events.PhaseRunning, Left: events.PhasePending, Start: at(1)}}}
	e := newTestEmitter(t)
	seen := promSeries{}
	for _, now := range []float64{1.5, 2.5, 3.5, 4.5, 4.5002} { // the last two within a millisecond
		md := e.metrics([]events.Change{{Build: b}}, at(now))
		seen.accept(t, md, fmt.Sprintf("re-emission at %vs", now))
		assert.InDelta(t, now, doublePoints(md, "b-1", schema.MetricBuildDuration)[""], 1e-3)
		assert.InDelta(t, now-1, doublePoints(md, "b-1", schema.MetricPhaseDuration)["BUILD"], 1e-3)
	}
	// The client's build_finished says 4 s: before the last re-emission at 4.5 s.
	b.Phases[0].State, b.Phases[0].Left, b.Phases[0].End = events.PhaseCompleted, events.PhaseRunning, at(4)
	b.Finished, b.Result, b.Updated = at(4), "success", at(4)
	for _, now := range []float64{4.6, 5.6} {
		md := e.metrics([]events.Change{{Build: b}}, at(now))
		seen.accept(t, md, fmt.Sprintf("finished, emitted at %vs", now))
		assert.InDelta(t, 4, doublePoints(md, "b-1", schema.MetricBuildDuration)[""], 1e-9, "final duration")
	}
	// A build whose events carry times ahead of the receiver's clock keeps their time.
	ahead := b
	ahead.ID, ahead.Updated = "ahead", at(100)
	md := e.metrics([]events.Change{{Build: ahead}}, at(6))
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for k := 0; k < ms.Len(); k++ {
		assert.Equal(t, at(100).UnixNano(), int64(ms.At(k).Gauge().DataPoints().At(0).Timestamp()), ms.At(k).Name())
	}
}
