package progress

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func timing(state State, elapsed, expected float64, steps ...int64) PhaseTiming {
	t := PhaseTiming{State: state, Elapsed: time.Duration(elapsed * float64(time.Second))}
	if expected > 0 {
		t.Expected, t.HasExpected = time.Duration(expected*float64(time.Second)), true
	}
	if len(steps) == 2 {
		t.StepsTotal, t.StepsCompleted = steps[0], steps[1]
	}
	return t
}

func TestPlanAndHistoryETA(t *testing.T) {
	w := []float64{0.05, 0.15, 0.4, 0.3, 0.1}
	tests := []struct {
		name    string
		timings []PhaseTiming
		ok      bool
		scale   float64
		eta     float64
		src     Source
	}{
		{name: "no history", timings: []PhaseTiming{timing(Running, 5, 0), timing(Pending, 0, 0), timing(Pending, 0, 0), timing(Pending, 0, 0), timing(Pending, 0, 0)}},
		{name: "at the start: the sum", ok: true, scale: 1, eta: 1000, src: SourceHistory,
			timings: []PhaseTiming{timing(Running, 0, 30), timing(Pending, 0, 220), timing(Pending, 0, 550), timing(Pending, 0, 150), timing(Pending, 0, 50)}},
		{name: "coarse BUILD half way", ok: true, scale: 1, eta: 275 + 200, src: SourceHistory,
			timings: []PhaseTiming{timing(Completed, 30, 30), timing(Completed, 220, 220), timing(Running, 275, 550, 1, 0), timing(Pending, 0, 150), timing(Pending, 0, 50)}},
		{name: "overrun: the floor", ok: true, scale: 1, eta: 0.05*550 + 200, src: SourceHistory,
			timings: []PhaseTiming{timing(Completed, 30, 30), timing(Completed, 220, 220), timing(Running, 900, 550), timing(Pending, 0, 150), timing(Pending, 0, 50)}},
		// Steps 8/10 after 400 s: rate 400 × 0.2 / 0.8 = 100, history 150: 0.8×100 + 0.2×150.
		{name: "real steps: blend", ok: true, scale: 1, eta: 0.8*100 + 0.2*150 + 200, src: SourceBlend,
			timings: []PhaseTiming{timing(Completed, 30, 30), timing(Completed, 220, 220), timing(Running, 400, 550, 10, 8), timing(Pending, 0, 150), timing(Pending, 0, 50)}},
		{name: "every step done: ends any moment", ok: true, scale: 1, eta: 200, src: SourceBlend,
			timings: []PhaseTiming{timing(Completed, 30, 30), timing(Completed, 220, 220), timing(Running, 400, 550, 10, 10), timing(Pending, 0, 150), timing(Pending, 0, 50)}},
		// INIT and SETUP took 1.5×: scale 1.25.
		{name: "slow run: scaled half-way", ok: true, scale: 1.25, eta: 1.25 * 750, src: SourceHistory,
			timings: []PhaseTiming{timing(Completed, 45, 30), timing(Completed, 330, 220), timing(Running, 0, 550), timing(Pending, 0, 150), timing(Pending, 0, 50)}},
		{name: "absurd ratio bounded", ok: true, scale: 2.5, eta: 2.5 * 750, src: SourceHistory,
			timings: []PhaseTiming{timing(Completed, 3000, 30), timing(Completed, 22000, 220), timing(Running, 0, 550), timing(Pending, 0, 150), timing(Pending, 0, 50)}},
		// TEST and CLEANUP without history: (30+220+550)/(0.05+0.15+0.4) = 1333.3 s per weight.
		{name: "phases without history by weight", ok: true, scale: 1, eta: 550 + (0.3+0.1)*800/0.6, src: SourceHistory,
			timings: []PhaseTiming{timing(Completed, 30, 30), timing(Completed, 220, 220), timing(Pending, 0, 550), timing(Pending, 0, 0), timing(Pending, 0, 0)}},
		{name: "failed and skipped phases count nothing", ok: true, scale: 1, eta: 0, src: SourceHistory,
			timings: []PhaseTiming{timing(Completed, 30, 30), timing(Skipped, 0, 220), timing(Failed, 10, 550), timing(Skipped, 0, 150), timing(Skipped, 0, 50)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := PlanFromHistory(tt.timings, w, make([]time.Duration, len(tt.timings)))
			assert.Equal(t, tt.ok, plan.OK)
			if !tt.ok {
				return
			}
			assert.InDelta(t, tt.scale, plan.Scale, 1e-9)
			eta, src := HistoryETA(tt.timings, plan)
			assert.InDelta(t, tt.eta, eta.Seconds(), 1e-6)
			assert.Equal(t, tt.src, src)
		})
	}
}

func TestTimeShare(t *testing.T) {
	exp := 100 * time.Second
	s, ok := TimeShare(timing(Running, 40, 100), exp)
	assert.True(t, ok)
	assert.InDelta(t, 0.4, s, 1e-9)
	s, _ = TimeShare(timing(Running, 400, 100), exp)
	assert.InDelta(t, TimeShareCap, s, 1e-9, "capped below completion")
	s, ok = TimeShare(timing(Running, 40, 100, 1, 0), exp)
	assert.True(t, ok, "a single step says nothing of how far")
	assert.InDelta(t, 0.4, s, 1e-9)
	_, ok = TimeShare(timing(Running, 40, 100, 10, 1), exp)
	assert.False(t, ok, "real steps")
	_, ok = TimeShare(timing(Pending, 0, 100), exp)
	assert.False(t, ok)
	_, ok = TimeShare(timing(Running, 40, 0), 0)
	assert.False(t, ok)
}

func TestTimeShareInProgress(t *testing.T) {
	b := Build{}
	p, _ := b.Phase("BUILD")
	p.State, p.StepsTotal, p.HasConfigWeight, p.ConfigWeight = Running, 1, true, 1
	p.TimeShare, p.HasTimeShare = 0.5, true
	got, _ := b.Progress(make([]float64, 1))
	assert.InDelta(t, 0.5, got, 1e-9)
	b.Phases[0].TimeShare = 0.3 // a later, lower estimate (the run got slower)
	got, _ = b.Progress(make([]float64, 1))
	assert.InDelta(t, 0.5, got, 1e-9, "monotonic")
	b.Phases[0].State, b.Phases[0].StepsCompleted = Completed, 1
	got, _ = b.Progress(make([]float64, 1))
	assert.InDelta(t, 1, got, 1e-9)
}

func TestSourceString(t *testing.T) {
	assert.Equal(t, "", SourceNone.String())
	assert.Equal(t, "rate", SourceRate.String())
	assert.Equal(t, "history", SourceHistory.String())
	assert.Equal(t, "blend", SourceBlend.String())
	assert.Equal(t, "", Source(9).String())
}
