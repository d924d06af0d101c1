package buildprogressprocessor // import "github.com/buildmon/buildmon/processor/buildprogressprocessor"

import (
	"math"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/internal/progress"
	"github.com/buildmon/buildmon/internal/schema"
)

// phaseTiming is what the processor knows of how long one phase of a build has run.
type phaseTiming struct {
	reported    time.Duration // build.phase.duration: so far while running, final once ended
	hasReported bool
	// runningSince is when (the collector's clock, Unix nanoseconds; 0 never) the processor
	// saw the phase start running, and took how long it saw it run: the fallback when
	// build.phase.duration is not sent.
	runningSince int64
	took         time.Duration
}

func (t *phaseTiming) setReported(secs float64) {
	if secs < 0 || math.IsNaN(secs) || secs >= math.MaxInt64/float64(time.Second) {
		return
	}
	t.reported, t.hasReported = time.Duration(secs*float64(time.Second)), true
}

func (t *phaseTiming) stateChanged(old, state progress.State, now time.Time) {
	switch {
	case state == progress.Running && old != progress.Running:
		t.runningSince = now.UnixNano()
	case state.Ended() && old == progress.Running && t.runningSince != 0:
		t.took = time.Duration(now.UnixNano() - t.runningSince)
	}
}

// elapsed is how long the phase has run (running) or took (ended): the reported duration, or
// while that is 0 or missing, what the processor saw.
func (t *phaseTiming) elapsed(state progress.State, now time.Time) time.Duration {
	switch {
	case t.hasReported && t.reported > 0:
		return t.reported
	case state == progress.Running && t.runningSince != 0:
		return time.Duration(now.UnixNano() - t.runningSince)
	case state.Ended():
		return t.took
	}
	return 0
}

// buildETA is what the history estimate keeps per build.
type buildETA struct {
	source      progress.Source // of the newest ETA
	emitted     progress.Source // the source of the last build.eta point emitted
	seenRunning bool            // the processor saw the build before it finished
	recorded    bool            // its phases went into the pipeline's history
	learnedFor  int32           // the phase count learned weights were computed for (+1)
}

// etaScratch is the space one build's estimate is computed in (under the processor's lock):
// it is shared by all builds, so that a build holds no more than buildETA.
type etaScratch struct {
	timings  []progress.PhaseTiming
	expected []time.Duration
	weights  []float64
	learned  []float64
}

// etaHistory is the history of every pipeline, bounded by eta.max_pipelines, and what of it
// still has to reach storage.
type etaHistory struct {
	cfg       ETAConfig
	estimator progress.Estimator
	pipelines map[string]*progress.PipelineHistory
	dirty     map[string]bool // pipelines changed (true) or removed (false) since the last flush
	store     *historyStore   // nil without storage
	scratch   etaScratch
}

func newETAHistory(cfg *ETAConfig) etaHistory {
	h := etaHistory{cfg: *cfg, pipelines: map[string]*progress.PipelineHistory{}, dirty: map[string]bool{}}
	if cfg.Estimator == estimatorTrimmedMean {
		h.estimator = progress.EstimateTrimmedMean
	}
	return h
}

func (h *etaHistory) enabled() bool { return h.cfg.HistorySize > 0 }

// record adds a finished run to its pipeline's history, making room by forgetting the
// pipeline that recorded a run longest ago.
func (h *etaHistory) record(pipeline string, total time.Duration, succeeded bool, phases []progress.PhaseDuration, now time.Time) {
	ph := h.pipelines[pipeline]
	if ph == nil {
		if len(h.pipelines) >= h.cfg.MaxPipelines {
			h.dropOldest()
		}
		ph = progress.NewPipelineHistory(h.cfg.HistorySize, h.cfg.MaxPhases)
		h.pipelines[pipeline] = ph
	}
	if ph.AddRun(total, succeeded, phases, now) {
		h.dirty[pipeline] = true
		if h.store != nil {
			h.store.signal()
		}
	}
}

func (h *etaHistory) dropOldest() {
	var oldest string
	var at time.Time
	for name, ph := range h.pipelines {
		if oldest == "" || ph.LastUsed.Before(at) || (ph.LastUsed.Equal(at) && name < oldest) {
			oldest, at = name, ph.LastUsed
		}
	}
	delete(h.pipelines, oldest)
	h.dirty[oldest] = false
}

// finishBuild records a finished build's phases in its pipeline's history: every phase that
// completed, and for a successful build its total duration. A build the processor never saw
// running (a finished build re-sent after a restart) is not recorded, so a run counts once.
func (p *buildProgressProcessor) finishBuild(b *buildState) {
	if b.hist.recorded || !b.hist.seenRunning || !p.eta.enabled() || b.pipeline == "" {
		return
	}
	b.hist.recorded = true
	var buf [8]progress.PhaseDuration
	phases := buf[:0]
	for i := range b.progress.Phases {
		ph := &b.progress.Phases[i]
		if ph.State != progress.Completed {
			continue
		}
		if d := b.timing[i].elapsed(ph.State, b.lastSeen); d > 0 {
			phases = append(phases, progress.PhaseDuration{Name: ph.Name, Duration: d})
		}
	}
	total := b.elapsed
	if !b.hasElapsed {
		total = b.lastSeen.Sub(b.firstSeen)
	}
	p.eta.record(b.pipeline, total, b.progress.Succeeded, phases, b.lastSeen)
}

