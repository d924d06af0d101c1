package alerting

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a Clock that moves only when told to.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.now = c.now.Add(d) }

// TestAlertTimeline drives a rule through its whole life with a fake clock: values arrive
// every 10 s into a 30 s max window; the rule needs 1 m above a threshold to fire and keeps
// firing for 1 m after the condition clears.
func TestAlertTimeline(t *testing.T) {
	rule := &Rule{
		Name:          "cpu",
		Aggregation:   Max,
		Window:        30 * time.Second,
		Interval:      10 * time.Second,
		For:           time.Minute,
		KeepFiringFor: time.Minute,
		Thresholds:    thresholds(Info, 0.5, Warning, 0.8, Critical, 0.95),
	}
	clock := &fakeClock{now: t0}
	win := rule.NewWindow()
	var alert Alert

	steps := []struct {
		at      time.Duration // since t0
		value   float64
		state   State
		level   Level
		started bool
		stopped bool
	}{
		{0, 0.1, Inactive, None, false, false},
		{10 * time.Second, 0.85, Pending, Warning, false, false},   // condition holds: pending
		{20 * time.Second, 0.6, Pending, Warning, false, false},    // max of the window is still 0.85
		{50 * time.Second, 0.6, Pending, Info, false, false},       // 0.85 left the window
		{70 * time.Second, 0.97, Firing, Critical, true, false},    // held 60 s (since 10 s): fires
		{80 * time.Second, 0.97, Firing, Critical, false, false},   // stays firing
		{110 * time.Second, 0.1, Firing, Critical, false, false},   // clear: kept firing (keep_firing_for)
		{140 * time.Second, 0.1, Firing, Critical, false, false},   // 30 s into the hold
		{150 * time.Second, 0.9, Firing, Warning, false, false},    // holds again: hold reset
		{190 * time.Second, 0.1, Firing, Warning, false, false},    // clear again, new hold from 190 s
		{250 * time.Second, 0.1, Resolved, Warning, false, true},   // 60 s clear: resolved
		{260 * time.Second, 0.1, Inactive, None, false, false},     // and then inactive
		{270 * time.Second, 0.99, Pending, Critical, false, false}, // a new episode starts pending
		{280 * time.Second, 0.1, Pending, Critical, false, false},  // window max still 0.99
		{310 * time.Second, 0.1, Inactive, None, false, false},     // cleared before `for`: never fired
	}
	for _, s := range steps {
		clock.now = t0.Add(s.at)
		win.Add(clock.Now(), s.value)
		v, ok := win.Aggregate(nil)
		require.True(t, ok)
		c := alert.Eval(rule, v, ok, clock.Now())
		assert.Equal(t, s.state, alert.State, "at %v", s.at)
		assert.Equal(t, s.level, alert.Level, "at %v", s.at)
		assert.Equal(t, s.started, c.Started(), "started at %v", s.at)
		assert.Equal(t, s.stopped, c.Stopped(), "stopped at %v", s.at)
	}
}

func TestAlertForZeroFiresAtOnce(t *testing.T) {
	rule := &Rule{Thresholds: thresholds(Warning, 1.0)}
	var a Alert
	c := a.Eval(rule, 2, true, t0)
	assert.Equal(t, Firing, a.State)
	assert.True(t, c.Started())
	assert.Equal(t, t0, a.FiredAt)
	// keep_firing_for 0: resolves at the first clear evaluation.
	c = a.Eval(rule, 0, true, t0.Add(time.Second))
	assert.Equal(t, Resolved, a.State)
	assert.True(t, c.Stopped())
	assert.Equal(t, Warning, a.Level)
}

func TestAlertNoValueCountsAsClear(t *testing.T) {
	rule := &Rule{For: time.Minute, Thresholds: thresholds(Error, 1.0)}
	var a Alert
	a.Eval(rule, 5, true, t0)
	require.Equal(t, Pending, a.State)
	a.Eval(rule, 0, false, t0.Add(time.Second))
	assert.Equal(t, Inactive, a.State)
	assert.InDelta(t, 5.0, a.Value, 0, "the last value is kept")
}

func TestAlertLevelChangeWhileFiring(t *testing.T) {
	rule := &Rule{Thresholds: thresholds(Warning, 1.0, Critical, 2.0)}
	var a Alert
	a.Eval(rule, 1.5, true, t0)
	c := a.Eval(rule, 2.5, true, t0.Add(time.Second))
	assert.True(t, c.LevelChanged())
	assert.False(t, c.StateChanged())
	assert.Equal(t, Warning, c.FromLevel)
	assert.Equal(t, Critical, c.ToLevel)
	c = a.Eval(rule, 2.6, true, t0.Add(2*time.Second))
	assert.False(t, c.LevelChanged())
	assert.False(t, c.StateChanged())
}

func TestBelowRule(t *testing.T) {
	// Free disk share falling: WARNING at 20 %, CRITICAL at 5 %.
	rule := &Rule{Direction: Below, Thresholds: thresholds(Warning, 0.2, Critical, 0.05)}
	var a Alert
	a.Eval(rule, 0.5, true, t0)
	assert.Equal(t, Inactive, a.State)
	a.Eval(rule, 0.1, true, t0)
	assert.Equal(t, Firing, a.State)
	assert.Equal(t, Warning, a.Level)
	a.Eval(rule, 0.01, true, t0)
	assert.Equal(t, Critical, a.Level)
}
