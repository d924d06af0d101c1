package buildprogressprocessor

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/buildmon/buildmon/internal/schema"
	"github.com/buildmon/buildmon/processor/buildprogressprocessor/internal/metadata"
)

// hostWithExtensions is a component.Host that offers the given extensions.
type hostWithExtensions struct {
	component.Host
	ext map[component.ID]component.Component
}

func (h hostWithExtensions) GetExtensions() map[component.ID]component.Component { return h.ext }

// startFileStorage starts the contrib file_storage extension on dir.
func startFileStorage(t testing.TB, dir string) (component.ID, component.Component) {
	t.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	return component.NewID(f.Type()), ext
}

// startWithStorage starts a processor by the public factory with the ETA history in
// file_storage on dir, with its clock at start; stop shuts the processor and the extension
// down (a collector restart).
func startWithStorage(t testing.TB, dir string, start time.Time) (h *harness, stop func()) {
	t.Helper()
	id, ext := startFileStorage(t, dir)
	cfg := createDefaultConfig().(*Config)
	cfg.Storage = &id
	clock := &fakeClock{now: start}
	sink := new(consumertest.MetricsSink)
	proc, err := newFactory(clock).CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), hostWithExtensions{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{id: ext}}))
	return &harness{t: t, clock: clock, proc: proc, sink: sink}, func() {
		require.NoError(t, proc.Shutdown(context.Background()))
		require.NoError(t, ext.Shutdown(context.Background()))
	}
}

// The history survives a restart: 5 runs before it, the collector (processor and storage)
// shut down, and the first run of a new processor on the same storage estimates from history
// at once, within the harness bounds, for both shapes.
func TestETAHistorySurvivesRestart(t *testing.T) {
	for _, shape := range []simShape{shapeFine, shapeCoarse} {
		t.Run(shape.name, func(t *testing.T) {
			dir := t.TempDir()
			h, stop := startWithStorage(t, dir, t0)
			rng := rand.New(rand.NewPCG(7, 0x5eed))
			at := t0
			for i := range defaultSim.historyRuns {
				_, end := replay(t, h, shape.name+"-before-"+string(rune('a'+i)), shape, genRun(rng, defaultSim), defaultSim, at)
				at = end.Add(time.Minute)
			}
			stop()

			h, stop = startWithStorage(t, dir, at)
			defer stop()
			// The first batch of the first run after the restart already uses history.
			first := batch([]buildIn{{id: "after", pipeline: "sim", host: "h1", at: at, phases: []phaseIn{
				{name: "INIT", state: "running", total: int64(shape.steps)}, {name: "SETUP", state: "pending", total: int64(shape.steps)},
				{name: "BUILD", state: "pending", total: int64(shape.steps)}, {name: "TEST", state: "pending", total: int64(shape.steps)},
				{name: "CLEANUP", state: "pending", total: int64(shape.steps)}}}})
			eta, src, ok := etaOf(derived(t, h.consume(at, first), schema.AttrRunID, "after"))
			require.True(t, ok, "an ETA before any progress: from the restored history")
			assert.Equal(t, "history", src)
			assert.InDelta(t, defaultSim.base.Seconds(), eta, 0.25*defaultSim.base.Seconds())

			errs, _ := replay(t, h, "after", shape, genRun(rng, defaultSim), defaultSim, at.Add(time.Second))
			t.Logf("first run after the restart: error %.1f%% at 50%% (%s), %.1f%% at 90%% (%s)", 100*errs.at50, errs.source50, 100*errs.at90, errs.source90)
			assert.NotEqual(t, "rate", errs.source50)
			assert.LessOrEqual(t, math.Abs(errs.at50), 0.25)
			assert.LessOrEqual(t, math.Abs(errs.at90), 0.10)
		})
	}
}

// A processor without the storage it names fails to start, with the name in the error.
func TestETAStorageMissing(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	id := component.MustNewIDWithName("file_storage", "nope")
	cfg.Storage = &id
	proc, err := NewFactory().CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = proc.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "file_storage/nope is not configured")
	require.NoError(t, proc.Shutdown(context.Background()))
}

// coarseRun is a one-step-per-phase build of the pipeline "p" at the moment now: phases
// before cur completed (each took took[i] seconds), cur running for runFor seconds.
func coarseRun(id string, now time.Time, took []float64, cur int, runFor float64) buildIn {
	names := []string{"INIT", "SETUP", "BUILD", "TEST", "CLEANUP"}
	b := buildIn{id: id, pipeline: "p", host: "h1", at: now}
	for i, n := range names {
		ph := phaseIn{name: n, total: 1, state: "pending"}
		switch {
		case i < cur:
			ph.state, ph.done, ph.duration = "completed", 1, took[i]
			b.duration += took[i]
		case i == cur:
			ph.state, ph.duration = "running", runFor
			b.duration += runFor
		}
		b.phases = append(b.phases, ph)
	}
	return b
}

