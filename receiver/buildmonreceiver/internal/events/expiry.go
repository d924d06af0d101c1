package events // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"

import (
	"slices"
	"sort"
	"time"
)

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
