package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
)

func TestLevelRank(t *testing.T) {
	tests := map[string]int{"INFO": 1, "warning": 2, "Error": 3, "CRITICAL": 4, "": 0, "FATAL": 0}
	for level, want := range tests {
		assert.Equal(t, want, LevelRank(level), level)
	}
}

func TestFromChangeTable(t *testing.T) {
	tests := []struct {
		name        string
		in          state.AlertChange
		wantLabels  map[string]string
		wantSummary string
		wantStart   time.Time
		wantEnd     time.Time
	}{
		{
			name: "build alert with pipeline",
			in:   state.AlertChange{Scope: state.ScopeBuild, BuildID: "b", Pipeline: "p", Host: "h", Rule: "slow", Level: "WARNING", Value: 1.23456789, Since: t0.UnixNano()},
			wantLabels: map[string]string{"alertname": "slow", "severity": "warning", "scope": "build", "service": "buildmon",
				"build_id": "b", "pipeline": "p", "host": "h"},
			wantSummary: "WARNING slow on build b on host h (value 1.23457)",
			wantStart:   t0,
		},
		{
			name:        "build alert without host",
			in:          state.AlertChange{Scope: state.ScopeBuild, BuildID: "b", Rule: "slow", Level: "ERROR", Value: 2, Since: t0.UnixNano()},
			wantLabels:  map[string]string{"alertname": "slow", "severity": "error", "scope": "build", "service": "buildmon", "build_id": "b"},
			wantSummary: "ERROR slow on build b (value 2)",
			wantStart:   t0,
		},
		{
			name:        "without since, starts when it changed",
			in:          state.AlertChange{Scope: state.ScopeHost, Host: "h", Rule: "cpu", Level: "CRITICAL", Value: 0.99, At: t0.Add(time.Second).UnixNano()},
			wantLabels:  map[string]string{"alertname": "cpu", "severity": "critical", "scope": "host", "service": "buildmon", "host": "h"},
			wantSummary: "CRITICAL cpu on host h (value 0.99)",
			wantStart:   t0.Add(time.Second),
		},
		{
			name:        "resolved at once ends after it started",
			in:          state.AlertChange{Scope: state.ScopeHost, Host: "h", Rule: "cpu", Level: "ERROR", Since: t0.UnixNano(), At: t0.UnixNano(), Resolved: true},
			wantLabels:  map[string]string{"alertname": "cpu", "severity": "error", "scope": "host", "service": "buildmon", "host": "h"},
			wantSummary: "ERROR cpu on host h (value 0)",
			wantStart:   t0,
			wantEnd:     t0.Add(time.Millisecond),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := FromChange(tt.in)
			assert.Equal(t, tt.wantLabels, a.Labels)
			assert.Equal(t, tt.wantSummary, a.Annotations["summary"])
			assert.True(t, a.StartsAt.Equal(tt.wantStart), a.StartsAt)
			assert.True(t, a.EndsAt.Equal(tt.wantEnd), a.EndsAt)
			assert.Equal(t, !tt.wantEnd.IsZero(), a.Resolved())
			assert.Equal(t, tt.in.Rule, a.Rule)
			assert.Equal(t, tt.in.Level, a.Level)
		})
	}
	// A level is part of the identity: a level change is another alert.
	c := state.AlertChange{Scope: state.ScopeHost, Host: "h", Rule: "cpu", Level: "ERROR"}
	d := c
	d.Level = "CRITICAL"
	assert.NotEqual(t, FromChange(c).Key, FromChange(d).Key)
}

