package events // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"

import (
	"time"
)

// SpanRecord is a finished piece of a build's timeline: the build, a phase or a step.
type SpanRecord struct {
	Build      *Identity
	Phase      string
	Step       string // step or milestone name; empty for phase and build spans
	StepNumber int64  // 1-based number of the last step the span covers; 0 for phase and build spans
	StepCount  int64  // steps the span covers: the event's count (1 for milestones)
	Start, End time.Time
	Result     string // success, failure, skip, or the build's result
	Message    string
}

// maxPendingSpans bounds the spans kept when no traces consumer takes them.
const maxPendingSpans = 100_000

// RecordSpans switches the recording of spans on (a traces consumer exists) or off.
func (r *Registry) RecordSpans(on bool) {
	r.mu.Lock()
	r.recordSpans = on
	r.mu.Unlock()
}

func phaseSpan(b *Build, ph *Phase) SpanRecord {
	res := map[PhaseState]string{PhaseCompleted: "success", PhaseFailed: "failure", PhaseSkipped: "skip"}[ph.State]
	return SpanRecord{Build: b.ident(), Phase: ph.Name, Start: ph.Start, End: ph.End, Result: res, Message: ph.Message}
}

// TakeSpans returns the finished spans recorded since the last call.
func (r *Registry) TakeSpans() []SpanRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.spans
	r.spans = nil
	return s
}
