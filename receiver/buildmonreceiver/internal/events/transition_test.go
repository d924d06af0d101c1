package events

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var tBase = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func sec(s int) time.Time { return tBase.Add(time.Duration(s) * time.Second) }

func weight(w float64) *float64 { return &w }

// planEvent starts build "b" with phases A (2 steps), M (milestones m1, m2), C (unknown steps).
func planEvent() Event {
	return Event{Type: TypeBuildStarted, BuildID: "b", Pipeline: "p", Phases: []PhasePlan{
		{Name: "A", Steps: 2, Weight: weight(0.5)},
		{Name: "M", Milestones: []string{"m1", "m2"}},
		{Name: "C"},
	}}
}

func newTestBuild(t *testing.T) *Build {
	t.Helper()
	r := NewRegistry(Options{DefaultHostname: "default-host"})
	ev := planEvent()
	return r.newBuild(&ev, sec(0))
}

// on is an event of build "b" for a phase.
func on(typ Type, phase string, at int) Event {
	return Event{Type: typ, BuildID: "b", Phase: phase, Time: sec(at), Count: 1}
}

// applyAll applies events in order at their times, failing the test on an error.
func applyAll(t *testing.T, b *Build, spans *[]SpanRecord, evs ...Event) {
	t.Helper()
	for _, ev := range evs {
		if err := apply(b, &ev, ev.Time, spans); err != nil {
			t.Fatalf("%s %s: %v", ev.Type, ev.Phase, err)
		}
	}
}

func TestNewBuild(t *testing.T) {
	r := NewRegistry(Options{DefaultHostname: "default-host"})
	ev := planEvent()
	ev.Attributes = Attributes{Worker: "w", Branch: "main"}
	b := r.newBuild(&ev, sec(5))
	assert.Equal(t, "b", b.ID)
	assert.Equal(t, "p", b.Pipeline)
	assert.Equal(t, "default-host", b.Host, "no attributes.host: the receiver's hostname")
	assert.Equal(t, Attributes{Worker: "w", Branch: "main"}, b.Attributes)
	assert.Equal(t, sec(5), b.Started)
	assert.Equal(t, sec(5), b.Updated)
	assert.False(t, b.Done())
	require.Len(t, b.Phases, 3)
	for _, ph := range b.Phases {
		assert.Equal(t, PhasePending, ph.State, ph.Name)
		assert.Empty(t, ph.Left, ph.Name)
		assert.True(t, ph.Start.IsZero(), ph.Name)
	}
	assert.Equal(t, int64(2), b.Phases[0].Steps)
	assert.Equal(t, 0.5, *b.Phases[0].Weight)
	assert.Equal(t, int64(2), b.Phases[1].Steps, "a milestone phase has as many steps as milestones")
	assert.Equal(t, []bool{false, false}, b.Phases[1].Reached)
	assert.Equal(t, int64(0), b.Phases[2].Steps)
	assert.Nil(t, b.Phases[2].Weight)

	// The plan is copied: the event's slices may be reused.
	ev.Phases[1].Milestones[0] = "changed"
	assert.Equal(t, []string{"m1", "m2"}, b.Phases[1].Milestones)

	ev.Attributes.Host = "runner-host"
	assert.Equal(t, "runner-host", r.newBuild(&ev, sec(5)).Host, "attributes.host wins")
}

