package alerting

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newEngine compiles specs or fails the test.
func newEngine(t testing.TB, specs ...RuleSpec) *Engine {
	t.Helper()
	e, err := NewEngine(specs)
	require.NoError(t, err)
	return e
}

// lastRule is a rule over the newest value (aggregation last) with the given thresholds
// (level, value pairs), for and keep_firing_for.
func lastRule(name string, hold, keep time.Duration, kv ...any) RuleSpec {
	return RuleSpec{Name: name, Metric: "custom." + name, Aggregation: "last", For: hold, KeepFiringFor: keep,
		Thresholds: thresholds(kv...)}
}

// TestSeriesCreation: a series is created on its rule's first value for an attribute set,
// and found again by the same rule and attributes; another rule or other attributes make
// another series.
func TestSeriesCreation(t *testing.T) {
	e := newEngine(t, lastRule("a", 0, 0, Warning, 1.0), lastRule("b", 0, 0, Warning, 1.0))
	a, b := e.Rules()[0], e.Rules()[1]
	var set Set
	assert.Equal(t, 0, set.Len())

	o := e.Observe(&set, a, []byte("k=1"), t0, 0.5, t0)
	require.NotNil(t, o.Series)
	assert.Same(t, a, o.Series.Rule())
	assert.Equal(t, "k=1", o.Series.Attrs())
	assert.Equal(t, t0, o.Series.LastSeen())
	assert.Equal(t, 1, set.Len())

	steps := []struct {
		rule  *CompiledRule
		attrs string
		len   int
	}{
		{a, "k=1", 1},
		{a, "k=2", 2},
		{b, "k=1", 3},
		{a, "", 4},
		{b, "", 5},
		{a, "", 5},
		{b, "k=1", 5},
	}
	for i, s := range steps {
		at := t0.Add(time.Duration(i+1) * time.Second)
		o := e.Observe(&set, s.rule, []byte(s.attrs), at, 0.5, at)
		assert.Equal(t, s.len, set.Len(), "step %d", i)
		assert.Same(t, s.rule, o.Series.Rule(), "step %d", i)
		assert.Equal(t, s.attrs, o.Series.Attrs(), "step %d", i)
		assert.Equal(t, at, o.Series.LastSeen(), "step %d", i)
	}
}

// TestObserveDoesNotRetainAttrs: the caller reuses its attribute buffer; the series keeps
// its own copy.
func TestObserveDoesNotRetainAttrs(t *testing.T) {
	e := newEngine(t, lastRule("a", 0, 0, Warning, 1.0))
	r := e.Rules()[0]
	var set Set
	buf := []byte("dev=sda")
	e.Observe(&set, r, buf, t0, 0.5, t0)
	copy(buf, "dev=sdb")
	o := e.Observe(&set, r, buf, t0, 0.5, t0)
	assert.Equal(t, 2, set.Len())
	assert.Equal(t, "dev=sdb", o.Series.Attrs())
	assert.Equal(t, "dev=sda", set.series[0].Attrs())
}

// TestSeriesIndex: from indexedSeries series on the set indexes them by key; every series
// keeps its own alert whether found by the linear search or the index, and the index follows
// expiry back below the threshold.
func TestSeriesIndex(t *testing.T) {
	e := newEngine(t, lastRule("a", 0, 0, Warning, 1.0), lastRule("b", 0, 0, Warning, 1.0))
	a, b := e.Rules()[0], e.Rules()[1]
	var set Set
	const n = 3 * indexedSeries
	attrs := func(i int) []byte { return fmt.Appendf(nil, "mount=/m%d", i) }
	for i := range n {
		e.Observe(&set, a, attrs(i), t0, float64(i), t0)
		assert.Equal(t, i+1 >= indexedSeries, set.index != nil, "after %d series", i+1)
	}
	// Rule b with the same attributes is a different series, also indexed.
	for i := range n {
		e.Observe(&set, b, attrs(i), t0, 100+float64(i), t0)
	}
	require.Equal(t, 2*n, set.Len())
	require.Len(t, set.index, 2*n)
	for i := range n {
		o := e.Observe(&set, a, attrs(i), t0, float64(i), t0)
		assert.InDelta(t, float64(i), o.Series.Alert().Value, 0, "a %d", i)
		o = e.Observe(&set, b, attrs(i), t0, 100+float64(i), t0)
		assert.InDelta(t, 100+float64(i), o.Series.Alert().Value, 0, "b %d", i)
	}
	assert.Equal(t, 2*n, set.Len(), "no series created twice")

	// Keep a few series alive and let the others expire: the set drops its index.
	later := t0.Add(time.Hour)
	for i := range 3 {
		e.Observe(&set, b, attrs(i), later, 100+float64(i), later)
	}
	expired, _ := set.Expire(later, nil)
	assert.Len(t, expired, 2*n-3)
	assert.Equal(t, 3, set.Len())
	assert.Nil(t, set.index)
	for i := range 3 {
		o := e.Observe(&set, b, attrs(i), later, 100+float64(i), later)
		assert.InDelta(t, 100+float64(i), o.Series.Alert().Value, 0)
	}
	assert.Equal(t, 3, set.Len())
}

