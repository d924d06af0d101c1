package events // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// PhaseState is the state of one phase of a build.
type PhaseState string

// Phase states (values of the build.phase.state attribute).
const (
	PhasePending   PhaseState = "pending"
	PhaseRunning   PhaseState = "running"
	PhaseCompleted PhaseState = "completed"
	PhaseFailed    PhaseState = "failed"
	PhaseSkipped   PhaseState = "skipped"
)

// Phase is a phase of a build as the registry tracks it.
type Phase struct {
	Name       string     `json:"name"`
	Steps      int64      `json:"steps_total"` // 0: unknown; for milestone phases the number of milestones
	Milestones []string   `json:"milestones,omitempty"`
	Reached    []bool     `json:"milestones_reached,omitempty"`
	Weight     *float64   `json:"weight,omitempty"`
	Completed  int64      `json:"steps_completed"`
	State      PhaseState `json:"state"`
	Left       PhaseState `json:"left_state,omitempty"` // the state before State ("" while pending)
	Start      time.Time  `json:"started_at,omitzero"`
	End        time.Time  `json:"ended_at,omitzero"`
	LastStep   time.Time  `json:"last_step_at,omitzero"`
	Message    string     `json:"message,omitempty"`
}

// Build is one build (pipeline run) in the registry. The registry owns it: callers get copies.
type Build struct {
	ID         string     `json:"id"`
	Pipeline   string     `json:"pipeline"`
	Attributes Attributes `json:"attributes"`
	Host       string     `json:"host"`
	Phases     []Phase    `json:"phases"`
	Started    time.Time  `json:"started_at"`
	Finished   time.Time  `json:"finished_at,omitzero"`
	// FinishedObserved is when the receiver saw the build finish, on its own clock: expiry
	// counts from it, never from the client's time.
	FinishedObserved time.Time `json:"finished_observed_at,omitzero"`
	Result           string    `json:"result,omitempty"`
	Message          string    `json:"message,omitempty"`
	Updated          time.Time `json:"updated_at"`
	// EventIDs are the ids of recent events, oldest first, for idempotent retries.
	EventIDs []string `json:"event_ids,omitempty"`

	ids      map[string]struct{}
	identity *Identity // shared by the build's spans
	// changed marks a staged copy that an accepted event changed; copies that only served
	// lookups (duplicates, errors) are not committed over the registry's build.
	changed bool
}

// Identity is what a span needs of its build: id and resource attributes.
type Identity struct {
	ID         string
	Pipeline   string
	Attributes Attributes
	Host       string
	Started    time.Time
}

func (b *Build) ident() *Identity {
	if b.identity == nil {
		b.identity = &Identity{ID: b.ID, Pipeline: b.Pipeline, Attributes: b.Attributes, Host: b.Host, Started: b.Started}
	}
	return b.identity
}

// Done reports whether the build finished.
func (b *Build) Done() bool { return !b.Finished.IsZero() }

func (b *Build) phase(name string) *Phase {
	for i := range b.Phases {
		if b.Phases[i].Name == name {
			return &b.Phases[i]
		}
	}
	return nil
}

// clone copies everything that apply mutates; EventIDs and ids are shared and only changed on
// commit.
func (b *Build) clone() *Build {
	c := *b
	c.Phases = slices.Clone(b.Phases)
	for i := range c.Phases {
		if c.Phases[i].Reached != nil {
			c.Phases[i].Reached = slices.Clone(c.Phases[i].Reached)
		}
	}
	return &c
}

// Snapshot returns a deep copy that the caller may keep.
func (b *Build) Snapshot() Build {
	c := b.clone()
	c.EventIDs = nil
	c.ids = nil
	c.changed = false
	return *c
}

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

// Options bound the registry.
type Options struct {
	MaxBuilds       int           // tracked builds at once, running or finished
	MaxEventIDs     int           // remembered event ids per build
	FinishedTTL     time.Duration // how long a finished build stays
	DefaultHostname string        // host of builds that name none
}

// Registry holds the in-flight builds. All methods are safe for concurrent use.
type Registry struct {
	opts Options

	mu     sync.Mutex        // guards everything below
	builds map[string]*Build // by id
	// dirty holds the builds changed since TakeDirty (to emit), unsaved those changed (true)
	// or removed (false) since TakeUnsaved (to persist).
	dirty   map[string]struct{}
	unsaved map[string]bool
	spans   []SpanRecord // finished spans not yet taken
	// recordSpans is set when a traces consumer takes the spans.
	recordSpans bool
}

// RecordSpans switches the recording of spans on (a traces consumer exists) or off.
func (r *Registry) RecordSpans(on bool) {
	r.mu.Lock()
	r.recordSpans = on
	r.mu.Unlock()
}

