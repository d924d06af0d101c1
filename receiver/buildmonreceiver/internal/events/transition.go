package events // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"

import (
	"slices"
	"time"
)

func (r *Registry) newBuild(ev *Event, ts time.Time) *Build {
	b := &Build{ID: ev.BuildID, Pipeline: ev.Pipeline, Attributes: ev.Attributes, Host: ev.Attributes.Host, Started: ts, Updated: ts}
	if b.Host == "" {
		b.Host = r.opts.DefaultHostname
	}
	b.Phases = make([]Phase, len(ev.Phases))
	for i, p := range ev.Phases {
		ph := Phase{Name: p.Name, Steps: p.Steps, Weight: p.Weight, State: PhasePending}
		if len(p.Milestones) > 0 {
			ph.Milestones = slices.Clone(p.Milestones)
			ph.Reached = make([]bool, len(p.Milestones))
			ph.Steps = int64(len(p.Milestones))
		}
		b.Phases[i] = ph
	}
	return b
}

func samePlan(b *Build, ev *Event) bool {
	if b.Pipeline != ev.Pipeline || len(b.Phases) != len(ev.Phases) {
		return false
	}
	for i, p := range ev.Phases {
		ph := b.Phases[i]
		if ph.Name != p.Name || !slices.Equal(ph.Milestones, p.Milestones) || (len(p.Milestones) == 0 && ph.Steps != p.Steps) {
			return false
		}
	}
	return true
}

// apply changes b by one event, or says why the event is invalid in b's state. Finished spans
// go to spans unless it is nil.
func apply(b *Build, ev *Event, ts time.Time, spans *[]SpanRecord) *Error {
	record := func(s SpanRecord) {
		if spans != nil {
			*spans = append(*spans, s)
		}
	}
	if b.Done() {
		return invalid("type", "build %s already finished", b.ID)
	}
	if ev.Type == TypeBuildFinished {
		if ts.Before(b.Started) {
			return invalid("time", "build %s cannot finish at %s, before it started at %s", b.ID, ts.Format(time.RFC3339Nano), b.Started.Format(time.RFC3339Nano))
		}
		for i := range b.Phases {
			if ph := &b.Phases[i]; ph.State == PhaseRunning && ts.Before(ph.Start) {
				return invalid("time", "build %s cannot finish at %s, before its running phase %s started at %s", b.ID, ts.Format(time.RFC3339Nano), ph.Name, ph.Start.Format(time.RFC3339Nano))
			}
		}
		b.Finished, b.Result, b.Message = ts, ev.Result, ev.Message
		for i := range b.Phases {
			ph := &b.Phases[i]
			if ph.State != PhaseRunning {
				continue
			}
			// A phase still running when the build ends ends with it.
			ph.End = ts
			if ev.Result == "success" {
				ph.moveTo(PhaseCompleted)
			} else {
				ph.moveTo(PhaseFailed)
				ph.Message = "build finished with " + ev.Result
			}
			record(phaseSpan(b, ph))
		}
		record(SpanRecord{Build: b.ident(), Start: b.Started, End: ts, Result: ev.Result, Message: ev.Message})
		return nil
	}
	ph := b.phase(ev.Phase)
	if ph == nil {
		return invalid("phase", "build %s has no phase %s", b.ID, ev.Phase)
	}
	switch ev.Type {
	case TypePhaseStarted:
		if ph.State != PhasePending {
			return invalid("phase", "phase %s is %s, not pending", ph.Name, ph.State)
		}
		ph.moveTo(PhaseRunning)
		ph.Start = ts
	case TypeStepCompleted:
		if ph.State != PhaseRunning {
			return invalid("phase", "phase %s is %s, not running", ph.Name, ph.State)
		}
		if ph.Milestones != nil {
			return invalid("type", "phase %s has milestones: report them with milestone_reached", ph.Name)
		}
		if ph.Steps > 0 && ph.Completed+ev.Count > ph.Steps {
			return invalid("count", "step beyond the plan: phase %s has %d of %d steps completed", ph.Name, ph.Completed, ph.Steps)
		}
		if ph.Completed+ev.Count > MaxSteps {
			return invalid("count", "phase %s would exceed %d steps", ph.Name, MaxSteps)
		}
		ph.Completed += ev.Count
		// One span per event: the steps of a count > 1 have no times of their own.
		record(SpanRecord{Build: b.ident(), Phase: ph.Name, Step: ev.Step, StepNumber: ph.Completed, StepCount: ev.Count, Start: stepStart(ph), End: ts, Result: "success"})
		ph.LastStep = ts
	case TypeMilestoneReached:
		if ph.State != PhaseRunning {
			return invalid("phase", "phase %s is %s, not running", ph.Name, ph.State)
		}
		i := slices.Index(ph.Milestones, ev.Step)
		if i < 0 {
			return invalid("step", "phase %s has no milestone %q", ph.Name, ev.Step)
		}
		if ph.Reached[i] {
			return invalid("step", "milestone %q of phase %s already reached", ev.Step, ph.Name)
		}
		ph.Reached[i] = true
		ph.Completed++
		record(SpanRecord{Build: b.ident(), Phase: ph.Name, Step: ev.Step, StepNumber: ph.Completed, StepCount: 1, Start: stepStart(ph), End: ts, Result: "success"})
		ph.LastStep = ts
	case TypePhaseCompleted:
		if ph.State != PhaseRunning {
			return invalid("phase", "phase %s is %s, not running", ph.Name, ph.State)
		}
		if err := endsAfterStart(ph, ts); err != nil {
			return err
		}
		ph.moveTo(PhaseCompleted)
		ph.End = ts
		record(phaseSpan(b, ph))
	case TypePhaseFailed:
		if ph.State != PhaseRunning && ph.State != PhasePending {
			return invalid("phase", "phase %s is %s, not pending or running", ph.Name, ph.State)
		}
		if err := endsAfterStart(ph, ts); err != nil {
			return err
		}
		if ph.Start.IsZero() {
			ph.Start = ts
		}
		ph.moveTo(PhaseFailed)
		ph.End, ph.Message = ts, ev.Message
		record(phaseSpan(b, ph))
	case TypePhaseSkipped:
		if ph.State != PhasePending {
			return invalid("phase", "phase %s is %s, not pending", ph.Name, ph.State)
		}
		ph.moveTo(PhaseSkipped)
		ph.Start, ph.End = ts, ts
		record(phaseSpan(b, ph))
	default:
		return invalid("type", "unexpected event type")
	}
	return nil
}

// endsAfterStart says why a phase cannot end at ts: before it started. A phase that never
// started (failing from pending) starts when it ends.
func endsAfterStart(ph *Phase, ts time.Time) *Error {
	if !ph.Start.IsZero() && ts.Before(ph.Start) {
		return invalid("time", "phase %s cannot end at %s, before it started at %s", ph.Name, ts.Format(time.RFC3339Nano), ph.Start.Format(time.RFC3339Nano))
	}
	return nil
}

// stepStart is when the next step of a running phase began: when the previous one ended, or
// when the phase started.
func stepStart(ph *Phase) time.Time {
	if ph.LastStep.After(ph.Start) {
		return ph.LastStep
	}
	return ph.Start
}