func TestSamePlan(t *testing.T) {
	b := newTestBuild(t)
	tests := []struct {
		name   string
		change func(*Event)
		same   bool
	}{
		{"identical", func(*Event) {}, true},
		{"other attributes, id and time", func(e *Event) { e.Attributes.Worker = "x"; e.ID = "retry"; e.Time = sec(9) }, true},
		{"other weight", func(e *Event) { e.Phases[0].Weight = weight(0.9) }, true},
		{"milestone phase with a step count", func(e *Event) { e.Phases[1].Steps = 7 }, true},
		{"other pipeline", func(e *Event) { e.Pipeline = "q" }, false},
		{"a phase fewer", func(e *Event) { e.Phases = e.Phases[:2] }, false},
		{"a phase more", func(e *Event) { e.Phases = append(e.Phases, PhasePlan{Name: "D"}) }, false},
		{"renamed phase", func(e *Event) { e.Phases[2].Name = "D" }, false},
		{"other step count", func(e *Event) { e.Phases[0].Steps = 3 }, false},
		{"unknown steps now known", func(e *Event) { e.Phases[2].Steps = 1 }, false},
		{"other milestones", func(e *Event) { e.Phases[1].Milestones = []string{"m1", "m3"} }, false},
		{"milestones in another order", func(e *Event) { e.Phases[1].Milestones = []string{"m2", "m1"} }, false},
		{"milestones dropped", func(e *Event) { e.Phases[1].Milestones = nil; e.Phases[1].Steps = 2 }, false},
		{"phases reordered", func(e *Event) { e.Phases[0], e.Phases[2] = e.Phases[2], e.Phases[0] }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := planEvent()
			tt.change(&ev)
			assert.Equal(t, tt.same, samePlan(b, &ev))
		})
	}
}

// Each event is valid only in some phase states; an invalid one names the field and changes
// nothing of the build.
func TestApplyRejects(t *testing.T) {
	tests := []struct {
		name   string
		before []Event
		ev     Event
		field  string
		msg    string
	}{
		{"unknown phase", nil, on(TypePhaseStarted, "Z", 1), "phase", "build b has no phase Z"},
		{"start a running phase", []Event{on(TypePhaseStarted, "A", 1)}, on(TypePhaseStarted, "A", 2), "phase", "phase A is running, not pending"},
		{"step in a pending phase", nil, on(TypeStepCompleted, "A", 1), "phase", "phase A is pending, not running"},
		{"step in a completed phase", []Event{on(TypePhaseStarted, "A", 1), on(TypePhaseCompleted, "A", 2)}, on(TypeStepCompleted, "A", 3), "phase", "phase A is completed, not running"},
		{"step in a milestone phase", []Event{on(TypePhaseStarted, "M", 1)}, on(TypeStepCompleted, "M", 2), "type", "milestone_reached"},
		{"steps beyond the plan", []Event{on(TypePhaseStarted, "A", 1), on(TypeStepCompleted, "A", 2)}, Event{Type: TypeStepCompleted, BuildID: "b", Phase: "A", Count: 2, Time: sec(3)}, "count", "phase A has 1 of 2 steps completed"},
		{"steps beyond MaxSteps in an unplanned phase", []Event{on(TypePhaseStarted, "C", 1), {Type: TypeStepCompleted, BuildID: "b", Phase: "C", Count: MaxSteps, Time: sec(2)}}, on(TypeStepCompleted, "C", 3), "count", "would exceed"},
		{"milestone in a pending phase", nil, Event{Type: TypeMilestoneReached, BuildID: "b", Phase: "M", Step: "m1", Time: sec(1)}, "phase", "not running"},
		{"unknown milestone", []Event{on(TypePhaseStarted, "M", 1)}, Event{Type: TypeMilestoneReached, BuildID: "b", Phase: "M", Step: "m9", Time: sec(2)}, "step", `no milestone "m9"`},
		{"milestone twice", []Event{on(TypePhaseStarted, "M", 1), {Type: TypeMilestoneReached, BuildID: "b", Phase: "M", Step: "m1", Time: sec(2)}}, Event{Type: TypeMilestoneReached, BuildID: "b", Phase: "M", Step: "m1", Time: sec(3)}, "step", "already reached"},
		{"complete a pending phase", nil, on(TypePhaseCompleted, "A", 1), "phase", "not running"},
		{"complete before the start", []Event{on(TypePhaseStarted, "A", 5)}, on(TypePhaseCompleted, "A", 4), "time", "before it started"},
		{"fail a completed phase", []Event{on(TypePhaseStarted, "A", 1), on(TypePhaseCompleted, "A", 2)}, on(TypePhaseFailed, "A", 3), "phase", "not pending or running"},
		{"fail before the start", []Event{on(TypePhaseStarted, "A", 5)}, on(TypePhaseFailed, "A", 4), "time", "before it started"},
		{"skip a running phase", []Event{on(TypePhaseStarted, "A", 1)}, on(TypePhaseSkipped, "A", 2), "phase", "not pending"},
		{"skip a skipped phase", []Event{on(TypePhaseSkipped, "A", 1)}, on(TypePhaseSkipped, "A", 2), "phase", "not pending"},
		{"finish before the build started", nil, Event{Type: TypeBuildFinished, BuildID: "b", Result: "success", Time: tBase.Add(-time.Second)}, "time", "before it started"},
		{"finish before a running phase started", []Event{on(TypePhaseStarted, "A", 10)}, Event{Type: TypeBuildFinished, BuildID: "b", Result: "success", Time: sec(9)}, "time", "before its running phase A started"},
		{"anything after the finish", []Event{{Type: TypeBuildFinished, BuildID: "b", Result: "success", Time: sec(1)}}, on(TypePhaseStarted, "A", 2), "type", "already finished"},
		{"finish twice", []Event{{Type: TypeBuildFinished, BuildID: "b", Result: "success", Time: sec(1)}}, Event{Type: TypeBuildFinished, BuildID: "b", Result: "failure", Time: sec(2)}, "type", "already finished"},
		{"an unknown type", nil, Event{Type: TypeUnknown, BuildID: "b", Phase: "A", Time: sec(1)}, "type", "unexpected event type"},
		{"build_started applied to a build", nil, Event{Type: TypeBuildStarted, BuildID: "b", Phase: "A", Time: sec(1)}, "type", "unexpected event type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBuild(t)
			applyAll(t, b, nil, tt.before...)
			before := b.snapshot()
			var spans []SpanRecord
			err := apply(b, &tt.ev, tt.ev.Time, &spans)
			require.NotNil(t, err)
			assert.Equal(t, KindInvalid, err.Kind)
			assert.Equal(t, tt.field, err.Field)
			assert.Contains(t, err.Message, tt.msg)
			assert.Empty(t, spans)
			assert.Equal(t, before, b.snapshot(), "a rejected event changes nothing")
		})
	}
}