// NewRegistry returns an empty registry.
func NewRegistry(opts Options) *Registry {
	return &Registry{opts: opts, builds: map[string]*Build{}, dirty: map[string]struct{}{}, unsaved: map[string]bool{}}
}

// maxPendingSpans bounds the spans kept when no traces consumer takes them.
const maxPendingSpans = 100_000

// Result is what Apply did with a request.
type Result struct {
	Accepted   int
	Duplicates int
}

// Apply applies a request's events in order, all or nothing: if one event is invalid in the
// state the earlier ones left, nothing changes and the error names that event. Events whose
// id the build has seen already count as duplicates and change nothing. now is the
// receiver's clock: the time of events without one, and when a finished build was seen to
// finish. Apply must not run while a Stage is open.
func (r *Registry) Apply(evs []Event, now time.Time) (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.newStage(nil)
	res, err := r.stage(st, evs, now)
	if err != nil {
		return Result{}, err
	}
	if res.Accepted > 0 {
		r.commit(st, true)
	}
	return res, nil
}

// Stage holds the changes of requests applied on top of the registry but not yet part of it,
// so that they can be written to storage first and committed only once that write
// succeeded, or dropped. Each request in a stage is still all or nothing, and sees the
// changes of the requests staged before it. At most one Stage is open at a time, and Apply
// does not run meanwhile: the registry's writer owns it. Expire and the readers may run.
type Stage struct {
	r      *Registry
	parent *Stage              // the group a request's stage is merged into; nil for the group
	work   map[string]*Build   // the builds the staged requests change, as they would be
	newIDs map[string][]string // event ids the staged requests add, per build, in order
	// ids holds newIDs as a set, in the group's stage only.
	ids     map[eventKey]struct{}
	created int          // builds the staged requests start
	spans   []SpanRecord // spans the staged requests finish
	changed bool         // some staged request was accepted
}

type eventKey struct{ build, id string }

// NewStage opens an empty stage.
func (r *Registry) NewStage() *Stage {
	s := r.newStage(nil)
	s.ids = map[eventKey]struct{}{}
	return s
}

func (r *Registry) newStage(parent *Stage) *Stage {
	return &Stage{r: r, parent: parent, work: make(map[string]*Build, 1)}
}

// Apply applies a request's events on top of the stage, all or nothing, as Registry.Apply
// does on top of the registry.
func (s *Stage) Apply(evs []Event, now time.Time) (Result, error) {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	req := r.newStage(s)
	res, err := r.stage(req, evs, now)
	if err != nil {
		return Result{}, err
	}
	if res.Accepted > 0 {
		s.merge(req)
	}
	return res, nil
}

// Changed reports whether a staged request changed anything, i.e. whether there is something
// to write and commit.
func (s *Stage) Changed() bool { return s.changed }

// Changes returns copies of the builds the stage changes, as they are after a commit (event
// ids included), sorted by id: what must be written before the stage is committed.
func (s *Stage) Changes() []Change {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Change, 0, len(s.work))
	for id, b := range s.work {
		c := b.Snapshot()
		var kept []string
		if cur := r.builds[id]; cur != nil {
			kept = cur.EventIDs
		}
		c.EventIDs = r.keptIDs(kept, s.newIDs[id])
		out = append(out, Change{Build: c})
	}
	sortChanges(out)
	return out
}

// Commit makes the staged changes part of the registry. They are taken as written: Commit
// does not mark them for the next TakeUnsaved.
func (s *Stage) Commit() {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.changed {
		r.commit(s, false)
	}
}

// merge adds an accepted request's stage to its group.
func (s *Stage) merge(req *Stage) {
	for id, b := range req.work {
		if b.changed {
			s.work[id] = b
		}
	}
	for id, ids := range req.newIDs {
		if s.newIDs == nil {
			s.newIDs = map[string][]string{}
		}
		s.newIDs[id] = append(s.newIDs[id], ids...)
		for _, e := range ids {
			s.ids[eventKey{id, e}] = struct{}{}
		}
	}
	s.created += req.created
	s.spans = append(s.spans, req.spans...)
	s.changed = true
}

