package progress

import (
	"math"
	"slices"
	"time"
)

// Estimator reduces the recorded durations of a phase to its expected duration.
type Estimator uint8

// Estimators: the median, or the mean of the durations left after dropping the shortest and
// the longest fifth (at least one of each once five are recorded). Both ignore a few outliers
// (a cold cache, a hung test).
const (
	EstimateMedian Estimator = iota
	EstimateTrimmedMean
)

// Values returns the recorded durations, oldest first.
func (h *History) Values() []time.Duration {
	out := make([]time.Duration, 0, len(h.runs))
	if len(h.runs) < cap(h.runs) {
		return append(out, h.runs...)
	}
	out = append(out, h.runs[h.next:]...)
	return append(out, h.runs[:h.next]...)
}

// TrimmedMean returns the mean of the recorded durations without the shortest and longest
// fifth (rounded down, but at least one each from five durations on); ok is false while
// nothing is recorded.
func (h *History) TrimmedMean() (mean time.Duration, ok bool) {
	n := len(h.runs)
	if n == 0 {
		return 0, false
	}
	var buf [32]time.Duration
	s := append(buf[:0], h.runs...)
	slices.Sort(s)
	cut := n / 5
	if cut == 0 && n >= 5 {
		cut = 1
	}
	s = s[cut : n-cut]
	var sum float64
	for _, d := range s {
		sum += float64(d)
	}
	return time.Duration(sum / float64(len(s))), true
}

// Estimate returns the expected duration by e.
func (h *History) Estimate(e Estimator) (time.Duration, bool) {
	if e == EstimateTrimmedMean {
		return h.TrimmedMean()
	}
	return h.Median()
}

// PipelineHistory holds what earlier runs of one pipeline took: per phase, the durations of
// the phases that completed (in successful and in failed runs), and the total durations of
// the successful runs. It is bounded: size runs per phase and for the total, and maxPhases
// phases (the phase recorded longest ago makes room for a new one). It is not safe for
// concurrent use.
type PipelineHistory struct {
	size, maxPhases int
	total           *History
	phases          map[string]*phaseRuns
	seq             uint64 // counts recorded runs
	// LastUsed is when a run was last recorded (the collector's clock).
	LastUsed time.Time
}

type phaseRuns struct {
	runs    *History
	lastSeq uint64 // the run that last recorded this phase
}

// NewPipelineHistory returns an empty history keeping size runs of at most maxPhases phases.
func NewPipelineHistory(size, maxPhases int) *PipelineHistory {
	return &PipelineHistory{size: max(size, 1), maxPhases: max(maxPhases, 1), total: NewHistory(size), phases: map[string]*phaseRuns{}}
}

// PhaseDuration is how long one phase of a run took.
type PhaseDuration struct {
	Name     string
	Duration time.Duration
}

// AddRun records a finished run: the phases that completed, and (succeeded) the run's total
// duration. Non-positive durations are ignored. It reports whether anything was recorded.
func (h *PipelineHistory) AddRun(total time.Duration, succeeded bool, phases []PhaseDuration, at time.Time) bool {
	h.seq++
	recorded := false
	for _, ph := range phases {
		if ph.Duration <= 0 || ph.Name == "" {
			continue
		}
		r := h.phaseFor(ph.Name)
		r.runs.Add(ph.Duration)
		r.lastSeq = h.seq
		recorded = true
	}
	if succeeded && total > 0 {
		h.total.Add(total)
		recorded = true
	}
	if recorded {
		h.LastUsed = at
	}
	return recorded
}

func (h *PipelineHistory) phaseFor(name string) *phaseRuns {
	if r, ok := h.phases[name]; ok {
		return r
	}
	if len(h.phases) >= h.maxPhases {
		var oldest string
		var seq uint64 = math.MaxUint64
		for n, r := range h.phases {
			if r.lastSeq < seq || (r.lastSeq == seq && n < oldest) {
				oldest, seq = n, r.lastSeq
			}
		}
		delete(h.phases, oldest)
	}
	r := &phaseRuns{runs: NewHistory(h.size)}
	h.phases[name] = r
	return r
}