// What each accepted event does to a phase: its state, the state it left, its times and its
// count.
func TestApplyPhaseLifecycle(t *testing.T) {
	tests := []struct {
		name      string
		evs       []Event
		phase     int
		state     PhaseState
		left      PhaseState
		start     time.Time
		end       time.Time
		completed int64
		message   string
	}{
		{"started", []Event{on(TypePhaseStarted, "A", 1)}, 0, PhaseRunning, PhasePending, sec(1), time.Time{}, 0, ""},
		{"a step", []Event{on(TypePhaseStarted, "A", 1), on(TypeStepCompleted, "A", 2)}, 0, PhaseRunning, PhasePending, sec(1), time.Time{}, 1, ""},
		{"completed", []Event{on(TypePhaseStarted, "A", 1), on(TypeStepCompleted, "A", 2), on(TypePhaseCompleted, "A", 3)}, 0, PhaseCompleted, PhaseRunning, sec(1), sec(3), 1, ""},
		{"completed at its start", []Event{on(TypePhaseStarted, "A", 1), on(TypePhaseCompleted, "A", 1)}, 0, PhaseCompleted, PhaseRunning, sec(1), sec(1), 0, ""},
		{"failed while running", []Event{on(TypePhaseStarted, "A", 1), {Type: TypePhaseFailed, BuildID: "b", Phase: "A", Message: "boom", Time: sec(4)}}, 0, PhaseFailed, PhaseRunning, sec(1), sec(4), 0, "boom"},
		{"failed while pending starts when it fails", []Event{{Type: TypePhaseFailed, BuildID: "b", Phase: "A", Message: "no", Time: sec(4)}}, 0, PhaseFailed, PhasePending, sec(4), sec(4), 0, "no"},
		{"skipped", []Event{on(TypePhaseSkipped, "C", 2)}, 2, PhaseSkipped, PhasePending, sec(2), sec(2), 0, ""},
		{"milestones", []Event{on(TypePhaseStarted, "M", 1), {Type: TypeMilestoneReached, BuildID: "b", Phase: "M", Step: "m2", Time: sec(2)}}, 1, PhaseRunning, PhasePending, sec(1), time.Time{}, 1, ""},
		{"steps of an unplanned phase", []Event{on(TypePhaseStarted, "C", 1), {Type: TypeStepCompleted, BuildID: "b", Phase: "C", Count: 40, Time: sec(2)}}, 2, PhaseRunning, PhasePending, sec(1), time.Time{}, 40, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBuild(t)
			applyAll(t, b, nil, tt.evs...)
			ph := b.Phases[tt.phase]
			assert.Equal(t, tt.state, ph.State)
			assert.Equal(t, tt.left, ph.Left)
			assert.Equal(t, tt.start, ph.Start)
			assert.Equal(t, tt.end, ph.End)
			assert.Equal(t, tt.completed, ph.Completed)
			assert.Equal(t, tt.message, ph.Message)
		})
	}
}