// captureServer records the bodies posted to it.
func captureServer(t *testing.T) (*httptest.Server, <-chan []byte) {
	t.Helper()
	bodies := make(chan []byte, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	t.Cleanup(srv.Close)
	return srv, bodies
}

func TestSenderBodies(t *testing.T) {
	firing := FromChange(state.AlertChange{Scope: state.ScopeHost, Host: "h", Rule: "cpu", Level: "ERROR", Value: 0.9, Since: t0.UnixNano()})
	resolved := FromChange(state.AlertChange{Scope: state.ScopeHost, Host: "h", Rule: "mem", Level: "ERROR", Since: t0.UnixNano(), At: t0.Add(time.Minute).UnixNano(), Resolved: true})
	srv, bodies := captureServer(t)

	am := &AlertmanagerSender{Client: srv.Client(), BaseURL: srv.URL}
	require.NoError(t, am.Send(context.Background(), []Alert{firing, resolved}))
	var posted []map[string]any
	require.NoError(t, json.Unmarshal(<-bodies, &posted))
	require.Len(t, posted, 2)
	assert.Equal(t, "2025-03-01T12:00:00Z", posted[0]["startsAt"])
	assert.NotContains(t, posted[0], "endsAt", "a firing alert has no end")
	assert.Equal(t, "2025-03-01T12:01:00Z", posted[1]["endsAt"])
	assert.Equal(t, "cpu", posted[0]["labels"].(map[string]any)["alertname"])

	wh := &WebhookSender{Client: srv.Client(), URL: srv.URL + "/hook"}
	assert.Equal(t, "webhook", wh.Target())
	assert.Equal(t, srv.URL+"/hook", wh.Endpoint())
	require.NoError(t, wh.Send(context.Background(), []Alert{firing, resolved}))
	var p WebhookPayload
	require.NoError(t, json.Unmarshal(<-bodies, &p))
	assert.Equal(t, "1", p.Version)
	assert.Equal(t, "buildmon", p.Sender)
	require.Len(t, p.Alerts, 2)
	assert.Equal(t, "firing", p.Alerts[0].Status)
	assert.Empty(t, p.Alerts[0].EndsAt)
	assert.Equal(t, "resolved", p.Alerts[1].Status)
	assert.Equal(t, "2025-03-01T12:01:00Z", p.Alerts[1].EndsAt)
	assert.Equal(t, "alertmanager", am.Target())
}

// Failures before an answer are retried; a request that cannot be made is permanent; the
// answer's text is in the error.
func TestPostJSONFailures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, strings.Repeat("bad label ", 100), http.StatusBadRequest)
	}))
	err := postJSON(context.Background(), srv.Client(), srv.URL, []int{1}, nil)
	var perm *PermanentError
	require.ErrorAs(t, err, &perm)
	assert.Contains(t, err.Error(), "400 Bad Request: bad label")
	assert.Less(t, len(err.Error()), 700, "the answer is cut")
	url := srv.URL
	srv.Close()
	err = postJSON(context.Background(), http.DefaultClient, url, []int{1}, nil)
	require.Error(t, err)
	assert.False(t, errors.As(err, &perm), "a refused connection is retried: %v", err)
	err = postJSON(context.Background(), http.DefaultClient, "http://[::1", []int{1}, nil)
	assert.ErrorAs(t, err, &perm)
	err = postJSON(context.Background(), http.DefaultClient, url, map[string]any{"f": func() {}}, nil)
	assert.ErrorAs(t, err, &perm)
}

// scriptSender answers each Send with the next scripted result and reports each batch.
type scriptSender struct {
	results chan error
	batches chan []Alert
}

func newScriptSender() *scriptSender {
	return &scriptSender{results: make(chan error, 100), batches: make(chan []Alert, 100)}
}

func (*scriptSender) Target() string   { return "script" }
func (*scriptSender) Endpoint() string { return "http://script" }
func (s *scriptSender) Send(ctx context.Context, alerts []Alert) error {
	select {
	case err := <-s.results:
		s.batches <- append([]Alert(nil), alerts...)
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *scriptSender) next(t *testing.T) []Alert {
	t.Helper()
	select {
	case b := <-s.batches:
		return b
	case <-time.After(20 * time.Second):
		t.Fatal("nothing was sent")
		return nil
	}
}

func rules(batch []Alert) []string {
	out := make([]string, 0, len(batch))
	for _, a := range batch {
		s := a.Rule
		if a.Resolved() {
			s += "/resolved"
		}
		out = append(out, s)
	}
	return out
}

// Firing alerts are sent again every resend interval until they resolve.
func TestDispatcherResendsFiringAlerts(t *testing.T) {
	fc := clock.NewFake(t0)
	s := newScriptSender()
	d := NewDispatcher(Settings{Sender: s, Clock: fc, ResendInterval: time.Minute, MinLevel: 1})
	d.Start()
	defer d.Stop()
	s.results <- nil
	d.Notify([]state.AlertChange{change("a", "ERROR", false), change("b", "ERROR", false)})
	assert.Equal(t, []string{"a", "b"}, rules(s.next(t)))
	require.True(t, fc.BlockUntil(1))
	s.results <- nil
	fc.Advance(time.Minute)
	assert.ElementsMatch(t, []string{"a", "b"}, rules(s.next(t)), "re-sent")
	s.results <- nil
	d.Notify([]state.AlertChange{change("a", "ERROR", true)})
	assert.Equal(t, []string{"a/resolved"}, rules(s.next(t)))
	assert.Equal(t, 1, d.Active())
	s.results <- nil
	fc.Advance(time.Minute)
	assert.Equal(t, []string{"b"}, rules(s.next(t)), "only what still fires is re-sent")
}

// A permanent failure, or any failure without retries, drops the batch at once.
func TestDispatcherDropsWithoutRetry(t *testing.T) {
	tests := []struct {
		name    string
		backoff Backoff
		err     error
	}{
		{name: "permanent error", backoff: Backoff{Enabled: true, InitialInterval: time.Second}, err: &PermanentError{Err: errors.New("400")}},
		{name: "retries off", backoff: Backoff{}, err: errors.New("503")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScriptSender()
			var mu sync.Mutex
			var failedRetrying []bool
			dropped := make(chan error, 1)
			d := NewDispatcher(Settings{Sender: s, Clock: clock.NewFake(t0), MinLevel: 1, Backoff: tt.backoff, Hooks: Hooks{
				Failed: func(_, _ string, _ []Alert, _ error, retrying bool) {
					mu.Lock()
					defer mu.Unlock()
					failedRetrying = append(failedRetrying, retrying)
				},
				Dropped: func(target, endpoint string, alerts []Alert, reason error) {
					assert.Equal(t, "script", target)
					assert.Equal(t, "http://script", endpoint)
					assert.Len(t, alerts, 1)
					dropped <- reason
				},
			}})
			d.Start()
			defer d.Stop()
			s.results <- tt.err
			d.Notify([]state.AlertChange{change("x", "ERROR", false)})
			s.next(t)
			select {
			case reason := <-dropped:
				assert.Equal(t, tt.err, reason)
			case <-time.After(20 * time.Second):
				t.Fatal("not dropped")
			}
			mu.Lock()
			assert.Equal(t, []bool{false}, failedRetrying)
			mu.Unlock()
		})
	}
}

