package alerting

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shown is a compact form of one RuleDisplay for comparisons: "rule prev→cur value".
func shown(ds []RuleDisplay) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s %s→%s %g", d.Rule.Name, show(d.Prev), show(d.Cur), d.Value))
	}
	return out
}

func show(s Shown) string {
	if s.Level == None {
		return "-"
	}
	return s.Level.String() + "/" + s.State.String()
}

// TestWorse pins the display order of two alerts of one rule.
func TestWorse(t *testing.T) {
	above := &CompiledRule{}
	below := &CompiledRule{Rule: Rule{Direction: Below}}
	series := func(r *CompiledRule, st State, l Level, v float64) *Series {
		return &Series{rule: r, alert: Alert{State: st, Level: l, Value: v}}
	}
	tests := []struct {
		name string
		a, b *Series
		want bool
	}{
		{"anything beats nothing", series(above, Pending, Warning, 1), nil, true},
		{"firing beats pending", series(above, Firing, Warning, 1), series(above, Pending, Critical, 9), true},
		{"pending loses to firing", series(above, Pending, Critical, 9), series(above, Firing, Warning, 1), false},
		{"higher level", series(above, Firing, Error, 1), series(above, Firing, Warning, 9), true},
		{"lower level", series(above, Firing, Warning, 9), series(above, Firing, Error, 1), false},
		{"above: higher value", series(above, Firing, Warning, 9), series(above, Firing, Warning, 1), true},
		{"above: lower value", series(above, Firing, Warning, 1), series(above, Firing, Warning, 9), false},
		{"above: equal value keeps the first", series(above, Firing, Warning, 1), series(above, Firing, Warning, 1), false},
		{"below: lower value", series(below, Firing, Warning, 1), series(below, Firing, Warning, 9), true},
		{"below: higher value", series(below, Firing, Warning, 9), series(below, Firing, Warning, 1), false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, worse(tt.a, tt.b), tt.name)
	}
}

// observation is one value for Observe.
type observation struct {
	r     *CompiledRule
	attrs string
	v     float64
}

// TestDisplayWorstPerRule: per rule, Display shows the most severe notifying series of the
// set, and each rule on its own.
func TestDisplayWorstPerRule(t *testing.T) {
	disk := lastRule("disk", 0, 0, Info, 0.5, Warning, 0.8, Critical, 0.95)
	free := lastRule("free", time.Minute, 0, Warning, 0.2, Error, 0.1)
	free.Direction = "below"
	info := lastRule("info", 0, 0, Info, 0.5)
	e := newEngine(t, disk, free, info)
	rDisk, rFree, rInfo := e.Rules()[0], e.Rules()[1], e.Rules()[2]

	tests := []struct {
		name string
		obs  []observation
		want []string
	}{
		{
			name: "nothing notifies",
			want: []string{},
		},
		{
			name: "INFO is never shown",
			obs:  []observation{{rDisk, "m=/", 0.6}, {rInfo, "", 0.9}},
			want: []string{},
		},
		{
			name: "higher level wins, per rule",
			obs:  []observation{{rDisk, "m=/", 0.85}, {rDisk, "m=/var", 0.97}, {rDisk, "m=/tmp", 0.9}, {rFree, "m=/", 0.15}},
			want: []string{"disk -→CRITICAL/firing 0.97", "free -→WARNING/pending 0.15"},
		},
		{
			name: "same level: value further past the threshold (above)",
			obs:  []observation{{rDisk, "m=/", 0.85}, {rDisk, "m=/var", 0.9}, {rDisk, "m=/tmp", 0.82}},
			want: []string{"disk -→WARNING/firing 0.9"},
		},
		{
			name: "same level: value further past the threshold (below)",
			obs:  []observation{{rFree, "m=/", 0.19}, {rFree, "m=/var", 0.11}, {rFree, "m=/tmp", 0.15}},
			want: []string{"free -→WARNING/pending 0.11"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var set Set
			for _, o := range tt.obs {
				e.Observe(&set, o.r, []byte(o.attrs), t0, o.v, t0)
			}
			assert.Equal(t, tt.want, shown(e.Display(&set)))
		})
	}
}