// build_finished ends the phases that still run with the build: completed on success, failed
// with a message otherwise; pending phases stay pending.
func TestApplyBuildFinished(t *testing.T) {
	for _, result := range []string{"success", "failure", "error", "timeout", "cancellation"} {
		t.Run(result, func(t *testing.T) {
			b := newTestBuild(t)
			var spans []SpanRecord
			applyAll(t, b, &spans, on(TypePhaseStarted, "A", 1), on(TypePhaseCompleted, "A", 2), on(TypePhaseStarted, "M", 3))
			spans = nil
			fin := Event{Type: TypeBuildFinished, BuildID: "b", Result: result, Message: "done", Time: sec(9)}
			require.Nil(t, apply(b, &fin, fin.Time, &spans))
			assert.True(t, b.Done())
			assert.Equal(t, sec(9), b.Finished)
			assert.Equal(t, result, b.Result)
			assert.Equal(t, "done", b.Message)
			assert.Equal(t, PhaseCompleted, b.Phases[0].State, "ended before: untouched")
			assert.Equal(t, sec(2), b.Phases[0].End)
			m := b.Phases[1]
			assert.Equal(t, sec(9), m.End)
			assert.Equal(t, PhaseRunning, m.Left)
			if result == "success" {
				assert.Equal(t, PhaseCompleted, m.State)
				assert.Empty(t, m.Message)
			} else {
				assert.Equal(t, PhaseFailed, m.State)
				assert.Equal(t, "build finished with "+result, m.Message)
			}
			assert.Equal(t, PhasePending, b.Phases[2].State)
			require.Len(t, spans, 2, "the phase that ended with the build, then the build")
			assert.Equal(t, "M", spans[0].Phase)
			assert.Equal(t, sec(3), spans[0].Start)
			assert.Equal(t, sec(9), spans[0].End)
			assert.Equal(t, SpanRecord{Build: b.ident(), Start: tBase, End: sec(9), Result: result, Message: "done"}, spans[1])
		})
	}
}

