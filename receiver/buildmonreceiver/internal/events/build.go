package events // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"

import (
	"slices"
	"time"

	"github.com/buildmon/buildmon/internal/wire"
)

// PhaseState is the state of one phase of a build.
type PhaseState string

// Phase states (values of the build.phase.state attribute).
const (
	PhasePending   PhaseState = wire.PhasePending
	PhaseRunning   PhaseState = wire.PhaseRunning
	PhaseCompleted PhaseState = wire.PhaseCompleted
	PhaseFailed    PhaseState = wire.PhaseFailed
	PhaseSkipped   PhaseState = wire.PhaseSkipped
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

// snapshot returns a deep copy that the caller may keep.
func (b *Build) snapshot() Build {
	c := b.clone()
	c.EventIDs = nil
	c.ids = nil
	c.changed = false
	return *c
}

// moveTo changes the phase's state and remembers the state it left.
func (ph *Phase) moveTo(s PhaseState) {
	ph.Left, ph.State = ph.State, s
}
