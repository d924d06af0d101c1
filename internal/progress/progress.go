// Package progress computes the progress of a build from the state of its phases (seed §3):
// phase progress = completed steps / total steps, overall progress = the weighted sum of the
// phase progresses with the weights renormalised over the phases the build actually has.
//
// The package is plain Go: the buildprogress processor translates pdata into Phase values and
// keeps one Build per build it tracks.
package progress // import "github.com/buildmon/buildmon/internal/progress"

import (
	"math"
	"strings"
)

// State is the state of a build phase.
type State uint8

// Phase states, in the order a phase normally passes through them.
const (
	Pending State = iota
	Running
	Completed
	Failed
	Skipped
)

var stateNames = [...]string{"pending", "running", "completed", "failed", "skipped"}

// String returns the schema name of the state (the build.phase.state attribute value).
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// ParseState maps a build.phase.state attribute value to a State.
func ParseState(s string) (State, bool) {
	for i, n := range stateNames {
		if n == s {
			return State(i), true
		}
	}
	return Pending, false
}

// Ended reports whether a phase in this state will not progress any more.
func (s State) Ended() bool { return s == Completed || s == Failed || s == Skipped }

// DefaultWeights returns the seed's phase weights (§3.2): INIT 5%, SETUP 15%, BUILD 40%,
// TEST 30%, CLEANUP 10%.
func DefaultWeights() map[string]float64 {
	return map[string]float64{"INIT": 0.05, "SETUP": 0.15, "BUILD": 0.40, "TEST": 0.30, "CLEANUP": 0.10}
}

// Phase is what the calculator needs to know about one phase of a build.
type Phase struct {
	Name           string
	State          State
	StepsTotal     int64 // 0 = unknown
	StepsCompleted int64

	// PlanWeight is the weight the build's own plan gives the phase (build.phase.weight);
	// it wins over the configured weight.
	PlanWeight    float64
	HasPlanWeight bool
	// ConfigWeight is the weight from the processor's configuration (pipeline, then global).
	ConfigWeight    float64
	HasConfigWeight bool
	// LearnedWeight is a weight learned from the pipeline's history (LearnedWeights); it
	// wins over the configured weight, the plan weight wins over it.
	LearnedWeight    float64
	HasLearnedWeight bool

	// TimeShare is the time-based progress of a running phase without real steps (elapsed
	// against its expected duration from history, capped below 1); used while HasTimeShare.
	TimeShare    float64
	HasTimeShare bool
}

// weight returns the phase's un-normalised weight and whether it has one.
func (p *Phase) weight() (float64, bool) {
	if p.HasPlanWeight {
		return p.PlanWeight, true
	}
	if p.HasLearnedWeight {
		return p.LearnedWeight, true
	}
	if p.HasConfigWeight {
		return p.ConfigWeight, true
	}
	return 0, false
}

// PhaseProgress returns the completed share of a phase, 0 to 1:
//   - pending: 0;
//   - running: completed/total steps, or 0 while the step count is unknown (total 0); with a
//     time share (HasTimeShare), the larger of the two;
//   - completed and skipped: 1;
//   - failed: the share completed when it failed (0 if the step count is unknown).
func PhaseProgress(p Phase) float64 {
	switch p.State {
	case Completed, Skipped:
		return 1
	case Running:
		if p.HasTimeShare {
			return max(stepShare(p.StepsCompleted, p.StepsTotal), clamp01(p.TimeShare))
		}
		return stepShare(p.StepsCompleted, p.StepsTotal)
	case Failed:
		return stepShare(p.StepsCompleted, p.StepsTotal)
	default:
		return 0
	}
}

func stepShare(done, total int64) float64 {
	if total <= 0 || done <= 0 {
		return 0
	}
	if done >= total {
		return 1
	}
	return float64(done) / float64(total)
}