// recordRuns sends n successful one-step-per-phase runs of pipeline "p" whose phases take
// took seconds each.
func recordRuns(t *testing.T, h *harness, n int, took []float64) time.Time {
	at := h.clock.Now()
	for i := range n {
		id := fmt.Sprintf("hist-%d-%d", at.Unix(), i)
		// A report at each phase start (the processor forgets builds silent for expiry).
		start := at
		for cur := range took {
			h.consume(at, batch([]buildIn{coarseRun(id, at, took, cur, 0)}))
			at = at.Add(time.Duration(took[cur]) * time.Second)
		}
		at = start
		fin := coarseRun(id, at, took, len(took), 0)
		fin.finished, fin.result = true, "success"
		at = at.Add(time.Duration(fin.duration) * time.Second)
		fin.at = at
		h.consume(at, batch([]buildIn{fin}))
		at = at.Add(time.Minute)
	}
	return at
}

// Worked example of the README: history INIT 30 s, SETUP 220 s, BUILD 550 s, TEST 150 s,
// CLEANUP 50 s; BUILD (one step) has run 275 s after INIT and SETUP took as expected.
func TestTimeProgressInsideACoarsePhase(t *testing.T) {
	took := []float64{30, 220, 550, 150, 50}
	h := newHarness(t, createDefaultConfig().(*Config))
	at := recordRuns(t, h, 5, took)

	var last float64
	for _, runFor := range []float64{0, 137.5, 275, 412.5, 550, 700, 1000} {
		now := at.Add(time.Duration(250+runFor) * time.Second)
		d := derived(t, h.consume(now, batch([]buildIn{coarseRun("now", now, took, 2, runFor)})), schema.AttrRunID, "now")
		p := d[schema.MetricBuildProgress].At(0).DoubleValue()
		bp, _ := pointValue(t, d[schema.MetricPhaseProgress], schema.AttrPhase, "BUILD")
		eta, src, _ := etaOf(d)
		assert.Equal(t, "history", src)
		assert.GreaterOrEqual(t, p, last, "monotonic")
		last = p
		share := min(runFor/550, 0.95)
		assert.InDelta(t, share, bp, 1e-9, "BUILD at %gs", runFor)
		assert.InDelta(t, 0.05+0.15+0.40*share, p, 1e-9, "the configured weights still define progress")
		assert.InDelta(t, max(550-runFor, 0.05*550)+150+50, eta, 1e-6, "BUILD at %gs", runFor)
	}
	// Half way through BUILD: 0.05 + 0.15 + 0.4 × 0.5 = 40 %, ETA 275 + 150 + 50 = 475 s.
	// Once BUILD completes, progress jumps to 60 % and TEST starts at 0.
	now := at.Add(1300 * time.Second)
	d := derived(t, h.consume(now, batch([]buildIn{coarseRun("now", now, []float64{30, 220, 1050}, 3, 0)})), schema.AttrRunID, "now")
	assert.InDelta(t, 0.6, d[schema.MetricBuildProgress].At(0).DoubleValue(), 1e-9)
	eta, _, _ := etaOf(d)
	// BUILD took 1050 s against 550: raw ratio 1300/800 = 1.625, scale half-way 1.3125.
	assert.InDelta(t, (150+50)*1.3125, eta, 1e-6)
}

// Scale: phases that ran slower than their history make the rest of the run expected slower,
// by half the ratio.
func TestETAScalesWithThisRunsPhases(t *testing.T) {
	took := []float64{30, 220, 550, 150, 50}
	h := newHarness(t, createDefaultConfig().(*Config))
	at := recordRuns(t, h, 3, took)
	// INIT and SETUP took twice as long: raw 2, scale 1.5.
	d := derived(t, h.consume(at, batch([]buildIn{coarseRun("slow", at, []float64{60, 440}, 2, 0)})), schema.AttrRunID, "slow")
	eta, _, _ := etaOf(d)
	assert.InDelta(t, (550+150+50)*1.5, eta, 1e-6)
}

// Without time_progress, the coarse phase's progress stays at 0 until it completes, but the
// ETA still comes from history.
func TestTimeProgressOff(t *testing.T) {
	took := []float64{30, 220, 550, 150, 50}
	cfg := createDefaultConfig().(*Config)
	cfg.ETA.TimeProgress = false
	h := newHarness(t, cfg)
	at := recordRuns(t, h, 2, took)
	d := derived(t, h.consume(at, batch([]buildIn{coarseRun("now", at, took, 2, 275)})), schema.AttrRunID, "now")
	assert.InDelta(t, 0.2, d[schema.MetricBuildProgress].At(0).DoubleValue(), 1e-9)
	eta, src, _ := etaOf(d)
	assert.Equal(t, "history", src)
	assert.InDelta(t, 275+150+50, eta, 1e-6)
}

