package progress

import (
	"math"
	"time"

	"github.com/buildmon/buildmon/internal/schema"
)

// Source says which estimate an ETA came from (the build.eta.source attribute).
type Source uint8

// ETA sources.
const (
	// SourceNone: no ETA.
	SourceNone Source = iota
	// SourceRate: the build's own progress rate (no history of the pipeline).
	SourceRate
	// SourceHistory: the durations of earlier runs of the pipeline alone.
	SourceHistory
	// SourceBlend: history blended with a progress rate (the step rate of a running phase
	// that reports real steps, or the build's overall rate against its whole-run history).
	SourceBlend
)

var sourceNames = [...]string{"", schema.ETASourceRate, schema.ETASourceHistory, schema.ETASourceBlend}

// String returns the attribute value of the source ("" for SourceNone).
func (s Source) String() string {
	if int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return ""
}

// PhaseTiming is what the history estimate needs to know about one phase of a running build.
type PhaseTiming struct {
	State State
	// Elapsed is how long the phase has run (running) or took (ended).
	Elapsed time.Duration
	// Expected is the phase's expected duration from the pipeline's history; HasExpected is
	// false when the history has none for it.
	Expected    time.Duration
	HasExpected bool
	// StepsTotal and StepsCompleted are the phase's reported steps.
	StepsTotal, StepsCompleted int64
}

// RealSteps reports whether the phase reports a step count that says how far it is: more
// than one step. A phase with an unknown count (0) or a single step only says whether it is
// done.
func (t *PhaseTiming) RealSteps() bool { return t.StepsTotal > 1 }

// HistoryPlan is the history estimate of one build: the expected duration of every phase,
// scaled by how this run's completed phases compared with their history.
type HistoryPlan struct {
	// Expected is each phase's expected duration for this run (scaled; phases without
	// history get a share of the known ones by weight). Valid only when OK.
	Expected []time.Duration
	// Scale is the factor applied to the history's durations (1 while no phase completed).
	Scale float64
	OK    bool
}

// Bounds of the history estimate.
const (
	// TimeShareCap caps the time-based progress of a running phase: it stays below
	// completion until the phase really completes.
	TimeShareCap = 0.95
	// RemainingFloor is the least share of its expected duration that a running phase is
	// expected to still need: an overrunning phase is never estimated as done.
	RemainingFloor = 0.05
	// minScale and maxScale bound the ratio a run's completed phases can give.
	minScale, maxScale = 0.25, 4.0
	// scaleWeight is how far the scale follows that ratio: half of it, because a phase that
	// ran slow says something of the run (a slower machine) and something of the phase only.
	// In the ETA harness (40 seeds), following it fully or not at all was worse at 50 %.
	scaleWeight = 0.5
)

// PlanFromHistory computes the expected duration of each phase of a build (timings, in the
// build's phase order, with weights the normalised weights of the same phases) for this run:
//
//   - a phase with history: its expected duration (median or trimmed mean of earlier runs);
//   - a phase without: the known phases' expected time per unit of weight × its weight;
//   - all of it × scale, where scale compares this run's completed phases with their history,
//     half-way: scale = 1 + (raw − 1) / 2 with raw = Σ took / Σ expected over the completed
//     phases with history, bounded to 0.25–4 (1 while none completed).
//
// OK is false when no phase has history.
func PlanFromHistory(timings []PhaseTiming, weights []float64, out []time.Duration) HistoryPlan {
	out = out[:len(timings)]
	var knownExp, knownW, tookSum, expSum float64
	known, completed := 0, 0 // phases with history, of them completed
	for i := range timings {
		t := &timings[i]
		if !t.HasExpected || t.Expected <= 0 {
			continue
		}
		known++
		knownExp += float64(t.Expected)
		knownW += weights[i]
		if t.State == Completed && t.Elapsed > 0 {
			completed++
			tookSum += float64(t.Elapsed)
			expSum += float64(t.Expected)
		}
	}
	if known == 0 {
		return HistoryPlan{Expected: out, Scale: 1}
	}
	scale := 1.0
	if completed > 0 && expSum > 0 {
		raw := math.Min(math.Max(tookSum/expSum, minScale), maxScale)
		scale = 1 + (raw-1)*scaleWeight
	}
	perWeight := 0.0
	if knownW > 0 {
		perWeight = knownExp / knownW
	} else {
		perWeight = knownExp / float64(known)
	}
	for i := range timings {
		t := &timings[i]
		e := float64(t.Expected)
		if !t.HasExpected || t.Expected <= 0 {
			if knownW > 0 {
				e = perWeight * weights[i]
			} else {
				e = perWeight
			}
		}
		out[i] = time.Duration(e * scale)
	}
	return HistoryPlan{Expected: out, Scale: scale, OK: true}
}

// TimeShare returns the time-based progress of a running phase without real steps: elapsed
// against its expected duration, capped at TimeShareCap; ok is false for a phase that has
// real steps, is not running, or has no expected duration.
func TimeShare(t PhaseTiming, expected time.Duration) (share float64, ok bool) {
	if t.State != Running || t.RealSteps() || expected <= 0 {
		return 0, false
	}
	return min(max(float64(t.Elapsed)/float64(expected), 0), TimeShareCap), true
}

// HistoryETA estimates the time until the build finishes from a plan:
//
//   - pending phases: their expected duration;
//   - running phases: expected − elapsed, at least RemainingFloor × expected; for a phase that
//     reports real steps (more than one) with f = its completed share > 0, that is blended
//     with its step rate: f × elapsed × (1 − f) / f + (1 − f) × (expected − elapsed);
//   - ended phases: nothing.
//
// The source is SourceBlend when a step rate took part, else SourceHistory.
func HistoryETA(timings []PhaseTiming, plan HistoryPlan) (eta time.Duration, src Source) {
	src = SourceHistory
	var secs float64
	for i := range timings {
		t := &timings[i]
		exp := plan.Expected[i].Seconds()
		switch t.State {
		case Pending:
			secs += exp
		case Running:
			el := max(t.Elapsed.Seconds(), 0)
			rem := max(exp-el, RemainingFloor*exp)
			if t.RealSteps() && t.StepsCompleted > 0 && el > 0 {
				f := stepShare(t.StepsCompleted, t.StepsTotal)
				if f >= 1 {
					rem = 0 // every step done: the phase ends any moment
				} else {
					rem = f*(el*(1-f)/f) + (1-f)*rem
				}
				src = SourceBlend
			}
			secs += rem
		}
	}
	if secs > math.MaxInt64/float64(time.Second) {
		secs = math.MaxInt64 / float64(time.Second)
	}
	return time.Duration(secs * float64(time.Second)), src
}