// NormalizedWeights writes into out (len(phases)) the weight of every phase, summing to 1:
// a phase's weight is its plan weight, else its configured weight; a phase with neither (a
// custom phase the configuration does not name) gets the mean weight of the phases that have
// one, so an unnamed phase counts like an average phase. If no phase has a weight, or the
// weights sum to 0, every phase weighs the same. It returns out.
func NormalizedWeights(phases []Phase, out []float64) []float64 {
	out = out[:len(phases)]
	var sum float64
	known := 0
	for i := range phases {
		w, ok := phases[i].weight()
		if ok {
			sum += w
			known++
		}
		out[i] = w
	}
	if known > 0 && known < len(phases) {
		mean := sum / float64(known)
		for i := range phases {
			if _, ok := phases[i].weight(); !ok {
				out[i] = mean
				sum += mean
			}
		}
	}
	if sum <= 0 || math.IsNaN(sum) || math.IsInf(sum, 0) {
		for i := range out {
			out[i] = 1 / float64(len(out))
		}
		return out
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// Overall returns Σ weight × phase progress with the weights of NormalizedWeights; 0 for a
// build without phases.
func Overall(phases []Phase) float64 {
	return weightedSum(phases, func(i int) float64 { return PhaseProgress(phases[i]) })
}

func weightedSum(phases []Phase, progressOf func(i int) float64) float64 {
	if len(phases) == 0 {
		return 0
	}
	var buf [16]float64
	var w []float64
	if len(phases) <= len(buf) {
		w = buf[:len(phases)]
	} else {
		w = make([]float64, len(phases))
	}
	w = NormalizedWeights(phases, w)
	var total float64
	for i := range phases {
		total += w[i] * progressOf(i)
	}
	return clamp01(total)
}

func clamp01(v float64) float64 {
	switch {
	case v < 0 || math.IsNaN(v):
		return 0
	case v > 1:
		return 1
	}
	return v
}

// WeightTable resolves configured weights: a pipeline's own weights first, then the global
// ones. Phase names match case-insensitively. A WeightTable is read-only after construction.
type WeightTable struct {
	global    map[string]float64
	pipelines map[string]map[string]float64
}

// NewWeightTable builds a WeightTable from the global weights and the per-pipeline overrides
// (pipeline name → phase → weight).
func NewWeightTable(global map[string]float64, pipelines map[string]map[string]float64) *WeightTable {
	t := &WeightTable{global: upperKeys(global), pipelines: make(map[string]map[string]float64, len(pipelines))}
	for name, w := range pipelines {
		t.pipelines[name] = upperKeys(w)
	}
	return t
}

func upperKeys(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[strings.ToUpper(k)] = v
	}
	return out
}

// Lookup returns the configured weight of phase in pipeline.
func (t *WeightTable) Lookup(pipeline, phase string) (float64, bool) {
	key := strings.ToUpper(phase)
	if pw, ok := t.pipelines[pipeline]; ok {
		if w, ok := pw[key]; ok {
			return w, true
		}
	}
	w, ok := t.global[key]
	return w, ok
}

// Build tracks one build's phases and keeps its progress monotonic: once a progress value
// has been reported it is never reported lower, even if a later plan weight or step total
// would compute less.
type Build struct {
	// Phases in the order they were first seen.
	Phases []Phase
	// Finished is set once the build finished; Succeeded when its result is success.
	Finished  bool
	Succeeded bool

	best      float64
	bestPhase []float64
}

// Phase returns the phase with that name, adding a pending phase if the build has none yet;
// added reports whether it was added. The pointer is valid until the next call that adds a
// phase.
func (b *Build) Phase(name string) (p *Phase, added bool) {
	for i := range b.Phases {
		if b.Phases[i].Name == name {
			return &b.Phases[i], false
		}
	}
	b.Phases = append(b.Phases, Phase{Name: name})
	b.bestPhase = append(b.bestPhase, 0)
	return &b.Phases[len(b.Phases)-1], true
}

// Progress computes the build's overall progress and writes each phase's progress into
// phases (len(b.Phases)); both never go below what an earlier call returned. A build that
// finished successfully is complete (1) even if some phase was never reported done.
func (b *Build) Progress(phases []float64) (overall float64, phaseProgress []float64) {
	phases = phases[:len(b.Phases)]
	for i := range b.Phases {
		p := PhaseProgress(b.Phases[i])
		if p < b.bestPhase[i] {
			p = b.bestPhase[i]
		}
		b.bestPhase[i] = p
		phases[i] = p
	}
	overall = weightedSum(b.Phases, func(i int) float64 { return phases[i] })
	if b.Finished && b.Succeeded {
		overall = 1
	}
	if overall < b.best {
		overall = b.best
	}
	b.best = overall
	return overall, phases
}