// Learned weights: after min_runs runs the weights follow the time shares with the
// configured weights as a prior of prior_runs runs.
func TestLearnedWeights(t *testing.T) {
	took := []float64{30, 220, 550, 150, 50} // shares 3 %, 22 %, 55 %, 15 %, 5 %
	cfg := createDefaultConfig().(*Config)
	cfg.ETA.LearnedWeights = LearnedWeightsConfig{Enabled: true, MinRuns: 4, PriorRuns: 5}
	h := newHarness(t, cfg)
	at := recordRuns(t, h, 3, took)
	d := derived(t, h.consume(at, batch([]buildIn{coarseRun("early", at, took, 2, 0)})), schema.AttrRunID, "early")
	assert.InDelta(t, 0.2, d[schema.MetricBuildProgress].At(0).DoubleValue(), 1e-9, "3 runs < min_runs: configured weights")

	at = recordRuns(t, h, 2, took) // 5 runs now
	d = derived(t, h.consume(at, batch([]buildIn{coarseRun("learned", at, took, 2, 0)})), schema.AttrRunID, "learned")
	// (5 × configured + 5 × share) / 10 for INIT and SETUP: (0.05+0.03)/2 + (0.15+0.22)/2.
	assert.InDelta(t, (0.05+0.03)/2+(0.15+0.22)/2, d[schema.MetricBuildProgress].At(0).DoubleValue(), 1e-9)

	// A plan weight wins: the build's own weights are used as they are.
	b := coarseRun("planned", at, took, 2, 0)
	for i := range b.phases {
		b.phases[i].weight = 1
	}
	d = derived(t, h.consume(at, batch([]buildIn{b})), schema.AttrRunID, "planned")
	assert.InDelta(t, 0.4, d[schema.MetricBuildProgress].At(0).DoubleValue(), 1e-9)
}

// Failed runs record the phases that completed, not the failed one; a phase without history
// is expected to take the known phases' time per unit of weight; a finished build sent again
// (as after a restart) is not recorded twice.
func TestHistoryFromFailedRunsAndOnce(t *testing.T) {
	h := newHarness(t, createDefaultConfig().(*Config))
	at := h.clock.Now()
	h.consume(at, batch([]buildIn{coarseRun("f", at, nil, 0, 0)}))
	fail := coarseRun("f", at, []float64{40, 100}, 2, 10)
	fail.phases[2].state = "failed"
	fail.finished, fail.result = true, "failure"
	h.consume(at, batch([]buildIn{fail}))
	h.consume(at, batch([]buildIn{fail})) // the same finished build again

	d := derived(t, h.consume(at, batch([]buildIn{coarseRun("n1", at, nil, 0, 0)})), schema.AttrRunID, "n1")
	eta, src, _ := etaOf(d)
	assert.Equal(t, "history", src)
	// INIT 40 s, SETUP 100 s: 700 s per unit of weight, so BUILD 280, TEST 210, CLEANUP 70.
	assert.InDelta(t, 40+100+280+210+70, eta, 1e-6)

	// A second run: INIT {40, 80} has median 60 (it would be 40 had f counted twice).
	recordRuns(t, h, 1, []float64{80, 100, 280, 210, 70})
	d = derived(t, h.consume(at, batch([]buildIn{coarseRun("n2", h.clock.Now(), nil, 0, 0)})), schema.AttrRunID, "n2")
	eta, _, _ = etaOf(d)
	assert.InDelta(t, 60+100+280+210+70, eta, 1e-6)
}

// When the source changes, the old source's build.eta series ends with a point without a
// value, so consumers that keep every series' last value (Prometheus) drop it.
func TestETASourceChangeEndsTheOldSeries(t *testing.T) {
	h := newHarness(t, createDefaultConfig().(*Config))
	at := recordRuns(t, h, 1, []float64{30, 220, 550, 150, 50})
	fine := coarseRun("x", at, []float64{30, 220}, 2, 100)
	out := derived(t, h.consume(at, batch([]buildIn{fine})), schema.AttrRunID, "x")
	_, src, _ := etaOf(out)
	require.Equal(t, "history", src)
	fine.phases[2].total, fine.phases[2].done = 10, 2 // BUILD now reports real steps
	out = derived(t, h.consume(at, batch([]buildIn{fine})), schema.AttrRunID, "x")
	dps := out[schema.MetricBuildETA]
	require.Equal(t, 2, dps.Len())
	assert.True(t, dps.At(0).Flags().NoRecordedValue())
	old, _ := dps.At(0).Attributes().Get(schema.AttrETASource)
	assert.Equal(t, "history", old.Str())
	_, src, _ = etaOf(out)
	assert.Equal(t, "blend", src)
	out = derived(t, h.consume(at, batch([]buildIn{fine})), schema.AttrRunID, "x")
	assert.Equal(t, 1, out[schema.MetricBuildETA].Len(), "the old series ends once")
}