// TestExpire: a series expires when it saw no value since cutoff (a value exactly at cutoff
// keeps it), the expired series come back as they were, and a series that gets values again
// starts afresh.
func TestExpire(t *testing.T) {
	e := newEngine(t, lastRule("a", time.Minute, 0, Warning, 1.0, Critical, 2.0))
	r := e.Rules()[0]
	var set Set
	e.Observe(&set, r, []byte("s=old"), t0, 1.5, t0)                                    // pending WARNING
	e.Observe(&set, r, []byte("s=edge"), t0.Add(time.Minute), 0.5, t0.Add(time.Minute)) // inactive
	e.Observe(&set, r, []byte("s=new"), t0.Add(2*time.Minute), 0.5, t0.Add(2*time.Minute))

	expired, pause := set.Expire(t0.Add(time.Minute), nil)
	assert.Equal(t, PauseUnchanged, pause)
	require.Len(t, expired, 1)
	assert.Same(t, r, expired[0].Rule)
	assert.Equal(t, "s=old", expired[0].Attrs)
	assert.Equal(t, Pending, expired[0].Alert.State)
	assert.Equal(t, Warning, expired[0].Alert.Level)
	assert.InDelta(t, 1.5, expired[0].Alert.Value, 0)
	assert.Equal(t, 2, set.Len())
	assert.Equal(t, int32(0), set.notifying, "the pending WARNING no longer counts")

	// dst is appended to.
	expired, _ = set.Expire(t0.Add(3*time.Minute), expired)
	require.Len(t, expired, 3)
	assert.Equal(t, []string{"s=old", "s=edge", "s=new"}, []string{expired[0].Attrs, expired[1].Attrs, expired[2].Attrs})
	assert.Equal(t, 0, set.Len())
	assert.Nil(t, set.series, "an empty set gives its memory back")

	// Nothing to expire: nothing appended.
	expired, pause = set.Expire(t0.Add(time.Hour), nil)
	assert.Empty(t, expired)
	assert.Equal(t, PauseUnchanged, pause)

	// The old series comes back with no memory of its pending time.
	o := e.Observe(&set, r, []byte("s=old"), t0.Add(4*time.Minute), 1.5, t0.Add(4*time.Minute))
	assert.Equal(t, Change{FromState: Inactive, ToState: Pending, FromLevel: None, ToLevel: Warning}, o.Change)
}

// TestHoldsThroughTheStore drives `for` and `keep_firing_for` through Observe with a fake
// clock: the store keeps each series' alert from value to value.
func TestHoldsThroughTheStore(t *testing.T) {
	e := newEngine(t, lastRule("a", 20*time.Second, 15*time.Second, Warning, 1.0, Critical, 2.0))
	r := e.Rules()[0]
	clock := &fakeClock{now: t0}
	var set Set
	steps := []struct {
		v     float64
		state State
		level Level
		pause PauseChange
	}{
		{0.5, Inactive, None, PauseUnchanged},    // 0 s
		{1.5, Pending, Warning, PauseUnchanged},  // 5 s: holds
		{2.5, Pending, Critical, PauseUnchanged}, // 10 s: level follows the value
		{2.5, Pending, Critical, PauseUnchanged}, // 15 s: held 10 s < for
		{2.5, Pending, Critical, PauseUnchanged}, // 20 s: 15 s
		{2.5, Firing, Critical, PauseStarted},    // 25 s: held 20 s: fires, pauses
		{0.5, Firing, Critical, PauseUnchanged},  // 30 s: clear, kept firing
		{0.5, Firing, Critical, PauseUnchanged},  // 35 s
		{1.5, Firing, Warning, PauseStopped},     // 40 s: holds again at WARNING: no longer pausing
		{0.5, Firing, Warning, PauseUnchanged},   // 45 s: clear again, hold restarts
		{0.5, Firing, Warning, PauseUnchanged},   // 50 s
		{0.5, Firing, Warning, PauseUnchanged},   // 55 s: 10 s < keep_firing_for
		{0.5, Resolved, Warning, PauseUnchanged}, // 60 s: 15 s: resolved
		{0.5, Inactive, None, PauseUnchanged},    // 65 s
		{2.5, Pending, Critical, PauseUnchanged}, // 70 s: pending again, not firing at once (for > 0)
	}
	for i, s := range steps {
		o := e.Observe(&set, r, nil, clock.now, s.v, clock.now)
		assert.Equal(t, s.state, o.ToState, "step %d (%v)", i, clock.now.Sub(t0))
		assert.Equal(t, s.level, o.ToLevel, "step %d", i)
		assert.Equal(t, s.pause, o.Pause, "step %d", i)
		assert.Equal(t, 1, set.Len())
		clock.Advance(5 * time.Second)
	}
}

