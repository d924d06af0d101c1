// Package notify sends alert notifications (seed §7: ERROR and CRITICAL "Alert") to
// Alertmanager's v2 API or to a generic webhook. A Dispatcher per target keeps the firing
// alerts, re-sends them while they fire, sends their resolution, and retries failed requests
// with exponential backoff — in its own goroutine, so that notifying never blocks the
// pipeline. Its queue is bounded: past the bound the oldest pending notification is dropped.
package notify // import "github.com/buildmon/buildmon/exporter/checkpointexporter/internal/notify"

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
)

// Alert is one notification: an alert that fires (EndsAt zero) or resolved.
type Alert struct {
	// Key identifies the alert across notifications (its label set).
	Key         string
	Labels      map[string]string
	Annotations map[string]string
	StartsAt    time.Time
	EndsAt      time.Time
	// Level, Rule, BuildID and Host repeat labels for the audit log.
	Level, Rule, BuildID, Host string
}

// Resolved reports whether the notification says the alert stopped.
func (a Alert) Resolved() bool { return !a.EndsAt.IsZero() }

// levels ranks the alert levels.
var levels = map[string]int{"INFO": 1, "WARNING": 2, "ERROR": 3, "CRITICAL": 4}

// LevelRank returns the rank of a level (INFO 1 … CRITICAL 4), 0 if unknown.
func LevelRank(level string) int { return levels[strings.ToUpper(level)] }

// FromChange turns a state change of a firing alert into a notification.
func FromChange(c state.AlertChange) Alert {
	labels := map[string]string{
		"alertname": c.Rule,
		"severity":  strings.ToLower(c.Level),
		"scope":     c.Scope,
		"service":   "buildmon",
	}
	where := "host " + c.Host
	if c.Host != "" {
		labels["host"] = c.Host
	}
	if c.Scope == state.ScopeBuild {
		labels["build_id"] = c.BuildID
		if c.Pipeline != "" {
			labels["pipeline"] = c.Pipeline
		}
		where = "build " + c.BuildID
		if c.Host != "" {
			where += " on host " + c.Host
		}
	}
	value := strconv.FormatFloat(c.Value, 'g', 6, 64)
	a := Alert{
		Key:    strings.Join([]string{c.Scope, c.BuildID, c.Host, c.Rule, c.Level}, "\x00"),
		Labels: labels,
		Annotations: map[string]string{
			"value":   value,
			"summary": fmt.Sprintf("%s %s on %s (value %s)", c.Level, c.Rule, where, value),
		},
		StartsAt: time.Unix(0, c.Since).UTC(),
		Level:    c.Level, Rule: c.Rule, BuildID: c.BuildID, Host: c.Host,
	}
	if c.Since == 0 {
		a.StartsAt = time.Unix(0, c.At).UTC()
	}
	if c.Resolved {
		a.EndsAt = time.Unix(0, c.At).UTC()
		if !a.EndsAt.After(a.StartsAt) {
			a.EndsAt = a.StartsAt.Add(time.Millisecond)
		}
	}
	return a
}

// Sender delivers a batch of notifications to one target.
type Sender interface {
	// Target names the target (alertmanager, webhook); Endpoint is its URL.
	Target() string
	Endpoint() string
	Send(ctx context.Context, alerts []Alert) error
}

// PermanentError marks a failure that retrying cannot fix (the target rejected the request).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Backoff configures retries: the first retry waits InitialInterval, each next one
// Multiplier times longer up to MaxInterval, each randomized by ±RandomizationFactor; a
// batch is given up MaxElapsedTime after its first attempt (0: never). Without Enabled a
// failed batch is given up at once.
type Backoff struct {
	Enabled             bool
	InitialInterval     time.Duration
	MaxInterval         time.Duration
	Multiplier          float64
	RandomizationFactor float64
	MaxElapsedTime      time.Duration
}

func (b Backoff) delay(attempt int) time.Duration {
	d := float64(b.InitialInterval)
	for i := 1; i < attempt; i++ {
		d *= max(b.Multiplier, 1)
		if b.MaxInterval > 0 && d > float64(b.MaxInterval) {
			d = float64(b.MaxInterval)
			break
		}
	}
	if r := b.RandomizationFactor; r > 0 {
		d *= 1 - r + 2*r*rand.Float64() //nolint:gosec // jitter, not security
	}
	return time.Duration(d)
}

// Hooks report what a Dispatcher does (telemetry, audit log, logging). Each may be nil.
type Hooks struct {
	// Sent is called after a batch was delivered.
	Sent func(target, endpoint string, alerts []Alert)
	// Failed is called after each failed attempt; retrying says whether it will be retried.
	Failed func(target, endpoint string, alerts []Alert, err error, retrying bool)
	// Dropped is called for notifications given up (queue full or retries exhausted).
	Dropped func(target, endpoint string, alerts []Alert, reason error)
}

// Settings configure a Dispatcher.
type Settings struct {
	Sender Sender
	Clock  clock.Clock
	// ResendInterval is how often firing alerts are sent again (0: never).
	ResendInterval time.Duration
	// MinLevel is the lowest level notified (rank of LevelRank).
	MinLevel  int
	QueueSize int
	MaxBatch  int
	Backoff   Backoff
	Hooks     Hooks
}

// ErrQueueFull is the reason given to Hooks.Dropped for notifications dropped because the
// queue was full.
var ErrQueueFull = errors.New("notification queue full")