// stage applies one request's events to st, whose parent (if any) holds the requests staged
// before it. r.mu is held.
func (r *Registry) stage(st *Stage, evs []Event, now time.Time) (Result, error) {
	var res Result
	var spans []SpanRecord
	spansOut := &spans
	if r.recordSpans {
		spans = make([]SpanRecord, 0, len(evs)) // most events end one span
	} else {
		spansOut = nil
	}
	created := 0
	if st.parent != nil {
		created = st.parent.created
	}
	for i := range evs {
		ev := &evs[i]
		b := st.work[ev.BuildID]
		if b == nil {
			cur := r.builds[ev.BuildID]
			if st.parent != nil && st.parent.work[ev.BuildID] != nil {
				cur = st.parent.work[ev.BuildID]
			}
			if cur != nil {
				b = cur.clone()
				st.work[ev.BuildID] = b
			}
		}
		if ev.ID != "" && b != nil && st.seen(b, ev.ID) {
			res.Duplicates++
			continue
		}
		ts := ev.Time
		if ts.IsZero() {
			ts = now
		}
		var err *Error
		switch {
		case ev.Type == TypeBuildStarted:
			if b != nil {
				if !samePlan(b, ev) {
					err = &Error{Status: StatusConflict, Field: "build_id", Message: fmt.Sprintf("build %s already started with a different plan", ev.BuildID)}
				} else {
					res.Duplicates++
					continue
				}
				break
			}
			if len(r.builds)+created+st.created >= r.opts.MaxBuilds {
				err = &Error{Status: StatusTooMany, Field: "build_id", Message: fmt.Sprintf("the receiver tracks %d builds already (max_builds)", r.opts.MaxBuilds)}
				break
			}
			b = r.newBuild(ev, ts)
			st.work[ev.BuildID] = b
			st.created++
		case b == nil:
			err = &Error{Status: StatusNotFound, Field: "build_id", Message: fmt.Sprintf("unknown build %s", ev.BuildID)}
		default:
			err = apply(b, ev, ts, spansOut)
			if err == nil && b.Done() && b.FinishedObserved.IsZero() {
				b.FinishedObserved = now
			}
		}
		if err != nil {
			err.Index = i
			if len(evs) == 1 {
				err.Index = -1
			}
			return Result{}, err
		}
		if ev.ID != "" {
			if st.newIDs == nil {
				st.newIDs = map[string][]string{}
			}
			st.newIDs[ev.BuildID] = append(st.newIDs[ev.BuildID], ev.ID)
		}
		if ts.After(b.Updated) {
			b.Updated = ts
		}
		b.changed = true
		res.Accepted++
	}
	st.spans = spans
	st.changed = res.Accepted > 0
	return res, nil
}

// commit makes a stage's changes part of the registry; markUnsaved marks them for the next
// TakeUnsaved. r.mu is held.
func (r *Registry) commit(st *Stage, markUnsaved bool) {
	for id, b := range st.work {
		if !b.changed {
			continue
		}
		b.changed = false
		if old := r.builds[id]; old != nil {
			b.EventIDs, b.ids = old.EventIDs, old.ids
		}
		for _, eid := range st.newIDs[id] {
			r.remember(b, eid)
		}
		r.builds[id] = b
		r.dirty[id] = struct{}{}
		if markUnsaved {
			r.unsaved[id] = true
		}
	}
	if room := maxPendingSpans - len(r.spans); room > 0 && len(st.spans) > 0 {
		spans := st.spans
		if len(spans) > room {
			spans = spans[:room]
		}
		r.spans = append(r.spans, spans...)
	}
}

// seen reports whether build b has seen event id: committed, staged by an earlier request of
// the group, or earlier in this request.
func (s *Stage) seen(b *Build, id string) bool {
	if _, ok := b.ids[id]; ok {
		return true
	}
	if p := s.parent; p != nil {
		if _, ok := p.ids[eventKey{b.ID, id}]; ok {
			return true
		}
	}
	return slices.Contains(s.newIDs[b.ID], id)
}

// keptIDs are the event ids a build remembers after adding added to kept, as remember keeps
// them.
func (r *Registry) keptIDs(kept, added []string) []string {
	if r.opts.MaxEventIDs <= 0 {
		return nil
	}
	all := make([]string, 0, len(kept)+len(added))
	all = append(append(all, kept...), added...)
	if len(all) > r.opts.MaxEventIDs {
		all = all[len(all)-r.opts.MaxEventIDs:]
	}
	return all
}

func (r *Registry) remember(b *Build, id string) {
	if b.ids == nil {
		b.ids = make(map[string]struct{}, len(b.EventIDs)+1)
		for _, e := range b.EventIDs {
			b.ids[e] = struct{}{}
		}
	}
	if r.opts.MaxEventIDs <= 0 {
		return
	}
	if len(b.EventIDs) >= r.opts.MaxEventIDs {
		delete(b.ids, b.EventIDs[0])
		b.EventIDs = b.EventIDs[1:]
	}
	b.EventIDs = append(b.EventIDs, id)
	b.ids[id] = struct{}{}
}

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

// moveTo changes the phase's state and remembers the state it left.
func (ph *Phase) moveTo(s PhaseState) {
	ph.Left, ph.State = ph.State, s
}

// stepStart is when the next step of a running phase began: when the previous one ended, or
// when the phase started.
func stepStart(ph *Phase) time.Time {
	if ph.LastStep.After(ph.Start) {
		return ph.LastStep
	}
	return ph.Start
}