// TestValueTimeAndClockTime: the window moves with the values' timestamps, `for` with the
// clock: a late batch of old values does not fire an alert before its time.
func TestValueTimeAndClockTime(t *testing.T) {
	spec := lastRule("a", time.Minute, 0, Warning, 1.0)
	spec.Aggregation, spec.Window, spec.Interval = "max", 10*time.Second, time.Second
	e := newEngine(t, spec)
	r := e.Rules()[0]
	var set Set
	// Values stamped a minute apart arrive within one second of clock time.
	o := e.Observe(&set, r, nil, t0, 1.5, t0)
	assert.Equal(t, Pending, o.ToState)
	o = e.Observe(&set, r, nil, t0.Add(2*time.Minute), 1.5, t0.Add(time.Second))
	assert.Equal(t, Pending, o.ToState, "for counts clock time")
	o = e.Observe(&set, r, nil, t0.Add(3*time.Minute), 1.5, t0.Add(time.Minute))
	assert.Equal(t, Firing, o.ToState)
	// The window covers the 10 s before the newest value's timestamp: 1.5 left it.
	o = e.Observe(&set, r, nil, t0.Add(3*time.Minute+11*time.Second), 0.5, t0.Add(61*time.Second))
	assert.Equal(t, Resolved, o.ToState)
	assert.Equal(t, t0.Add(61*time.Second), o.Series.LastSeen())
}

// TestCriticalCounting: a set pauses while any of its series fires at CRITICAL; Observe
// reports the 0 → 1 and 1 → 0 transitions only, and Expire the 1 → 0 of expired series.
func TestCriticalCounting(t *testing.T) {
	e := newEngine(t, lastRule("a", 0, 0, Warning, 1.0, Critical, 2.0), lastRule("b", 0, 0, Critical, 5.0))
	a, b := e.Rules()[0], e.Rules()[1]
	var set Set
	steps := []struct {
		rule    *CompiledRule
		attrs   string
		at      time.Duration
		v       float64
		pause   PauseChange
		pausing bool
		crit    int32
	}{
		{a, "x", 0, 1.5, PauseUnchanged, false, 0}, // WARNING firing
		{a, "x", 1, 2.5, PauseStarted, true, 1},    // WARNING → CRITICAL: 0 → 1
		{a, "y", 2, 2.5, PauseUnchanged, true, 2},  // a second CRITICAL
		{b, "", 3, 6, PauseUnchanged, true, 3},     // a third, of another rule
		{a, "x", 4, 2.6, PauseUnchanged, true, 3},  // still CRITICAL
		{a, "x", 5, 1.5, PauseUnchanged, true, 2},  // CRITICAL → WARNING: 3 → 2
		{b, "", 6, 1, PauseUnchanged, true, 1},     // resolved (keep_firing_for 0)
		{a, "y", 7, 0.5, PauseStopped, false, 0},   // last CRITICAL resolved: 1 → 0
		{a, "y", 8, 0.5, PauseUnchanged, false, 0}, // resolved → inactive
		{a, "y", 9, 3, PauseStarted, true, 1},      // inactive → CRITICAL firing at once
		{b, "", 10, 7, PauseUnchanged, true, 2},    // resolved → firing again
		{a, "y", 11, 3, PauseUnchanged, true, 2},   // no change
	}
	for i, s := range steps {
		at := t0.Add(s.at * time.Second)
		o := e.Observe(&set, s.rule, []byte(s.attrs), at, s.v, at)
		assert.Equal(t, s.pause, o.Pause, "step %d", i)
		assert.Equal(t, s.pause.Changed(), o.Pause.Changed(), "step %d", i)
		assert.Equal(t, s.pausing, set.Pausing(), "step %d", i)
		assert.Equal(t, s.crit, set.critical, "step %d", i)
	}

	// Expiry: dropping one of two CRITICAL series keeps the pause; dropping the last ends it.
	e.Observe(&set, b, nil, t0.Add(time.Minute), 7, t0.Add(time.Minute))
	_, pause := set.Expire(t0.Add(30*time.Second), nil) // a/x, a/y expire; b stays
	assert.Equal(t, PauseUnchanged, pause)
	assert.True(t, set.Pausing())
	assert.Equal(t, int32(1), set.critical)
	_, pause = set.Expire(t0.Add(2*time.Minute), nil)
	assert.Equal(t, PauseStopped, pause)
	assert.False(t, set.Pausing())
	assert.Equal(t, int32(0), set.critical)
	_, pause = set.Expire(t0.Add(3*time.Minute), nil)
	assert.Equal(t, PauseUnchanged, pause, "an empty set stops pausing only once")
}