// Dispatcher sends the notifications of one target. Notify never blocks; a goroutine
// started by Start sends. mu guards active, pending and order.
type Dispatcher struct {
	set Settings

	mu sync.Mutex
	// active holds the firing alerts, re-sent every ResendInterval.
	active map[string]Alert
	// pending holds the newest notification per key not yet sent, in order of arrival.
	pending map[string]Alert
	order   []string

	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// NewDispatcher returns a Dispatcher; call Start to start sending.
func NewDispatcher(set Settings) *Dispatcher {
	if set.QueueSize <= 0 {
		set.QueueSize = 1000
	}
	if set.MaxBatch <= 0 {
		set.MaxBatch = 64
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Dispatcher{
		set: set, active: map[string]Alert{}, pending: map[string]Alert{},
		wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
}

// Notify queues notifications for the alert changes at or above MinLevel.
func (d *Dispatcher) Notify(changes []state.AlertChange) {
	var dropped []Alert
	d.mu.Lock()
	queued := false
	for _, c := range changes {
		if LevelRank(c.Level) < d.set.MinLevel {
			continue
		}
		a := FromChange(c)
		if a.Resolved() {
			if _, ok := d.active[a.Key]; !ok {
				// Never notified as firing (e.g. dropped while the queue was full): drop the
				// resolution only if nothing about the alert is pending either.
				if _, ok := d.pending[a.Key]; !ok {
					continue
				}
			}
			delete(d.active, a.Key)
		} else {
			d.active[a.Key] = a
		}
		dropped = append(dropped, d.enqueue(a)...)
		queued = true
	}
	d.mu.Unlock()
	if len(dropped) > 0 && d.set.Hooks.Dropped != nil {
		d.set.Hooks.Dropped(d.set.Sender.Target(), d.set.Sender.Endpoint(), dropped, ErrQueueFull)
	}
	if queued {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// enqueue adds a to pending; d.mu must be held. It returns what was dropped to stay within
// QueueSize.
func (d *Dispatcher) enqueue(a Alert) []Alert {
	if _, ok := d.pending[a.Key]; ok {
		d.pending[a.Key] = a // the newest state of an alert replaces the older one
		return nil
	}
	d.pending[a.Key] = a
	d.order = append(d.order, a.Key)
	var dropped []Alert
	for len(d.order) > d.set.QueueSize {
		oldest := d.order[0]
		d.order = d.order[1:]
		dropped = append(dropped, d.pending[oldest])
		delete(d.pending, oldest)
	}
	return dropped
}

// take removes up to MaxBatch pending notifications.
func (d *Dispatcher) take() []Alert {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := min(len(d.order), d.set.MaxBatch)
	batch := make([]Alert, 0, n)
	for _, k := range d.order[:n] {
		batch = append(batch, d.pending[k])
		delete(d.pending, k)
	}
	d.order = d.order[n:]
	return batch
}

// refresh replaces batch entries by newer pending notifications of the same alert before a
// retry.
func (d *Dispatcher) refresh(batch []Alert) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, a := range batch {
		if newer, ok := d.pending[a.Key]; ok {
			batch[i] = newer
			delete(d.pending, a.Key)
			for j, k := range d.order {
				if k == a.Key {
					d.order = append(d.order[:j], d.order[j+1:]...)
					break
				}
			}
		}
	}
}

// resendActive queues every firing alert again.
func (d *Dispatcher) resendActive() {
	var dropped []Alert
	d.mu.Lock()
	for _, a := range d.active {
		dropped = append(dropped, d.enqueue(a)...)
	}
	d.mu.Unlock()
	if len(dropped) > 0 && d.set.Hooks.Dropped != nil {
		d.set.Hooks.Dropped(d.set.Sender.Target(), d.set.Sender.Endpoint(), dropped, ErrQueueFull)
	}
}

// Active returns the number of firing alerts the dispatcher keeps.
func (d *Dispatcher) Active() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.active)
}

// Start starts the sending goroutine.
func (d *Dispatcher) Start() { go d.run() }

// Stop stops the goroutine, abandoning a request in flight and what is still pending.
func (d *Dispatcher) Stop() {
	d.cancel()
	<-d.done
}

func (d *Dispatcher) run() {
	defer close(d.done)
	var resend <-chan time.Time
	if d.set.ResendInterval > 0 {
		t := d.set.Clock.NewTicker(d.set.ResendInterval)
		defer t.Stop()
		resend = t.C()
	}
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.wake:
		case <-resend:
			d.resendActive()
		}
		for {
			batch := d.take()
			if len(batch) == 0 {
				break
			}
			if !d.deliver(batch) {
				return
			}
		}
	}
}

// deliver sends a batch, retrying with backoff; it returns false when the dispatcher stops.
func (d *Dispatcher) deliver(batch []Alert) bool {
	target, endpoint := d.set.Sender.Target(), d.set.Sender.Endpoint()
	start := d.set.Clock.Now()
	for attempt := 1; ; attempt++ {
		err := d.set.Sender.Send(d.ctx, batch)
		if err == nil {
			if d.set.Hooks.Sent != nil {
				d.set.Hooks.Sent(target, endpoint, batch)
			}
			return true
		}
		if d.ctx.Err() != nil {
			return false
		}
		var perm *PermanentError
		b := d.set.Backoff
		wait := b.delay(attempt)
		retry := b.Enabled && !errors.As(err, &perm) &&
			(b.MaxElapsedTime <= 0 || d.set.Clock.Now().Add(wait).Sub(start) <= b.MaxElapsedTime)
		if d.set.Hooks.Failed != nil {
			d.set.Hooks.Failed(target, endpoint, batch, err, retry)
		}
		if !retry {
			if d.set.Hooks.Dropped != nil {
				d.set.Hooks.Dropped(target, endpoint, batch, err)
			}
			return true
		}
		t := d.set.Clock.NewTimer(wait)
		select {
		case <-d.ctx.Done():
			t.Stop()
			return false
		case <-t.C():
		}
		d.refresh(batch)
	}
}
