package events // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"

import (
	"slices"
	"sort"
	"sync"
	"time"
)

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

// NewRegistry returns an empty registry.
func NewRegistry(opts Options) *Registry {
	return &Registry{opts: opts, builds: map[string]*Build{}, dirty: map[string]struct{}{}, unsaved: map[string]bool{}}
}

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
	return r.ApplyChecked(evs, now, nil)
}

// Check decides whether a request may change a build of pipeline on host; a non-nil error
// refuses the whole request.
type Check func(pipeline, host string) error

// ApplyChecked is Apply with a Check of every event's build, as the registry knows it (or as
// its build_started names it) when the event is applied, so that no other request can change
// the build in between: if check refuses one event, nothing changes and the error, of kind
// KindForbidden, wraps check's error. A nil check allows everything.
func (r *Registry) ApplyChecked(evs []Event, now time.Time, check Check) (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.newStage(nil)
	res, err := r.stage(st, evs, now, check)
	if err != nil {
		return Result{}, err
	}
	if res.Accepted > 0 {
		r.commit(st, true)
	}
	return res, nil
}

// Get returns a copy of one build.
func (r *Registry) Get(id string) (Build, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.builds[id]
	if !ok {
		return Build{}, false
	}
	return b.snapshot(), true
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
			out = append(out, Change{Build: b.snapshot()})
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
		out = append(out, Change{Build: b.snapshot()})
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
		c := b.snapshot()
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
