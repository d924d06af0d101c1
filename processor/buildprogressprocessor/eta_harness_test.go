package buildprogressprocessor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/internal/schema"
)

// The ETA harness replays synthetic pipelines through the processor (public factory, fake
// clock) the way the buildmon receiver reports them: a batch at every event (phase start, step,
// phase end, build end) and every report interval in between, each with the build's full state
// and durations measured up to the batch. It records the ETA error, (ETA − real remaining) /
// build duration, at the first batch whose progress reaches 50 % and 90 %.

// simPhase is one phase of the synthetic pipeline: its share of the build's time, unlike the
// configured weights (INIT 5 %, SETUP 15 %, BUILD 40 %, TEST 30 %, CLEANUP 10 %).
type simPhase struct {
	name  string
	share float64
}

var simPhases = []simPhase{{"INIT", 0.03}, {"SETUP", 0.22}, {"BUILD", 0.55}, {"TEST", 0.15}, {"CLEANUP", 0.05}}

// simShape is how a run reports its steps.
type simShape struct {
	name string
	// steps is the step count each phase reports: 10 (fine-grained, one step event per real
	// step) or 1 (one step per phase, as `buildmon phase X --steps 1 -- make`).
	steps int
}

var (
	shapeFine   = simShape{name: "fine", steps: 10}
	shapeCoarse = simShape{name: "coarse", steps: 1}
)

// simParams are the synthetic durations: every run is made of 10 real steps per phase whatever
// the shape reports; a step's duration is lognormal around its phase's share of base, times a
// lognormal factor per phase and one per run (a slower machine).
type simParams struct {
	base                     time.Duration
	runSigma, phaseSigma     float64
	stepSigma                float64
	reportInterval           time.Duration
	historyRuns, measureRuns int
}

var defaultSim = simParams{base: 20 * time.Minute, runSigma: 0.1, phaseSigma: 0.1, stepSigma: 0.3,
	reportInterval: 10 * time.Second, historyRuns: 5, measureRuns: 20}

// simRun is one generated run: the durations of each phase's 10 real steps.
type simRun struct{ steps [][]time.Duration }

func lognormal(rng *rand.Rand, sigma float64) float64 {
	// Mean-one lognormal: exp(N(−σ²/2, σ)).
	return math.Exp(rng.NormFloat64()*sigma - sigma*sigma/2)
}

func genRun(rng *rand.Rand, sp simParams) simRun {
	const realSteps = 10
	r := lognormal(rng, sp.runSigma)
	run := simRun{steps: make([][]time.Duration, len(simPhases))}
	for i, ph := range simPhases {
		f := lognormal(rng, sp.phaseSigma)
		mean := float64(sp.base) * ph.share * r * f / realSteps
		for range realSteps {
			run.steps[i] = append(run.steps[i], time.Duration(mean*lognormal(rng, sp.stepSigma)))
		}
	}
	return run
}

// etaErrors are the errors of one run at 50 % and 90 % progress (NaN if never reached), and
// the sources the ETA had there.
type etaErrors struct {
	at50, at90         float64
	source50, source90 string
}