// Expected returns the expected duration of a phase by e; ok is false without history.
func (h *PipelineHistory) Expected(phase string, e Estimator) (time.Duration, bool) {
	r, ok := h.phases[phase]
	if !ok {
		return 0, false
	}
	return r.runs.Estimate(e)
}

// ExpectedTotal returns the expected duration of a successful run by e.
func (h *PipelineHistory) ExpectedTotal(e Estimator) (time.Duration, bool) {
	return h.total.Estimate(e)
}

// Runs returns how many runs recorded the phase (up to the history size).
func (h *PipelineHistory) Runs(phase string) int {
	if r, ok := h.phases[phase]; ok {
		return r.runs.Len()
	}
	return 0
}

// HasPhases reports whether any phase duration is recorded.
func (h *PipelineHistory) HasPhases() bool { return len(h.phases) > 0 }

// PipelineRecord is a PipelineHistory as plain data (for storage): durations oldest first.
type PipelineRecord struct {
	Total    []time.Duration            `json:"total,omitempty"`
	Phases   map[string][]time.Duration `json:"phases,omitempty"`
	Order    []string                   `json:"order,omitempty"` // phase names, least recently recorded first
	LastUsed time.Time                  `json:"last_used"`
}

// Record returns the history as plain data.
func (h *PipelineHistory) Record() PipelineRecord {
	rec := PipelineRecord{Total: h.total.Values(), Phases: make(map[string][]time.Duration, len(h.phases)), LastUsed: h.LastUsed}
	for name, r := range h.phases {
		rec.Phases[name] = r.runs.Values()
		rec.Order = append(rec.Order, name)
	}
	slices.SortFunc(rec.Order, func(a, b string) int {
		if c := compareUint(h.phases[a].lastSeq, h.phases[b].lastSeq); c != 0 {
			return c
		}
		if a < b {
			return -1
		}
		return 1
	})
	return rec
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// RestorePipelineHistory rebuilds a history from a record, keeping what fits in size runs and
// maxPhases phases (the newest); non-positive durations are dropped.
func RestorePipelineHistory(rec PipelineRecord, size, maxPhases int) *PipelineHistory {
	h := NewPipelineHistory(size, maxPhases)
	for _, d := range rec.Total {
		if d > 0 {
			h.total.Add(d)
		}
	}
	order := rec.Order
	seen := make(map[string]bool, len(order))
	for _, n := range order {
		seen[n] = true
	}
	var rest []string
	for n := range rec.Phases {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	slices.Sort(rest)
	order = append(rest, order...)
	for _, name := range order {
		durations, ok := rec.Phases[name]
		if !ok || name == "" {
			continue
		}
		h.seq++
		var r *phaseRuns
		for _, d := range durations {
			if d <= 0 {
				continue
			}
			if r == nil {
				r = h.phaseFor(name)
			}
			r.runs.Add(d)
		}
		if r != nil {
			r.lastSeq = h.seq
		}
	}
	h.LastUsed = rec.LastUsed
	return h
}

// LearnedWeights writes into out (len(configured)) phase weights that follow the phases' real
// time shares, with the configured weights as the prior: for a phase with an expected
// duration,
//
//	weight = (prior × configured + runs × share) / (prior + runs)
//
// where configured are the phases' normalised configured weights and share is the phase's
// share of the expected time of the phases with history, scaled to the configured weight
// those phases have together (so the weights still sum to 1). Phases without history keep
// their configured weight. It returns out.
func LearnedWeights(configured []float64, expected []time.Duration, runs, prior int, out []float64) []float64 {
	out = out[:len(configured)]
	var cKnown, eKnown float64
	for i := range configured {
		if expected[i] > 0 {
			cKnown += configured[i]
			eKnown += float64(expected[i])
		}
	}
	n, k := float64(max(runs, 0)), float64(max(prior, 0))
	for i := range configured {
		out[i] = configured[i]
		if expected[i] <= 0 || eKnown <= 0 || n+k == 0 {
			continue
		}
		share := cKnown * float64(expected[i]) / eKnown
		out[i] = (k*configured[i] + n*share) / (k + n)
	}
	return out
}