// While a batch waits to be retried, a newer state of one of its alerts replaces it.
func TestDispatcherRetrySendsTheNewestState(t *testing.T) {
	fc := clock.NewFake(t0)
	s := newScriptSender()
	sent := make(chan []Alert, 10)
	d := NewDispatcher(Settings{Sender: s, Clock: fc, MinLevel: 1,
		Backoff: Backoff{Enabled: true, InitialInterval: time.Second, Multiplier: 1},
		Hooks:   Hooks{Sent: func(_, _ string, alerts []Alert) { sent <- alerts }}})
	d.Start()
	defer d.Stop()
	s.results <- errors.New("503")
	d.Notify([]state.AlertChange{change("x", "ERROR", false)})
	assert.Equal(t, []string{"x"}, rules(s.next(t)))
	require.True(t, fc.BlockUntil(1), "waiting to retry")
	d.Notify([]state.AlertChange{change("x", "ERROR", true)})
	s.results <- nil
	fc.Advance(time.Second)
	assert.Equal(t, []string{"x/resolved"}, rules(s.next(t)))
	assert.Equal(t, []string{"x/resolved"}, rules(<-sent))
	assert.Zero(t, d.Active())
}

// Stop returns while a batch waits for its retry, and while a Send is in flight.
func TestDispatcherStopsWhileWaiting(t *testing.T) {
	fc := clock.NewFake(t0)
	s := newScriptSender()
	d := NewDispatcher(Settings{Sender: s, Clock: fc, MinLevel: 1, Backoff: Backoff{Enabled: true, InitialInterval: time.Hour}})
	d.Start()
	s.results <- errors.New("503")
	d.Notify([]state.AlertChange{change("x", "ERROR", false)})
	s.next(t)
	require.True(t, fc.BlockUntil(1))
	d.Stop()

	inFlight := NewDispatcher(Settings{Sender: newScriptSender(), Clock: fc, MinLevel: 1})
	inFlight.Start()
	inFlight.Notify([]state.AlertChange{change("y", "ERROR", false)})
	inFlight.Stop() // the Send blocks until the context ends
}

// Batches hold at most MaxBatch notifications, in order of arrival.
func TestDispatcherBatches(t *testing.T) {
	s := newScriptSender()
	d := NewDispatcher(Settings{Sender: s, Clock: clock.NewFake(t0), MinLevel: 1, MaxBatch: 2})
	for i := 0; i < 3; i++ {
		s.results <- nil
	}
	d.Notify([]state.AlertChange{change("a", "ERROR", false), change("b", "ERROR", false), change("c", "ERROR", false), change("d", "ERROR", false), change("e", "ERROR", false)})
	d.Start()
	defer d.Stop()
	assert.Equal(t, []string{"a", "b"}, rules(s.next(t)))
	assert.Equal(t, []string{"c", "d"}, rules(s.next(t)))
	assert.Equal(t, []string{"e"}, rules(s.next(t)))
}