// TestSetsAreIndependent: the engine serves many sets (one per build and host); a value in
// one never moves another's alert or pause.
func TestSetsAreIndependent(t *testing.T) {
	e := newEngine(t, lastRule("a", 0, 0, Critical, 1.0))
	r := e.Rules()[0]
	var host, build Set
	o := e.Observe(&host, r, nil, t0, 2, t0)
	assert.Equal(t, PauseStarted, o.Pause)
	o = e.Observe(&build, r, nil, t0, 2, t0)
	assert.Equal(t, PauseStarted, o.Pause, "each set counts its own")
	o = e.Observe(&host, r, nil, t0, 0, t0)
	assert.Equal(t, PauseStopped, o.Pause)
	assert.False(t, host.Pausing())
	assert.True(t, build.Pausing())
}

func TestPauseChangeString(t *testing.T) {
	assert.Equal(t, "unchanged", PauseUnchanged.String())
	assert.Equal(t, "started", PauseStarted.String())
	assert.Equal(t, "stopped", PauseStopped.String())
	assert.Equal(t, "unknown", PauseChange(9).String())
	assert.False(t, PauseUnchanged.Changed())
	assert.True(t, PauseStarted.Changed())
	assert.True(t, PauseStopped.Changed())
}

// TestObserveAllocations: once a series exists, observing it allocates nothing, whether the
// set is searched linearly or through its index (the processor calls Observe per data point).
func TestObserveAllocations(t *testing.T) {
	spec := lastRule("a", 0, 0, Warning, 1.0)
	spec.Aggregation = "p95"
	e := newEngine(t, spec)
	r := e.Rules()[0]
	for _, n := range []int{1, indexedSeries + 1} {
		t.Run(fmt.Sprintf("series=%d", n), func(t *testing.T) {
			var set Set
			attrs := make([][]byte, n)
			for i := range attrs {
				attrs[i] = fmt.Appendf(nil, "dev=d%d", i)
				e.Observe(&set, r, attrs[i], t0, 0.5, t0)
			}
			at := t0
			allocs := testing.AllocsPerRun(100, func() {
				at = at.Add(time.Second)
				for i := range attrs {
					e.Observe(&set, r, attrs[i], at, 1.5, at)
				}
				e.Display(&set)
			})
			assert.Zero(t, allocs)
		})
	}
}

