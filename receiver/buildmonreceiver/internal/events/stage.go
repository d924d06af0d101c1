package events // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"

import (
	"fmt"
	"slices"
	"time"
)

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
	return s.ApplyChecked(evs, now, nil)
}

// ApplyChecked is Apply with a Check, as Registry.ApplyChecked.
func (s *Stage) ApplyChecked(evs []Event, now time.Time, check Check) (Result, error) {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	req := r.newStage(s)
	res, err := r.stage(req, evs, now, check)
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
		c := b.snapshot()
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
// before it; check (if not nil) decides for each event's build first. r.mu is held.
func (r *Registry) stage(st *Stage, evs []Event, now time.Time, check Check) (Result, error) {
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
		entered := false // b enters this request's stage: the first event of its build
		if b == nil {
			cur := r.builds[ev.BuildID]
			if st.parent != nil && st.parent.work[ev.BuildID] != nil {
				cur = st.parent.work[ev.BuildID]
			}
			if cur != nil {
				b = cur.clone()
				st.work[ev.BuildID] = b
				entered = true
			}
		}
		// A build's pipeline and host never change, so each build of the request is checked
		// once: when its first event loads it, or when build_started creates it. The check
		// comes before duplicates and conflicts, which would tell a subject about a build it
		// may not touch.
		if check != nil && (entered || (b == nil && ev.Type == TypeBuildStarted)) {
			pipeline, host := ev.Pipeline, ev.Attributes.Host
			if b != nil {
				pipeline, host = b.Pipeline, b.Host
			} else if host == "" {
				host = r.opts.DefaultHostname
			}
			if cerr := check(pipeline, host); cerr != nil {
				e := &Error{Kind: KindForbidden, Field: "build_id", Message: cerr.Error(), Index: i, Err: cerr}
				if len(evs) == 1 {
					e.Index = -1
				}
				return Result{}, e
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
		fresh := false // b is created by this event
		switch {
		case ev.Type == TypeBuildStarted:
			if b != nil {
				if !samePlan(b, ev) {
					err = &Error{Kind: KindConflict, Field: "build_id", Message: fmt.Sprintf("build %s already started with a different plan", ev.BuildID)}
				} else {
					res.Duplicates++
					continue
				}
				break
			}
			if len(r.builds)+created+st.created >= r.opts.MaxBuilds {
				err = &Error{Kind: KindTooManyBuilds, Field: "build_id", Message: fmt.Sprintf("the receiver tracks %d builds already (max_builds)", r.opts.MaxBuilds)}
				break
			}
			b, fresh = r.newBuild(ev, ts), true
			st.work[ev.BuildID] = b
			st.created++
		case b == nil:
			err = &Error{Kind: KindUnknownBuild, Field: "build_id", Message: fmt.Sprintf("unknown build %s", ev.BuildID)}
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
		switch {
		case ts.After(b.Updated):
			b.Updated = ts
		case !b.changed && !fresh:
			// A change dated no later than the build's newest: its points still need a time
			// of their own, a millisecond on (Prometheus keeps milliseconds and refuses a
			// second value at a time it has; clients that send whole seconds do this).
			b.Updated = b.Updated.Add(time.Millisecond)
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
