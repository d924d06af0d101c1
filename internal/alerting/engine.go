package alerting

import (
	"errors"
	"time"
)

// Engine evaluates a configuration's rules over the alert series of many Sets (one per build
// and host). It holds the compiled rules and scratch space that lets Observe and Display run
// without allocating once the series exist. It is not safe for concurrent use.
type Engine struct {
	rules    []*CompiledRule
	byMetric map[string][]*CompiledRule

	// Scratch space reused across calls.
	aggScratch []float64
	keyBuf     []byte
	worst      []*Series
	display    []RuleDisplay
}

// NewEngine compiles specs (specs[i] is rules[i] of the configuration) and reports the
// problems of every rule at once.
func NewEngine(specs []RuleSpec) (*Engine, error) {
	e := &Engine{byMetric: map[string][]*CompiledRule{}}
	var errs []error
	for i := range specs {
		r, err := CompileRule(i, &specs[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.rules = append(e.rules, r)
		e.byMetric[r.Metric] = append(e.byMetric[r.Metric], r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	e.worst = make([]*Series, len(e.rules))
	return e, nil
}

// Rules returns the compiled rules in configuration order.
func (e *Engine) Rules() []*CompiledRule { return e.rules }

// RulesFor returns the rules that read a schema metric (nil for none).
func (e *Engine) RulesFor(metric string) []*CompiledRule { return e.byMetric[metric] }

// Observation is what one Observe did.
type Observation struct {
	// Change is what the evaluation did to the series' alert.
	Change
	// Series is the series that took the value; valid until the set's next series is added
	// or removed.
	Series *Series
	// Pause says whether the set's pause state changed.
	Pause PauseChange
}

// Observe adds value v observed at ts to the series of rule r with attributes attrs in set
// (creating the series), and evaluates its alert at clock time now. attrs is copied when a
// series is created and not retained.
func (e *Engine) Observe(set *Set, r *CompiledRule, attrs []byte, ts time.Time, v float64, now time.Time) Observation {
	s := set.find(r, attrs, &e.keyBuf)
	if s == nil {
		s = set.add(r, attrs, &e.keyBuf)
	}
	s.lastSeen = now
	s.win.Add(ts, v)
	agg, ok := s.win.Aggregate(&e.aggScratch)
	c := s.alert.Eval(&r.Rule, agg, ok, now)
	o := Observation{Change: c, Series: s}
	if was, is := notifies(c.FromState, c.FromLevel), notifies(c.ToState, c.ToLevel); was != is {
		if is {
			set.notifying++
		} else {
			set.notifying--
		}
	}
	wasCritical, isCritical := critical(c.FromState, c.FromLevel), critical(c.ToState, c.ToLevel)
	switch {
	case wasCritical == isCritical:
	case isCritical:
		set.critical++
		if set.critical == 1 {
			o.Pause = PauseStarted
		}
	default:
		set.critical--
		if set.critical == 0 {
			o.Pause = PauseStopped
		}
	}
	return o
}

// Shown is what the alert display (build.alert.active) shows for one rule of one resource:
// the state and level of its most severe notifying series. Level None shows nothing.
type Shown struct {
	Level Level
	State State
}

// RuleDisplay is what Display reports for one rule.
type RuleDisplay struct {
	Rule *CompiledRule
	// Prev is what the previous Display showed, Cur what is shown now.
	Prev, Cur Shown
	// Value is the aggregated value of Cur's series (0 when Cur shows nothing).
	Value float64
}

// Display selects, per rule, the set's most severe pending or firing series of level
// WARNING or above (INFO alerts are only logged): firing over pending, then the higher
// level, then the value further past the thresholds. It returns, in rule order, every rule
// that shows something now or showed something at the previous Display, and remembers what
// it shows. The slice is valid until the next Display.
func (e *Engine) Display(set *Set) []RuleDisplay {
	out := e.display[:0]
	if set.notifying == 0 && set.shown == nil {
		return out // nothing to show and nothing shown before
	}
	worst := e.worst
	clear(worst)
	if set.notifying > 0 {
		for i := range set.series {
			s := &set.series[i]
			if notifies(s.alert.State, s.alert.Level) && worse(s, worst[s.rule.Index]) {
				worst[s.rule.Index] = s
			}
		}
	}
	anyShown := false
	for i, r := range e.rules {
		d := RuleDisplay{Rule: r}
		if s := worst[i]; s != nil {
			d.Cur, d.Value = Shown{Level: s.alert.Level, State: s.alert.State}, s.alert.Value
			anyShown = true
		}
		if set.shown != nil {
			d.Prev = set.shown[i]
		}
		if d.Prev.Level != None || d.Cur.Level != None {
			out = append(out, d)
		}
		if d.Cur != d.Prev {
			if set.shown == nil {
				set.shown = make([]Shown, len(e.rules))
			}
			set.shown[i] = d.Cur
		}
	}
	if !anyShown {
		set.shown = nil
	}
	e.display = out
	return out
}
