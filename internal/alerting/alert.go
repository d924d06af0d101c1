package alerting

import "time"

// Clock tells the time that drives `for` and `keep_firing_for`. Tests use a fake clock.
type Clock interface {
	Now() time.Time
}

// SystemClock is the Clock of the running process.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// State is the state of an alert, as in Prometheus alerting rules.
type State uint8

// Alert states.
const (
	// Inactive: the condition does not hold (or the alert resolved and stayed clear).
	Inactive State = iota
	// Pending: the condition holds, for less than the rule's `for`.
	Pending
	// Firing: the condition has held for `for`, or stopped holding less than
	// `keep_firing_for` ago.
	Firing
	// Resolved: the alert was firing and its condition has been clear for
	// `keep_firing_for`. The next evaluation moves it on to inactive or pending.
	Resolved
)

var stateNames = [...]string{"inactive", "pending", "firing", "resolved"}

// String returns the state's name (the alert.state attribute value for pending and firing).
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// Alert is the state of one rule for one series. The zero Alert is inactive.
type Alert struct {
	State State
	// Level is the level while pending or firing, and the last firing level once resolved.
	Level Level
	// Value is the newest aggregated value compared with the thresholds.
	Value float64
	// ActiveAt is when the condition started to hold (pending and firing), FiredAt when the
	// alert started firing, KeepFiringSince when the condition stopped holding while firing
	// (zero while it holds), ResolvedAt when the alert resolved.
	ActiveAt        time.Time
	FiredAt         time.Time
	KeepFiringSince time.Time
	ResolvedAt      time.Time
}

// Change describes what one evaluation did to an alert.
type Change struct {
	FromState, ToState State
	FromLevel, ToLevel Level
}

// StateChanged reports whether the evaluation changed the alert's state.
func (c Change) StateChanged() bool { return c.FromState != c.ToState }

// LevelChanged reports whether a pending or firing alert stayed so with another level.
func (c Change) LevelChanged() bool {
	return !c.StateChanged() && c.FromLevel != c.ToLevel && (c.ToState == Pending || c.ToState == Firing)
}

// Started reports whether the alert started firing.
func (c Change) Started() bool { return c.ToState == Firing && c.FromState != Firing }

// Stopped reports whether the alert stopped firing.
func (c Change) Stopped() bool { return c.FromState == Firing && c.ToState != Firing }

// Eval evaluates the alert with the rule's newest aggregate value at time now; ok false
// (no value in the window) counts as the condition not holding. The transitions follow
// Prometheus:
//
//	inactive/resolved → pending   when the condition holds (→ firing at once if For is 0)
//	pending → firing              when it has held for For
//	pending → inactive            when it stops holding before that
//	firing → resolved             when it has not held for KeepFiringFor
//	resolved → inactive           when it still does not hold at the next evaluation
//
// The level is the highest level the value reaches; while firing it follows the value, and
// while firing is kept after the condition stopped holding, it stays what it last was.
func (a *Alert) Eval(r *Rule, value float64, ok bool, now time.Time) Change {
	level := None
	if ok {
		level = r.Level(value)
		a.Value = value
	}
	active := level != None
	c := Change{FromState: a.State, FromLevel: a.Level}
	switch a.State {
	case Inactive, Resolved:
		if active {
			a.State, a.Level, a.ActiveAt = Pending, level, now
			a.KeepFiringSince, a.ResolvedAt = time.Time{}, time.Time{}
			if r.For <= 0 {
				a.State, a.FiredAt = Firing, now
			}
		} else if a.State == Resolved {
			a.State, a.Level = Inactive, None
		}
	case Pending:
		if !active {
			a.State, a.Level, a.ActiveAt = Inactive, None, time.Time{}
			break
		}
		a.Level = level
		if now.Sub(a.ActiveAt) >= r.For {
			a.State, a.FiredAt = Firing, now
		}
	case Firing:
		if active {
			a.Level, a.KeepFiringSince = level, time.Time{}
			break
		}
		if a.KeepFiringSince.IsZero() {
			a.KeepFiringSince = now
		}
		if now.Sub(a.KeepFiringSince) >= r.KeepFiringFor {
			a.State, a.ResolvedAt = Resolved, now
		}
	}
	c.ToState, c.ToLevel = a.State, a.Level
	return c
}