// replay sends one run through h starting at start and returns its errors.
func replay(t testing.TB, h *harness, id string, shape simShape, run simRun, sp simParams, start time.Time) (etaErrors, time.Time) {
	t.Helper()
	// phase start and end times, and step completion times.
	type phaseTimes struct {
		start, end time.Time
		steps      []time.Time
	}
	times := make([]phaseTimes, len(simPhases))
	at := start
	for i := range simPhases {
		times[i].start = at
		for _, d := range run.steps[i] {
			at = at.Add(d)
			times[i].steps = append(times[i].steps, at)
		}
		times[i].end = at
	}
	end := at
	total := end.Sub(start).Seconds()

	// Events in time order: step completions (the last one ends the phase, the next starts
	// at once) and periodic reports.
	var moments []time.Time
	for i := range times {
		moments = append(moments, times[i].start)
		if shape.steps > 1 {
			moments = append(moments, times[i].steps...)
		} else {
			moments = append(moments, times[i].end)
		}
	}
	for tick := start.Add(sp.reportInterval); tick.Before(end); tick = tick.Add(sp.reportInterval) {
		moments = append(moments, tick)
	}
	slices.SortFunc(moments, func(a, b time.Time) int { return a.Compare(b) })
	moments = slices.Compact(moments)

	errs := etaErrors{at50: math.NaN(), at90: math.NaN()}
	state := func(now time.Time) buildIn {
		b := buildIn{id: id, pipeline: "sim", host: "h1", at: now, duration: now.Sub(start).Seconds()}
		for i, ph := range simPhases {
			in := phaseIn{name: ph.name, total: int64(shape.steps)}
			pt := times[i]
			switch {
			case now.Before(pt.start):
				in.state = "pending"
			case !now.Before(pt.end):
				in.state, in.done, in.duration = "completed", int64(shape.steps), pt.end.Sub(pt.start).Seconds()
			default:
				in.state, in.duration = "running", now.Sub(pt.start).Seconds()
				if shape.steps > 1 {
					for _, s := range pt.steps {
						if !s.After(now) {
							in.done++
						}
					}
				}
			}
			b.phases = append(b.phases, in)
		}
		return b
	}
	for _, now := range moments {
		if !now.Before(end) {
			break
		}
		out := h.consume(now, batch([]buildIn{state(now)}))
		d := derived(t, out, schema.AttrRunID, id)
		p := d[schema.MetricBuildProgress].At(0).DoubleValue()
		eta, src, ok := etaOf(d)
		if !ok {
			continue
		}
		e := (eta - end.Sub(now).Seconds()) / total
		if math.IsNaN(errs.at50) && p >= 0.5-1e-9 {
			errs.at50, errs.source50 = e, src
		}
		if math.IsNaN(errs.at90) && p >= 0.9-1e-9 {
			errs.at90, errs.source90 = e, src
		}
	}
	fin := state(end)
	fin.finished, fin.result = true, "success"
	h.consume(end, batch([]buildIn{fin}))
	return errs, end
}

// etaOf returns the build.eta value with a recorded value and its source.
func etaOf(d map[string]pmetric.NumberDataPointSlice) (eta float64, source string, ok bool) {
	dps, has := d[schema.MetricBuildETA]
	if !has {
		return 0, "", false
	}
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		if dp.Flags().NoRecordedValue() {
			continue
		}
		src := ""
		if v, ok := dp.Attributes().Get(schema.AttrETASource); ok {
			src = v.Str()
		}
		return dp.DoubleValue(), src, true
	}
	return 0, "", false
}

// etaSummary is the median and worst absolute error of the measured runs at 50 % and 90 %.
type etaSummary struct {
	median50, worst50, median90, worst90 float64
	sources                              map[string]int
	runs                                 []etaErrors
}

func summarize(runs []etaErrors) etaSummary {
	s := etaSummary{sources: map[string]int{}, runs: runs}
	var a50, a90 []float64
	for _, r := range runs {
		a50 = append(a50, math.Abs(r.at50))
		a90 = append(a90, math.Abs(r.at90))
		s.sources[r.source50]++
		s.sources[r.source90]++
	}
	s.median50, s.worst50 = medianWorst(a50)
	s.median90, s.worst90 = medianWorst(a90)
	return s
}

func medianWorst(xs []float64) (median, worst float64) {
	slices.Sort(xs)
	n := len(xs)
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	if n%2 == 1 {
		median = xs[n/2]
	} else {
		median = (xs[n/2-1] + xs[n/2]) / 2
	}
	worst = xs[n-1] // NaN sorts first, so a run that never reached the mark shows as NaN only if all did
	for _, x := range xs {
		if math.IsNaN(x) {
			worst = math.NaN()
		}
	}
	return median, worst
}

// simulate runs historyRuns + measureRuns of one shape through a fresh processor with cfg
// and summarizes the measured runs.
func simulate(t testing.TB, cfg *Config, shape simShape, seed uint64, sp simParams) etaSummary {
	h := newHarness(t, cfg)
	return simulateOn(t, h, shape, seed, sp, sp.historyRuns, sp.measureRuns)
}

func simulateOn(t testing.TB, h *harness, shape simShape, seed uint64, sp simParams, history, measure int) etaSummary {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	at := h.clock.Now()
	var measured []etaErrors
	for i := range history + measure {
		run := genRun(rng, sp)
		errs, end := replay(t, h, fmt.Sprintf("%s-%d-%d", shape.name, seed, i), shape, run, sp, at)
		if i >= history {
			measured = append(measured, errs)
		}
		at = end.Add(time.Minute)
	}
	return summarize(measured)
}