// Steps follow each other: a step span starts when the previous one ended, the first when the
// phase started; a count > 1 is one span numbered by its last step.
func TestApplyStepSpans(t *testing.T) {
	b := newTestBuild(t)
	var spans []SpanRecord
	applyAll(t, b, &spans,
		on(TypePhaseStarted, "C", 1),
		Event{Type: TypeStepCompleted, BuildID: "b", Phase: "C", Step: "compile", Count: 1, Time: sec(3)},
		Event{Type: TypeStepCompleted, BuildID: "b", Phase: "C", Count: 3, Time: sec(7)},
		on(TypePhaseCompleted, "C", 8),
		on(TypePhaseStarted, "M", 8),
		Event{Type: TypeMilestoneReached, BuildID: "b", Phase: "M", Step: "m2", Time: sec(10)},
		Event{Type: TypeMilestoneReached, BuildID: "b", Phase: "M", Step: "m1", Time: sec(12)},
		Event{Type: TypePhaseFailed, BuildID: "b", Phase: "M", Message: "red", Time: sec(13)},
		on(TypePhaseSkipped, "A", 14),
	)
	id := b.ident()
	assert.Equal(t, []SpanRecord{
		{Build: id, Phase: "C", Step: "compile", StepNumber: 1, StepCount: 1, Start: sec(1), End: sec(3), Result: "success"},
		{Build: id, Phase: "C", StepNumber: 4, StepCount: 3, Start: sec(3), End: sec(7), Result: "success"},
		{Build: id, Phase: "C", Start: sec(1), End: sec(8), Result: "success"},
		{Build: id, Phase: "M", Step: "m2", StepNumber: 1, StepCount: 1, Start: sec(8), End: sec(10), Result: "success"},
		{Build: id, Phase: "M", Step: "m1", StepNumber: 2, StepCount: 1, Start: sec(10), End: sec(12), Result: "success"},
		{Build: id, Phase: "M", Start: sec(8), End: sec(13), Result: "failure", Message: "red"},
		{Build: id, Phase: "A", Start: sec(14), End: sec(14), Result: "skip"},
	}, spans)
	assert.Equal(t, []bool{true, true}, b.Phases[1].Reached)
	assert.Same(t, id, spans[0].Build, "the spans of a build share one identity")
}

// Without a span sink (no traces consumer) the transitions are the same and nothing panics.
func TestApplyWithoutSpans(t *testing.T) {
	withSpans, without := newTestBuild(t), newTestBuild(t)
	evs := []Event{on(TypePhaseStarted, "A", 1), on(TypeStepCompleted, "A", 2), on(TypePhaseCompleted, "A", 3), {Type: TypeBuildFinished, BuildID: "b", Result: "success", Time: sec(4)}}
	var spans []SpanRecord
	applyAll(t, withSpans, &spans, evs...)
	applyAll(t, without, nil, evs...)
	assert.Equal(t, withSpans.snapshot(), without.snapshot())
	assert.Len(t, spans, 3)
}

func TestStepStart(t *testing.T) {
	tests := []struct {
		name        string
		start, last time.Time
		want        time.Time
	}{
		{"first step", sec(5), time.Time{}, sec(5)},
		{"after a step", sec(5), sec(8), sec(8)},
		{"a step dated before the phase", sec(5), sec(3), sec(5)},
		{"at the start", sec(5), sec(5), sec(5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, stepStart(&Phase{Start: tt.start, LastStep: tt.last}))
		})
	}
}

func TestEndsAfterStart(t *testing.T) {
	assert.Nil(t, endsAfterStart(&Phase{Name: "A"}, sec(1)), "never started: any end")
	assert.Nil(t, endsAfterStart(&Phase{Name: "A", Start: sec(1)}, sec(1)))
	assert.Nil(t, endsAfterStart(&Phase{Name: "A", Start: sec(1)}, sec(2)))
	err := endsAfterStart(&Phase{Name: "A", Start: sec(2)}, sec(1))
	require.NotNil(t, err)
	assert.Equal(t, "time", err.Field)
	assert.Equal(t, "phase A cannot end at 2026-11-28T12:00:01Z, before it started at 2026-11-28T12:00:02Z", err.Message)
}

func TestMoveToRemembersTheLeftState(t *testing.T) {
	ph := Phase{State: PhasePending}
	ph.moveTo(PhaseRunning)
	assert.Equal(t, Phase{State: PhaseRunning, Left: PhasePending}, ph)
	ph.moveTo(PhaseFailed)
	assert.Equal(t, Phase{State: PhaseFailed, Left: PhaseRunning}, ph)
}
