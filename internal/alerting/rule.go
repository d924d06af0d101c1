// Package alerting evaluates threshold rules (seed §4.2, §7) over rolling windows and keeps
// the state of each alert as Prometheus alerting rules do: inactive → pending → firing →
// resolved, with a hold before firing (`for`) and a hold before resolving
// (`keep_firing_for`).
//
// Beside the state machine (Alert) and the rolling windows (Window) it holds the engine
// that keeps them per series: CompileRule resolves a configured rule (aliases, metric-class
// defaults, scope) and names the configuration key of every problem; an Engine feeds values
// into the Set of series of a build or host (Observe), reports each alert change and whether
// the set's CRITICAL count went 0 → 1 or 1 → 0, drops silent series (Set.Expire), and picks
// what each rule shows (Display).
//
// The package is plain Go and knows nothing of pdata: the buildprogress processor translates
// data points into (rule, series attributes, time, value) observations, routes them to the
// Set of the build or host they concern, and logs and emits what the engine reports. Nothing
// in it is safe for concurrent use; the processor guards it with its mutex.
package alerting // import "github.com/buildmon/buildmon/internal/alerting"

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Level is an alert level of the seed (§7.1). The zero Level is None: no threshold crossed.
type Level uint8

// Alert levels, in increasing severity.
const (
	None Level = iota
	Info
	Warning
	Error
	Critical
)

// Levels lists the levels a rule can have thresholds for, lowest first.
var Levels = [...]Level{Info, Warning, Error, Critical}

var levelNames = [...]string{"NONE", "INFO", "WARNING", "ERROR", "CRITICAL"}

// String returns the level's name as in the alert.level attribute (INFO, WARNING, …).
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "UNKNOWN"
}

// key returns the level's configuration key (info, warning, error, critical).
func (l Level) key() string { return strings.ToLower(l.String()) }

// Notifies reports whether alerts of this level appear in telemetry. INFO is only logged
// (action "Log"); WARNING and above notify.
func (l Level) Notifies() bool { return l >= Warning }

// Pauses reports whether a firing alert of this level pauses the affected builds (CRITICAL:
// "Alert & Pause").
func (l Level) Pauses() bool { return l == Critical }

// Direction says on which side of a threshold the condition holds.
type Direction uint8

// Directions: Above fires when the value reaches a threshold (value ≥ threshold), Below when
// it falls to one (value ≤ threshold).
const (
	Above Direction = iota
	Below
)

// ParseDirection parses "above" or "below"; "" means Above.
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "", "above":
		return Above, nil
	case "below":
		return Below, nil
	}
	return Above, fmt.Errorf("unknown direction %q (want above or below)", s)
}

// String returns "above" or "below".
func (d Direction) String() string {
	if d == Below {
		return "below"
	}
	return "above"
}

// Thresholds holds a rule's threshold per level; a level without a threshold is never
// reported.
type Thresholds struct {
	value [len(Levels)]float64
	set   [len(Levels)]bool
}

// Set sets the threshold of level l (Info…Critical).
func (t *Thresholds) Set(l Level, v float64) {
	t.value[l-1], t.set[l-1] = v, true
}

// Get returns the threshold of level l and whether it is set.
func (t *Thresholds) Get(l Level) (float64, bool) {
	return t.value[l-1], t.set[l-1]
}

// Validate checks that at least one level has a threshold, that every threshold is a finite
// number, and that they are ordered across levels: increasing with severity for Above,
// decreasing for Below. Errors name the threshold keys (thresholds.warning, …).
func (t *Thresholds) Validate(d Direction) error {
	var errs []error
	prev := None
	hasAny := false
	for _, l := range Levels {
		v, ok := t.Get(l)
		if !ok {
			continue
		}
		hasAny = true
		if math.IsNaN(v) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("thresholds.%s must be a finite number", l.key()))
			continue
		}
		if prev != None {
			pv, _ := t.Get(prev)
			if d == Above && v <= pv {
				errs = append(errs, fmt.Errorf("thresholds.%s (%g) must be greater than thresholds.%s (%g) for direction above",
					l.key(), v, prev.key(), pv))
			}
			if d == Below && v >= pv {
				errs = append(errs, fmt.Errorf("thresholds.%s (%g) must be less than thresholds.%s (%g) for direction below",
					l.key(), v, prev.key(), pv))
			}
		}
		prev = l
	}
	if !hasAny {
		errs = append(errs, errors.New("thresholds must set at least one of info, warning, error, critical"))
	}
	return errors.Join(errs...)
}

// Rule is a compiled threshold rule: how to aggregate a window of values and which level
// the aggregate reaches.
type Rule struct {
	Name        string
	Aggregation Aggregation
	// Window is the span of the rolling window; Interval the expected time between values,
	// which sizes the window's ring buffer (see NewWindow).
	Window   time.Duration
	Interval time.Duration
	// For is how long the condition must hold before the alert fires (0: at once);
	// KeepFiringFor how long a firing alert stays firing after the condition stops holding.
	For           time.Duration
	KeepFiringFor time.Duration
	Thresholds    Thresholds
	Direction     Direction
}

// Level returns the highest level whose threshold v reaches, or None.
func (r *Rule) Level(v float64) Level {
	if math.IsNaN(v) {
		return None
	}
	for i := len(Levels) - 1; i >= 0; i-- {
		l := Levels[i]
		th, ok := r.Thresholds.Get(l)
		if !ok {
			continue
		}
		if (r.Direction == Above && v >= th) || (r.Direction == Below && v <= th) {
			return l
		}
	}
	return None
}

// NewWindow returns an empty window for this rule.
func (r *Rule) NewWindow() Window {
	return NewWindow(r.Window, r.Interval, r.Aggregation)
}