// TestDisplayFiringBeatsPending: a firing WARNING outranks a pending CRITICAL of the same
// rule (it is what the rule's alert is).
func TestDisplayFiringBeatsPending(t *testing.T) {
	spec := lastRule("cpu", time.Minute, 0, Warning, 0.8, Critical, 0.95)
	e := newEngine(t, spec)
	r := e.Rules()[0]
	var set Set
	e.Observe(&set, r, []byte("cpu=0"), t0, 0.85, t0)
	e.Observe(&set, r, []byte("cpu=0"), t0.Add(time.Minute), 0.85, t0.Add(time.Minute)) // fires
	e.Observe(&set, r, []byte("cpu=1"), t0.Add(time.Minute), 0.99, t0.Add(time.Minute)) // pending
	assert.Equal(t, []string{"cpu -→WARNING/firing 0.85"}, shown(e.Display(&set)))
}

// TestDisplayTransitions: Display remembers what it showed, reports a rule whose alert
// changed or ended once with its previous display (so that the 0 for it can be emitted),
// and stops reporting a set that shows nothing.
func TestDisplayTransitions(t *testing.T) {
	a := lastRule("a", time.Minute, 0, Warning, 1.0, Critical, 2.0)
	b := lastRule("b", 0, 0, Warning, 1.0)
	e := newEngine(t, a, b)
	ra, rb := e.Rules()[0], e.Rules()[1]
	var set Set
	clock := &fakeClock{now: t0}
	steps := []struct {
		name string
		obs  func()
		want []string
	}{
		{"nothing", func() { e.Observe(&set, ra, nil, clock.now, 0.5, clock.now) }, []string{}},
		{"a pending", func() { e.Observe(&set, ra, nil, clock.now, 1.5, clock.now) },
			[]string{"a -→WARNING/pending 1.5"}},
		{"unchanged display, new value", func() { e.Observe(&set, ra, nil, clock.now, 1.7, clock.now) },
			[]string{"a WARNING/pending→WARNING/pending 1.7"}},
		{"level up", func() { e.Observe(&set, ra, nil, clock.now, 2.5, clock.now) },
			[]string{"a WARNING/pending→CRITICAL/pending 2.5"}},
		{"b fires beside a", func() { e.Observe(&set, rb, nil, clock.now, 1.5, clock.now) },
			[]string{"a CRITICAL/pending→CRITICAL/pending 2.5", "b -→WARNING/firing 1.5"}},
		{"a clears before firing", func() { e.Observe(&set, ra, nil, clock.now, 0.5, clock.now) },
			[]string{"a CRITICAL/pending→- 0", "b WARNING/firing→WARNING/firing 1.5"}},
		{"a stays clear: reported no more", func() {}, []string{"b WARNING/firing→WARNING/firing 1.5"}},
		{"b resolves", func() { e.Observe(&set, rb, nil, clock.now, 0.5, clock.now) },
			[]string{"b WARNING/firing→- 0"}},
		{"nothing shown any more", func() {}, []string{}},
		{"still nothing", func() { e.Observe(&set, rb, nil, clock.now, 0.5, clock.now) }, []string{}},
	}
	for _, s := range steps {
		s.obs()
		assert.Equal(t, s.want, shown(e.Display(&set)), s.name)
		clock.Advance(10 * time.Second)
	}
	assert.Nil(t, set.shown, "a set that shows nothing keeps no display memory")
}

// TestDisplayAfterExpiry: an expired shown alert is reported once as ended.
func TestDisplayAfterExpiry(t *testing.T) {
	e := newEngine(t, lastRule("a", 0, 0, Error, 1.0))
	r := e.Rules()[0]
	var set Set
	e.Observe(&set, r, []byte("dev=sda"), t0, 1.5, t0)
	require.Equal(t, []string{"a -→ERROR/firing 1.5"}, shown(e.Display(&set)))
	set.Expire(t0.Add(time.Second), nil)
	assert.Equal(t, []string{"a ERROR/firing→- 0"}, shown(e.Display(&set)))
	assert.Empty(t, e.Display(&set))
}

