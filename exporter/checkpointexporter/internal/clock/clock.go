// Package clock abstracts time for the checkpoint exporter so that intervals, retention,
// alert staleness, notification re-sends and backoff are tested with a fake clock instead
// of sleeps.
package clock // import "github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"

import (
	"sort"
	"sync"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once after d.
	NewTimer(d time.Duration) Timer
	// NewTicker returns a ticker that fires every d (d > 0).
	NewTicker(d time.Duration) Ticker
}

// Timer is a one-shot timer.
type Timer interface {
	C() <-chan time.Time
	// Stop stops the timer; it reports whether the timer was still pending.
	Stop() bool
}

// Ticker fires periodically.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// System is the Clock of the running process.
type System struct{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// NewTimer wraps time.NewTimer.
func (System) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

// NewTicker wraps time.NewTicker.
func (System) NewTicker(d time.Duration) Ticker { return sysTicker{time.NewTicker(d)} }

type sysTimer struct{ t *time.Timer }

func (s sysTimer) C() <-chan time.Time { return s.t.C }
func (s sysTimer) Stop() bool          { return s.t.Stop() }

type sysTicker struct{ t *time.Ticker }

func (s sysTicker) C() <-chan time.Time { return s.t.C }
func (s sysTicker) Stop()               { s.t.Stop() }

// Fake is a Clock that only moves when Advance is called. Timers and tickers fire (without
// blocking, into a channel of capacity 1, like the time package's) when the clock passes
// their deadline.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*fakeTimer // guarded by mu
	changed chan struct{}
}

// NewFake returns a fake clock at now.
func NewFake(now time.Time) *Fake {
	return &Fake{now: now, changed: make(chan struct{})}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a fake timer.
func (f *Fake) NewTimer(d time.Duration) Timer {
	return f.add(d, 0)
}

// NewTicker returns a fake ticker.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive ticker interval")
	}
	return fakeTicker{f.add(d, d)}
}

func (f *Fake) add(d, period time.Duration) *fakeTimer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{clock: f, at: f.now.Add(d), period: period, c: make(chan time.Time, 1)}
	if d <= 0 && period == 0 {
		t.c <- f.now
		return t
	}
	f.waiters = append(f.waiters, t)
	f.notify()
	return t
}

// notify wakes up BlockUntil callers; f.mu must be held.
func (f *Fake) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Advance moves the clock forward by d and fires every timer and ticker that is due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := f.now.Add(d)
	for {
		sort.SliceStable(f.waiters, func(i, j int) bool { return f.waiters[i].at.Before(f.waiters[j].at) })
		if len(f.waiters) == 0 || f.waiters[0].at.After(end) {
			break
		}
		t := f.waiters[0]
		f.now = t.at
		select {
		case t.c <- t.at:
		default:
		}
		if t.period > 0 {
			t.at = t.at.Add(t.period)
		} else {
			f.waiters = f.waiters[1:]
		}
	}
	f.now = end
	f.notify()
}

// Waiters returns the number of pending timers and tickers.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// BlockUntil waits until at least n timers and tickers are pending, so that a test advances
// the clock only once the goroutine under test waits on it. It gives up after a real-time
// minute so that a broken test fails instead of hanging.
func (f *Fake) BlockUntil(n int) bool {
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		if len(f.waiters) >= n {
			f.mu.Unlock()
			return true
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

type fakeTimer struct {
	clock  *Fake
	at     time.Time
	period time.Duration
	c      chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	f := t.clock
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, w := range f.waiters {
		if w == t {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			f.notify()
			return true
		}
	}
	return false
}

// fakeTicker adapts a periodic fakeTimer to Ticker, whose Stop has no result.
type fakeTicker struct{ *fakeTimer }

func (t fakeTicker) Stop() { t.fakeTimer.Stop() }

var (
	_ Timer = (*fakeTimer)(nil)
	_ Clock = (*Fake)(nil)
)