// TestSeriesKey: the key holds the rule index in two bytes before the attributes, so rules
// whose indexes share a low byte, and a rule's series with and without attributes, stay
// apart; the string and byte forms of the attributes give the same key.
func TestSeriesKey(t *testing.T) {
	tests := []struct {
		index int
		attrs string
		want  []byte
	}{
		{0, "", []byte{0, 0}},
		{1, "a=b", []byte{0, 1, 'a', '=', 'b'}},
		{256, "a=b", []byte{1, 0, 'a', '=', 'b'}},
		{258, "", []byte{1, 2}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		got := appendSeriesKey(nil, tt.index, tt.attrs)
		assert.Equal(t, tt.want, got, "%d %q", tt.index, tt.attrs)
		assert.Equal(t, got, appendSeriesKey(nil, tt.index, []byte(tt.attrs)))
		assert.False(t, seen[string(got)], "key of %d %q is unique", tt.index, tt.attrs)
		seen[string(got)] = true
	}
	assert.Equal(t, []byte{'x', 0, 3, 'k'}, appendSeriesKey([]byte("x"), 3, "k"), "appends")
}

// TestExpireKeepsIndex: expiring some series of a set that stays indexed rebuilds the index
// with the survivors' new positions, so each is found with its own alert.
func TestExpireKeepsIndex(t *testing.T) {
	e := newEngine(t, lastRule("a", 0, 0, Warning, 1000.0))
	r := e.Rules()[0]
	var set Set
	const n = 2*indexedSeries + 2
	attrs := func(i int) []byte { return fmt.Appendf(nil, "if=eth%d", i) }
	for i := range n {
		at := t0
		if i%2 == 1 {
			at = t0.Add(time.Minute) // odd series stay
		}
		e.Observe(&set, r, attrs(i), at, float64(i), at)
	}
	expired, _ := set.Expire(t0.Add(time.Second), nil)
	require.Len(t, expired, n/2)
	for i, x := range expired {
		assert.Equal(t, string(attrs(2*i)), x.Attrs)
	}
	require.Equal(t, n/2, set.Len())
	require.NotNil(t, set.index, "still above indexedSeries")
	assert.Len(t, set.index, n/2)
	for i := 1; i < n; i += 2 {
		s := set.find(r, attrs(i), new([]byte))
		require.NotNil(t, s, "series %d", i)
		assert.Equal(t, string(attrs(i)), s.Attrs())
		assert.InDelta(t, float64(i), s.Alert().Value, 0)
	}
	for i := 0; i < n; i += 2 {
		assert.Nil(t, set.find(r, attrs(i), new([]byte)), "series %d expired", i)
	}
	// A new series after the expiry gets a position of its own.
	o := e.Observe(&set, r, attrs(0), t0.Add(2*time.Minute), 7, t0.Add(2*time.Minute))
	assert.Equal(t, n/2+1, set.Len())
	assert.Same(t, o.Series, set.find(r, attrs(0), new([]byte)))
}

// TestObserveAggregates: Observe feeds the rule's window and evaluates the aggregate, not
// the newest value; NaN values are ignored, and a series whose first value is NaN exists but
// stays inactive.
func TestObserveAggregates(t *testing.T) {
	spec := lastRule("avg", 0, 0, Warning, 0.8)
	spec.Aggregation, spec.Window, spec.Interval = "avg", 10*time.Second, time.Second
	e := newEngine(t, spec)
	r := e.Rules()[0]
	var set Set
	o := e.Observe(&set, r, nil, t0, math.NaN(), t0)
	assert.Equal(t, 1, set.Len())
	assert.Equal(t, Inactive, o.ToState)
	steps := []struct {
		at    time.Duration
		v     float64
		avg   float64
		state State
	}{
		{1, 0.6, 0.6, Inactive},
		{2, 1.0, 0.8, Firing},        // avg reaches the threshold
		{3, math.NaN(), 0.8, Firing}, // ignored
		{4, 0.2, 0.6, Resolved},      // (0.6 + 1.0 + 0.2) / 3
		{13, 1.0, 0.6, Inactive},     // 0.6 and 1.0 left the window: (0.2 + 1.0) / 2
		{15, 1.0, 1.0, Firing},       // 0.2 left too
	}
	for i, s := range steps {
		at := t0.Add(s.at * time.Second)
		o := e.Observe(&set, r, nil, at, s.v, at)
		assert.InDelta(t, s.avg, o.Series.Alert().Value, 1e-9, "step %d", i)
		assert.Equal(t, s.state, o.ToState, "step %d", i)
	}
	assert.Equal(t, 1, set.Len())
}

// TestObservationChange: each Observation carries what the evaluation did, which the
// processor logs (a state change or a level change while pending or firing) and otherwise
// does not.
func TestObservationChange(t *testing.T) {
	e := newEngine(t, lastRule("a", 0, time.Minute, Info, 1.0, Warning, 2.0, Error, 3.0))
	r := e.Rules()[0]
	var set Set
	steps := []struct {
		v                  float64
		from, to           State
		fromLevel, toLevel Level
		stateChanged       bool
		levelChanged       bool
	}{
		{0.5, Inactive, Inactive, None, None, false, false},
		{1.5, Inactive, Firing, None, Info, true, false},
		{1.6, Firing, Firing, Info, Info, false, false},
		{3.5, Firing, Firing, Info, Error, false, true},
		{2.5, Firing, Firing, Error, Warning, false, true},
		{0.5, Firing, Firing, Warning, Warning, false, false}, // kept firing
	}
	for i, s := range steps {
		at := t0.Add(time.Duration(i) * time.Second)
		o := e.Observe(&set, r, nil, at, s.v, at)
		assert.Equal(t, Change{FromState: s.from, ToState: s.to, FromLevel: s.fromLevel, ToLevel: s.toLevel}, o.Change, "step %d", i)
		assert.Equal(t, s.stateChanged, o.StateChanged(), "step %d", i)
		assert.Equal(t, s.levelChanged, o.LevelChanged(), "step %d", i)
	}
}