// TestDisplayPerSet: what one set showed does not leak into another's display.
func TestDisplayPerSet(t *testing.T) {
	e := newEngine(t, lastRule("a", 0, 0, Warning, 1.0))
	r := e.Rules()[0]
	var one, two Set
	e.Observe(&one, r, nil, t0, 1.5, t0)
	e.Observe(&two, r, nil, t0, 0.5, t0)
	assert.Equal(t, []string{"a -→WARNING/firing 1.5"}, shown(e.Display(&one)))
	assert.Empty(t, e.Display(&two))
	assert.Equal(t, []string{"a WARNING/firing→WARNING/firing 1.5"}, shown(e.Display(&one)))
}

// TestObserveNotifyingCount: the set's count of notifying series, which lets Display skip a
// set, follows every transition in and out of a shown state.
func TestObserveNotifyingCount(t *testing.T) {
	e := newEngine(t, lastRule("a", time.Minute, 0, Info, 0.5, Warning, 1.0))
	r := e.Rules()[0]
	var set Set
	steps := []struct {
		attrs string
		at    time.Duration
		v     float64
		want  int32
	}{
		{"x", 0, 0.7, 0},  // INFO pending: not shown
		{"x", 1, 1.5, 1},  // WARNING pending
		{"y", 1, 1.5, 2},  // another
		{"x", 2, 0.7, 1},  // back to INFO while pending
		{"y", 61, 1.5, 1}, // y fires: still shown
		{"y", 62, 0.1, 0}, // y resolves
		{"x", 63, 0.1, 0}, // x clears
		{"x", 64, 2.0, 1}, // x pending again
		{"x", 200, 2, 1},  // x fires
	}
	for i, s := range steps {
		at := t0.Add(s.at * time.Second)
		e.Observe(&set, r, []byte(s.attrs), at, s.v, at)
		assert.Equal(t, s.want, set.notifying, "step %d", i)
	}
}

// TestDisplayRuleOrder: Display reports rules in configuration order, whatever order their
// series were created in, with each rule's own value.
func TestDisplayRuleOrder(t *testing.T) {
	specs := make([]RuleSpec, 5)
	for i := range specs {
		specs[i] = lastRule(fmt.Sprintf("r%d", i), 0, 0, Warning, 1.0)
	}
	e := newEngine(t, specs...)
	var set Set
	for _, i := range []int{4, 1, 3} {
		e.Observe(&set, e.Rules()[i], nil, t0, float64(10+i), t0)
	}
	e.Observe(&set, e.Rules()[0], nil, t0, 0.5, t0) // below its threshold: not shown
	assert.Equal(t, []string{
		"r1 -→WARNING/firing 11",
		"r3 -→WARNING/firing 13",
		"r4 -→WARNING/firing 14",
	}, shown(e.Display(&set)))
}

// TestExpiredIsACopy: what Expire returns stays as it was when the set changes afterwards.
func TestExpiredIsACopy(t *testing.T) {
	e := newEngine(t, lastRule("a", 0, 0, Critical, 1.0))
	r := e.Rules()[0]
	var set Set
	e.Observe(&set, r, []byte("x"), t0, 2, t0)
	expired, pause := set.Expire(t0.Add(time.Second), nil)
	require.Len(t, expired, 1)
	assert.Equal(t, PauseStopped, pause)
	e.Observe(&set, r, []byte("x"), t0.Add(2*time.Second), 0.5, t0.Add(2*time.Second))
	assert.Equal(t, Firing, expired[0].Alert.State)
	assert.Equal(t, Critical, expired[0].Alert.Level)
	assert.InDelta(t, 2.0, expired[0].Alert.Value, 0)
	assert.Equal(t, t0, expired[0].Alert.FiredAt)
}

// TestCompileRuleCopiesSpec: the compiled rule shares nothing with the spec, so a caller may
// reuse or change its configuration afterwards.
func TestCompileRuleCopiesSpec(t *testing.T) {
	spec := warn("r", "cpu_usage", 0.9)
	spec.Match = map[string]string{"host.name": "h1"}
	r, err := CompileRule(0, &spec)
	require.NoError(t, err)
	spec.Match["host.name"] = "h2"
	spec.Thresholds.Set(Warning, 0.1)
	spec.Name = "changed"
	assert.Equal(t, "r", r.Name)
	assert.Equal(t, []AttrMatch{{"cpu.mode", "busy"}, {"host.name", "h1"}}, r.Filter)
	th, ok := r.Thresholds.Get(Warning)
	assert.True(t, ok)
	assert.InDelta(t, 0.9, th, 0)
}