func TestNewDispatcherDefaults(t *testing.T) {
	d := NewDispatcher(Settings{Sender: newScriptSender(), Clock: clock.NewFake(t0)})
	assert.Equal(t, 1000, d.set.QueueSize)
	assert.Equal(t, 64, d.set.MaxBatch)
	d.Notify([]state.AlertChange{change("x", "INFO", false)})
	assert.Equal(t, 1, d.Active(), "MinLevel 0 notifies every level")
}

func TestBackoffDelayTable(t *testing.T) {
	tests := []struct {
		name    string
		b       Backoff
		attempt int
		want    time.Duration
	}{
		{name: "first", b: Backoff{InitialInterval: time.Second, Multiplier: 3}, attempt: 1, want: time.Second},
		{name: "grows", b: Backoff{InitialInterval: time.Second, Multiplier: 3}, attempt: 3, want: 9 * time.Second},
		{name: "no cap without MaxInterval", b: Backoff{InitialInterval: time.Second, Multiplier: 2}, attempt: 11, want: 1024 * time.Second},
		{name: "capped", b: Backoff{InitialInterval: time.Second, Multiplier: 10, MaxInterval: 30 * time.Second}, attempt: 4, want: 30 * time.Second},
		{name: "a multiplier below 1 does not shrink", b: Backoff{InitialInterval: time.Second, Multiplier: 0.5}, attempt: 5, want: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.b.delay(tt.attempt))
		})
	}
}

// A resend that does not fit into the queue drops the oldest and says so (which ones depends
// on the order the firing alerts are re-queued in); the alerts stay active and are re-sent at
// the next interval.
func TestDispatcherResendIntoAFullQueue(t *testing.T) {
	fc := clock.NewFake(t0)
	s := newScriptSender()
	dropped := make(chan []Alert, 10)
	d := NewDispatcher(Settings{Sender: s, Clock: fc, ResendInterval: time.Minute, MinLevel: 1, QueueSize: 2, MaxBatch: 1,
		Hooks: Hooks{Dropped: func(_, _ string, alerts []Alert, reason error) {
			assert.ErrorIs(t, reason, ErrQueueFull)
			dropped <- alerts
		}}})
	d.Start()
	defer d.Stop()
	// The first batch blocks in Send while the other two wait in the queue.
	queued := func() int { d.mu.Lock(); defer d.mu.Unlock(); return len(d.order) }
	d.Notify([]state.AlertChange{change("a", "ERROR", false)})
	require.Eventually(t, func() bool { return queued() == 0 }, 20*time.Second, time.Millisecond)
	d.Notify([]state.AlertChange{change("b", "ERROR", false), change("c", "ERROR", false)})
	require.Equal(t, 2, queued())
	d.resendActive() // as the ticker would: a, b and c again into a queue of 2
	got := <-dropped
	assert.NotEmpty(t, got)
	assert.Equal(t, 2, queued(), "the queue stays within its bound")
	assert.Equal(t, 3, d.Active(), "dropping a notification does not forget the alert")
	for i := 0; i < 3; i++ {
		s.results <- nil
	}
	var sent []string
	for i := 0; i < 3; i++ {
		sent = append(sent, rules(s.next(t))...)
	}
	assert.Len(t, sent, 3)
}

// What Notify keeps: nothing below MinLevel, and a resolution only of an alert it knows.
func TestNotifyKeeps(t *testing.T) {
	tests := []struct {
		name        string
		changes     []state.AlertChange
		wantPending []string
		wantActive  int
	}{
		{name: "below the minimum level", changes: []state.AlertChange{change("w", "WARNING", false)}},
		{name: "resolution of an unknown alert", changes: []state.AlertChange{change("x", "ERROR", true)}},
		{name: "firing then resolved before sending: the resolution replaces it", changes: []state.AlertChange{
			change("x", "ERROR", false), change("x", "ERROR", true)}, wantPending: []string{"x/resolved"}},
		{name: "two levels of one rule are two alerts", changes: []state.AlertChange{
			change("x", "ERROR", false), change("x", "CRITICAL", false)}, wantPending: []string{"x", "x"}, wantActive: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDispatcher(Settings{Sender: newScriptSender(), Clock: clock.NewFake(t0), MinLevel: LevelRank("ERROR")})
			d.Notify(tt.changes)
			var pending []Alert
			for _, k := range d.order {
				pending = append(pending, d.pending[k])
			}
			assert.Equal(t, len(tt.wantPending), len(pending))
			if len(tt.wantPending) > 0 {
				assert.Equal(t, tt.wantPending, rules(pending))
			}
			assert.Equal(t, tt.wantActive, d.Active())
		})
	}
}
