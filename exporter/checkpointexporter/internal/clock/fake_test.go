package clock

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// fired returns what a channel holds now, without waiting.
func fired(c <-chan time.Time) (time.Time, bool) {
	select {
	case at := <-c:
		return at, true
	default:
		return time.Time{}, false
	}
}

func TestFakeTimerTable(t *testing.T) {
	tests := []struct {
		name     string
		d        time.Duration
		advances []time.Duration
		wantAt   time.Duration // when it fired, from start
		wantFire bool
	}{
		{name: "not yet due", d: time.Second, advances: []time.Duration{999 * time.Millisecond}},
		{name: "due exactly", d: time.Second, advances: []time.Duration{time.Second}, wantFire: true, wantAt: time.Second},
		{name: "passed in one step fires at its deadline", d: time.Second, advances: []time.Duration{time.Hour}, wantFire: true, wantAt: time.Second},
		{name: "passed in several steps", d: 3 * time.Second, advances: []time.Duration{time.Second, time.Second, 2 * time.Second}, wantFire: true, wantAt: 3 * time.Second},
		{name: "negative fires at once", d: -time.Second, wantFire: true, wantAt: 0},
		{name: "zero fires at once", d: 0, wantFire: true, wantAt: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake(start)
			timer := f.NewTimer(tt.d)
			for _, a := range tt.advances {
				f.Advance(a)
			}
			at, ok := fired(timer.C())
			require.Equal(t, tt.wantFire, ok)
			if ok {
				assert.Equal(t, start.Add(tt.wantAt), at)
				assert.Zero(t, f.Waiters(), "a fired timer is no longer pending")
			}
		})
	}
}

// Timers fire in deadline order, whatever the order they were made in, and the clock reads
// each deadline while it fires.
func TestFakeTimersFireInDeadlineOrder(t *testing.T) {
	f := NewFake(start)
	late, early := f.NewTimer(3*time.Second), f.NewTimer(time.Second)
	f.Advance(5 * time.Second)
	at1, ok1 := fired(early.C())
	at2, ok2 := fired(late.C())
	require.True(t, ok1)
	require.True(t, ok2)
	assert.True(t, at1.Before(at2))
	assert.Equal(t, start.Add(5*time.Second), f.Now())
}

// Like time.Ticker, a fake ticker's channel holds one tick: ticks nobody took are dropped,
// and it keeps its phase.
func TestFakeTickerDropsTicksAndKeepsPhase(t *testing.T) {
	f := NewFake(start)
	tk := f.NewTicker(time.Second)
	f.Advance(3500 * time.Millisecond)
	at, ok := fired(tk.C())
	require.True(t, ok)
	assert.Equal(t, start.Add(time.Second), at, "the first tick waits, the later ones were dropped")
	_, ok = fired(tk.C())
	assert.False(t, ok)
	f.Advance(500 * time.Millisecond)
	at, ok = fired(tk.C())
	require.True(t, ok)
	assert.Equal(t, start.Add(4*time.Second), at)
	assert.Equal(t, 1, f.Waiters())
	tk.Stop()
	assert.Zero(t, f.Waiters())
	f.Advance(time.Hour)
	_, ok = fired(tk.C())
	assert.False(t, ok, "a stopped ticker does not tick")
}

func TestFakeTickerRefusesNonPositive(t *testing.T) {
	f := NewFake(start)
	for _, d := range []time.Duration{0, -time.Second} {
		assert.Panics(t, func() { f.NewTicker(d) }, "interval %v", d)
	}
}

// BlockUntil returns once another goroutine waits on the clock.
func TestFakeBlockUntilWakesUp(t *testing.T) {
	f := NewFake(start)
	done := make(chan bool)
	go func() { done <- f.BlockUntil(2) }()
	f.NewTimer(time.Second)
	f.NewTicker(time.Minute).Stop()
	f.NewTimer(time.Minute)
	assert.True(t, <-done)
}

// Stop reports whether the timer was pending, once.
func TestFakeTimerStopOnce(t *testing.T) {
	f := NewFake(start)
	timer := f.NewTimer(time.Second)
	assert.True(t, timer.Stop())
	assert.False(t, timer.Stop())
	f.Advance(time.Minute)
	_, ok := fired(timer.C())
	assert.False(t, ok)
}

func TestSystemClock(t *testing.T) {
	var c Clock = System{}
	before := time.Now()
	now := c.Now()
	assert.False(t, now.Before(before))
	timer := c.NewTimer(time.Millisecond)
	select {
	case <-timer.C():
	case <-time.After(time.Minute):
		t.Fatal("the system timer never fired")
	}
	assert.False(t, timer.Stop(), "a fired timer is not pending")
	pending := c.NewTimer(time.Hour)
	assert.True(t, pending.Stop())
	tk := c.NewTicker(time.Millisecond)
	select {
	case <-tk.C():
	case <-time.After(time.Minute):
		t.Fatal("the system ticker never ticked")
	}
	tk.Stop()
}

// A ticker and a timer in one Advance: each fires at its own deadline, and what the ticker
// fired first is what its channel holds.
func TestFakeAdvanceInterleaves(t *testing.T) {
	tests := []struct {
		name      string
		advance   time.Duration
		wantTick  time.Duration
		wantTimer bool
	}{
		{name: "before the timer", advance: 1500 * time.Millisecond, wantTick: time.Second},
		{name: "past the timer", advance: 2500 * time.Millisecond, wantTick: time.Second, wantTimer: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake(start)
			tk := f.NewTicker(time.Second)
			defer tk.Stop()
			timer := f.NewTimer(2 * time.Second)
			f.Advance(tt.advance)
			at, ok := fired(tk.C())
			require.True(t, ok)
			assert.Equal(t, start.Add(tt.wantTick), at)
			_, ok = fired(timer.C())
			assert.Equal(t, tt.wantTimer, ok)
			assert.Equal(t, start.Add(tt.advance), f.Now())
		})
	}
}

// Now, timers and Advance may be used from several goroutines (the race detector checks).
func TestFakeConcurrentUse(t *testing.T) {
	f := NewFake(start)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 100; i++ {
			f.NewTimer(time.Duration(i) * time.Millisecond).Stop()
			_ = f.Now()
		}
	}()
	for i := 0; i < 100; i++ {
		f.Advance(time.Millisecond)
	}
	<-done
	assert.Equal(t, start.Add(100*time.Millisecond), f.Now())
}