func simConfig(history bool) *Config {
	cfg := createDefaultConfig().(*Config)
	if !history {
		cfg.ETA.HistorySize = 0
	}
	return cfg
}

// The bounds: with 5 runs of history, the ETA error at the first progress ≥ 50 % has
// a median within 15 % and a worst within 25 % of the build's duration, at ≥ 90 % within 5 %
// and 10 %, for fine-grained and one-step-per-phase pipelines. Several seeds, so that the
// bounds hold for the method and not for one draw.
func TestETAHistoryAccuracy(t *testing.T) {
	for _, shape := range []simShape{shapeFine, shapeCoarse} {
		for _, seed := range []uint64{1, 2, 3, 4, 5} {
			t.Run(fmt.Sprintf("%s/seed=%d", shape.name, seed), func(t *testing.T) {
				s := simulate(t, simConfig(true), shape, seed, defaultSim)
				t.Logf("median/worst at 50%%: %.1f%%/%.1f%%, at 90%%: %.1f%%/%.1f%%, sources %v",
					100*s.median50, 100*s.worst50, 100*s.median90, 100*s.worst90, s.sources)
				assert.LessOrEqual(t, s.median50, 0.15, "median error at 50%")
				assert.LessOrEqual(t, s.worst50, 0.25, "worst error at 50%")
				assert.LessOrEqual(t, s.median90, 0.05, "median error at 90%")
				assert.LessOrEqual(t, s.worst90, 0.10, "worst error at 90%")
				for _, r := range s.runs {
					assert.NotEqual(t, "rate", r.source50, "history exists: the ETA must use it")
				}
				if shape.steps == 1 {
					assert.Equal(t, 2*defaultSim.measureRuns, s.sources["history"], "coarse phases: history alone")
				} else {
					assert.Equal(t, defaultSim.measureRuns, s.sources["blend"], "at 50%% BUILD runs with real steps: blend")
				}
			})
		}
	}
}

// Without history the coarse pipeline's progress sits still inside each phase and its ETA
// misses by far more: the harness measures the gap it closes (and would notice if history
// stopped making a difference).
func TestETAWithoutHistoryIsWorseForCoarsePhases(t *testing.T) {
	before := simulate(t, simConfig(false), shapeCoarse, 1, defaultSim)
	after := simulate(t, simConfig(true), shapeCoarse, 1, defaultSim)
	t.Logf("coarse, before: %.1f%%/%.1f%% at 50%%; after: %.1f%%/%.1f%%", 100*before.median50, 100*before.worst50, 100*after.median50, 100*after.worst50)
	require.Greater(t, before.median50, 2*after.median50)
	for _, r := range before.runs {
		assert.Equal(t, "rate", r.source50)
	}
}

// BenchmarkETAAccuracy prints the harness figures for `make bench` (item 9): over seeds 1–5
// (100 measured runs per shape), the median and worst absolute ETA error at 50 % and 90 % of
// progress, in percent of the build's duration, with history (after) and without (before).
// Run with -benchtime 1x: the figures do not depend on b.N.
func BenchmarkETAAccuracy(b *testing.B) {
	for _, shape := range []simShape{shapeFine, shapeCoarse} {
		for _, history := range []bool{false, true} {
			name := fmt.Sprintf("shape=%s/history=%s", shape.name, map[bool]string{false: "off", true: "on"}[history])
			b.Run(name, func(b *testing.B) {
				var s etaSummary
				for range b.N {
					var runs []etaErrors
					for seed := uint64(1); seed <= 5; seed++ {
						runs = append(runs, simulate(b, simConfig(history), shape, seed, defaultSim).runs...)
					}
					s = summarize(runs)
				}
				b.ReportMetric(100*s.median50, "median-err-at-50%")
				b.ReportMetric(100*s.worst50, "worst-err-at-50%")
				b.ReportMetric(100*s.median90, "median-err-at-90%")
				b.ReportMetric(100*s.worst90, "worst-err-at-90%")
			})
		}
	}
}