// planFromHistory computes this run's expected phase durations from its pipeline's history,
// sets learned weights (once per set of phases) and the time-based progress of running
// phases without real steps. ok is false without history.
func (p *buildProgressProcessor) planFromHistory(b *buildState) progress.HistoryPlan {
	if !b.progress.Finished {
		b.hist.seenRunning = true
	}
	h := p.eta.pipelines[b.pipeline]
	n := len(b.progress.Phases)
	if h == nil || !h.HasPhases() || n == 0 || b.progress.Finished {
		for i := range b.progress.Phases {
			b.progress.Phases[i].HasTimeShare = false
		}
		return progress.HistoryPlan{}
	}
	e := &p.eta.scratch
	e.timings = grow(e.timings, n)
	e.expected = grow(e.expected, n)
	e.weights = grow(e.weights, n)
	minRuns := math.MaxInt
	for i := range b.progress.Phases {
		ph := &b.progress.Phases[i]
		t := &e.timings[i]
		*t = progress.PhaseTiming{State: ph.State, Elapsed: b.timing[i].elapsed(ph.State, p.now),
			StepsTotal: ph.StepsTotal, StepsCompleted: ph.StepsCompleted}
		t.Expected, t.HasExpected = h.Expected(ph.Name, p.eta.estimator)
		minRuns = min(minRuns, h.Runs(ph.Name))
	}
	if lw := p.eta.cfg.LearnedWeights; lw.Enabled && b.hist.learnedFor != int32(n+1) && minRuns >= lw.MinRuns {
		p.learnWeights(b, minRuns)
	}
	progress.NormalizedWeights(b.progress.Phases, e.weights)
	plan := progress.PlanFromHistory(e.timings, e.weights, e.expected)
	for i := range b.progress.Phases {
		ph := &b.progress.Phases[i]
		ph.HasTimeShare = false
		if p.eta.cfg.TimeProgress && plan.OK {
			ph.TimeShare, ph.HasTimeShare = progress.TimeShare(e.timings[i], plan.Expected[i])
		}
	}
	return plan
}

// learnWeights sets the learned weight of every phase of b from the phases' expected
// durations (runs recorded runs), unless the build's plan weighs any phase itself.
func (p *buildProgressProcessor) learnWeights(b *buildState, runs int) {
	e := &p.eta.scratch
	n := len(b.progress.Phases)
	b.hist.learnedFor = int32(n + 1)
	for i := range b.progress.Phases {
		ph := &b.progress.Phases[i]
		if ph.HasPlanWeight {
			return
		}
		ph.HasLearnedWeight = false
	}
	configured := progress.NormalizedWeights(b.progress.Phases, e.weights)
	for i := range e.timings {
		e.expected[i] = 0
		if e.timings[i].HasExpected {
			e.expected[i] = e.timings[i].Expected
		}
	}
	e.learned = grow(e.learned, n)
	learned := progress.LearnedWeights(configured, e.expected, runs, p.eta.cfg.LearnedWeights.PriorRuns, e.learned)
	for i := range b.progress.Phases {
		b.progress.Phases[i].LearnedWeight, b.progress.Phases[i].HasLearnedWeight = learned[i], true
	}
}

// estimateETA sets b's ETA and its source: from the plan when the pipeline has phase history,
// else from the build's progress rate (blended with its pipeline's median total duration
// when only that is known).
func (p *buildProgressProcessor) estimateETA(b *buildState, plan progress.HistoryPlan) {
	switch {
	case b.progress.Finished:
		// The source stays that of the last estimate: the final 0 continues its series.
		b.eta, b.etaKnown = 0, true
		return
	case plan.OK:
		d, src := progress.HistoryETA(p.eta.scratch.timings, plan)
		b.hist.source = src
		b.eta, b.etaKnown = d, true
		return
	}
	elapsed := b.elapsed
	if !b.hasElapsed {
		elapsed = b.lastSeen.Sub(b.firstSeen)
	}
	var median time.Duration
	hasHistory := false
	if h := p.eta.pipelines[b.pipeline]; h != nil {
		median, hasHistory = h.ExpectedTotal(p.eta.estimator)
	}
	d, ok := progress.ETA(b.overall, elapsed, median, hasHistory)
	switch {
	case !ok:
		b.hist.source = progress.SourceNone
	case !hasHistory:
		b.hist.source = progress.SourceRate
	case b.overall > 0 && elapsed > 0:
		b.hist.source = progress.SourceBlend
	default:
		b.hist.source = progress.SourceHistory
	}
	b.eta, b.etaKnown = d, ok
}

// grow returns s with length n, reusing its array when it is large enough.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// pipelineKey is the storage key of a pipeline's history.
func pipelineKey(name string) string { return historyPrefix + name }

// emitETA appends build.eta with its build.eta.source. When the source changed since the
// last point, the previous source's series gets a point without a value (the
// no-recorded-value flag: the Prometheus exporter drops the series, remote write sends a
// stale marker), so that a consumer keeping the last value of every series does not show two
// ETAs for one build.
func emitETA(ms pmetric.MetricSlice, b *buildState, ts pcommon.Timestamp) {
	dps := gauge(ms, descETA)
	src := b.hist.source
	if prev := b.hist.emitted; prev != progress.SourceNone && prev != src {
		dp := dps.AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
		dp.Attributes().PutStr(schema.AttrETASource, prev.String())
	}
	dp := dps.AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetDoubleValue(b.eta.Seconds())
	if src != progress.SourceNone {
		dp.Attributes().PutStr(schema.AttrETASource, src.String())
	}
	b.hist.emitted = src
}
