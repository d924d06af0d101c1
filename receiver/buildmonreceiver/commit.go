package buildmonreceiver // import "github.com/buildmon/buildmon/receiver/buildmonreceiver"

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"
)

// errNotStored answers a request whose changes could not be written to storage: nothing of
// it changed, and the client may send it again.
var errNotStored = errors.New("the build registry could not be written to storage; nothing was changed, retry")

// errStoreClosed is the write error once Shutdown closed the storage client.
var errStoreClosed = errors.New("storage client closed")

// commitRequest is one request's events on their way through the committer.
type commitRequest struct {
	evs   []events.Event
	now   time.Time
	check events.Check // the request's access check; nil without access rules
	res   events.Result
	err   error
	done  chan struct{} // receives once the request is answered
}

var commitRequests = sync.Pool{New: func() any { return &commitRequest{done: make(chan struct{}, 1)} }}

// maxCommitGroup bounds the requests that one storage write carries.
const maxCommitGroup = 256

// apply applies a request's events to the registry. Without storage they are applied at once.
// With storage the committer applies them, writes them and only then commits them: an
// accepted event is in storage when apply returns, and a failed write changes nothing and
// returns errNotStored. check (nil without access rules) decides for each event's build.
func (r *buildmonReceiver) apply(evs []events.Event, now time.Time, check events.Check) (events.Result, error) {
	if !r.persistent {
		return r.registry.ApplyChecked(evs, now, check)
	}
	c := commitRequests.Get().(*commitRequest)
	c.evs, c.now, c.check = evs, now, check
	select {
	case r.commits <- c:
	case <-r.commitStop:
		c.evs, c.check = nil, nil
		commitRequests.Put(c)
		return events.Result{}, errNotStored
	}
	<-c.done
	res, err := c.res, c.err
	c.evs, c.check, c.res, c.err = nil, nil, events.Result{}, nil
	commitRequests.Put(c)
	return res, err
}

// commitLoop is the registry's only writer while storage is configured (group commit): it
// takes the requests that wait, stages them one after the other on top of the registry,
// writes what they change in one storage batch, and then commits the stage and answers each
// request; if the write fails, it drops the stage and answers all of them errNotStored.
// Requests that arrive during a write wait for the next one, so the writes keep up with the
// requests however many there are.
func (r *buildmonReceiver) commitLoop() {
	defer close(r.commitDone)
	group := make([]*commitRequest, 0, maxCommitGroup)
	for {
		select {
		case <-r.commitStop:
			return
		case c := <-r.commits:
			group = append(group[:0], c)
		}
	more:
		for len(group) < maxCommitGroup {
			select {
			case c := <-r.commits:
				group = append(group, c)
			default:
				break more
			}
		}
		r.commitGroup(group)
		clear(group)
	}
}

func (r *buildmonReceiver) commitGroup(group []*commitRequest) {
	st := r.registry.NewStage()
	for _, c := range group {
		c.res, c.err = st.ApplyChecked(c.evs, c.now, c.check)
	}
	if st.Changed() {
		if err := r.write(context.Background(), st.Changes()); err != nil {
			// The answers of the group's requests may rest on each other's changes: none
			// of them stands.
			for _, c := range group {
				c.res, c.err = events.Result{}, errNotStored
			}
			r.set.Logger.Error("build registry not written; the requests are answered 503",
				zap.Int("requests", len(group)), zap.Error(err))
		} else {
			st.Commit()
		}
	}
	for _, c := range group {
		c.done <- struct{}{}
	}
}

// write writes staged changes (sorted by id), together with what the registry marked unsaved
// (expired builds, restored ones to rewrite), in one storage batch. If it fails, the unsaved
// builds are marked again; the caller drops the staged ones.
func (r *buildmonReceiver) write(ctx context.Context, staged []events.Change) error {
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	if r.store == nil {
		return errStoreClosed
	}
	unsaved := r.registry.TakeUnsaved()
	changes := staged
	if len(unsaved) > 0 {
		changes = make([]events.Change, len(staged), len(staged)+len(unsaved))
		copy(changes, staged)
		for _, u := range unsaved {
			// A staged change is newer than the registry's state of the same build.
			i := sort.Search(len(staged), func(i int) bool { return staged[i].Build.ID >= u.Build.ID })
			if i == len(staged) || staged[i].Build.ID != u.Build.ID {
				changes = append(changes, u)
			}
		}
	}
	if len(changes) == 0 {
		return nil
	}
	if err := r.store.save(ctx, changes); err != nil {
		r.registry.MarkUnsaved(unsaved)
		r.telemetry.ReceiverBuildmonStorageWriteFailures.Add(ctx, 1)
		return err
	}
	return nil
}