func phaseSpan(b *Build, ph *Phase) SpanRecord {
	res := map[PhaseState]string{PhaseCompleted: "success", PhaseFailed: "failure", PhaseSkipped: "skip"}[ph.State]
	return SpanRecord{Build: b.ident(), Phase: ph.Name, Start: ph.Start, End: ph.End, Result: res, Message: ph.Message}
}

// Get returns a copy of one build.
func (r *Registry) Get(id string) (Build, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.builds[id]
	if !ok {
		return Build{}, false
	}
	return b.Snapshot(), true
}

// Len is the number of tracked builds.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.builds)
}

// Change is a build that changed; a Removed change has only the build's ID.
type Change struct {
	Build   Build
	Removed bool
}

// TakeDirty returns copies of the builds changed since the last call (or All), sorted by id,
// for emission, and forgets them.
func (r *Registry) TakeDirty() []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Change, 0, len(r.dirty))
	for id := range r.dirty {
		if b, ok := r.builds[id]; ok {
			out = append(out, Change{Build: b.Snapshot()})
		}
	}
	clear(r.dirty)
	sortChanges(out)
	return out
}

// All returns copies of every tracked build, sorted by id, for the periodic emission; the
// changed builds are among them, so it clears the set that TakeDirty returns.
func (r *Registry) All() []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Change, 0, len(r.builds))
	for _, b := range r.builds {
		out = append(out, Change{Build: b.Snapshot()})
	}
	clear(r.dirty)
	sortChanges(out)
	return out
}

// TakeUnsaved returns the builds changed or removed since the last call, for persistence:
// copies with their event ids, so that a restored build still knows them.
func (r *Registry) TakeUnsaved() []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Change, 0, len(r.unsaved))
	for id := range r.unsaved {
		b, ok := r.builds[id]
		if !ok {
			out = append(out, Change{Build: Build{ID: id}, Removed: true})
			continue
		}
		c := b.Snapshot()
		c.EventIDs = slices.Clone(b.EventIDs)
		out = append(out, Change{Build: c})
	}
	clear(r.unsaved)
	sortChanges(out)
	return out
}

// MarkUnsaved puts builds whose persistence failed back, so that the next TakeUnsaved
// returns them again (as they are then).
func (r *Registry) MarkUnsaved(changes []Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range changes {
		if _, ok := r.unsaved[c.Build.ID]; !ok {
			_, tracked := r.builds[c.Build.ID]
			r.unsaved[c.Build.ID] = tracked
		}
	}
}

func sortChanges(cs []Change) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].Build.ID < cs[j].Build.ID })
}

// TakeSpans returns the finished spans recorded since the last call.
func (r *Registry) TakeSpans() []SpanRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.spans
	r.spans = nil
	return s
}

// Expire removes builds that the receiver saw finish more than FinishedTTL before now, on its
// own clock: a client's time neither shortens nor extends their stay.
func (r *Registry) Expire(now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for id, b := range r.builds {
		if b.Done() && now.Sub(b.FinishedObserved) > r.opts.FinishedTTL {
			delete(r.builds, id)
			delete(r.dirty, id)
			r.unsaved[id] = false
			n++
		}
	}
	return n
}

// Restore puts builds loaded from storage back, as they were, and marks them changed so that
// their state is emitted at once. Past MaxBuilds it keeps the running builds first, then the
// most recently updated, and returns the ids of the builds it dropped (and marks them removed
// in storage). A finished build stored without the time the receiver saw it finish counts
// from now, the time of the restore (and is marked to be written with it).
func (r *Registry) Restore(builds []Build, now time.Time) (dropped []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	builds = slices.Clone(builds)
	sort.SliceStable(builds, func(i, j int) bool {
		if builds[i].Done() != builds[j].Done() {
			return !builds[i].Done()
		}
		return builds[i].Updated.After(builds[j].Updated)
	})
	for i := range builds {
		b := builds[i]
		if len(r.builds) >= r.opts.MaxBuilds {
			dropped = append(dropped, b.ID)
			r.unsaved[b.ID] = false
			continue
		}
		if len(b.EventIDs) > r.opts.MaxEventIDs {
			b.EventIDs = b.EventIDs[len(b.EventIDs)-r.opts.MaxEventIDs:]
		}
		b.ids = make(map[string]struct{}, len(b.EventIDs))
		for _, e := range b.EventIDs {
			b.ids[e] = struct{}{}
		}
		if b.Done() && b.FinishedObserved.IsZero() {
			b.FinishedObserved = now
			r.unsaved[b.ID] = true
		}
		r.builds[b.ID] = &b
		r.dirty[b.ID] = struct{}{}
	}
	return dropped
}
