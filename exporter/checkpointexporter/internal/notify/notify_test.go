package notify

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// blockingSender records batches; it blocks each Send until release gets a value.
type blockingSender struct {
	mu      sync.Mutex
	batches [][]Alert
	release chan error
	sent    chan struct{}
}

func (*blockingSender) Target() string   { return "test" }
func (*blockingSender) Endpoint() string { return "http://test" }
func (s *blockingSender) Send(ctx context.Context, alerts []Alert) error {
	select {
	case err := <-s.release:
		s.mu.Lock()
		if err == nil {
			s.batches = append(s.batches, alerts)
		}
		s.mu.Unlock()
		s.sent <- struct{}{}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func change(rule, level string, resolved bool) state.AlertChange {
	return state.AlertChange{Scope: state.ScopeBuild, BuildID: "b", Host: "h", Rule: rule, Level: level,
		Value: 1, Since: t0.UnixNano(), At: t0.Add(time.Minute).UnixNano(), Resolved: resolved}
}

func TestFromChange(t *testing.T) {
	a := FromChange(change("cpu", "CRITICAL", false))
	assert.Equal(t, map[string]string{"alertname": "cpu", "severity": "critical", "scope": "build", "service": "buildmon",
		"build_id": "b", "host": "h"}, a.Labels)
	assert.False(t, a.Resolved())
	assert.True(t, a.StartsAt.Equal(t0))
	r := FromChange(change("cpu", "CRITICAL", true))
	assert.True(t, r.Resolved())
	assert.True(t, r.EndsAt.Equal(t0.Add(time.Minute)))
	assert.Equal(t, a.Key, r.Key)
	h := FromChange(state.AlertChange{Scope: state.ScopeHost, Host: "h", Rule: "disk", Level: "ERROR", At: 5})
	assert.NotContains(t, h.Labels, "build_id")
	assert.Equal(t, "ERROR disk on host h (value 0)", h.Annotations["summary"])
}

func TestDispatcherQueueIsBoundedAndCoalesces(t *testing.T) {
	s := &blockingSender{release: make(chan error), sent: make(chan struct{}, 10)}
	var dropped []Alert
	var mu sync.Mutex
	d := NewDispatcher(Settings{
		Sender: s, Clock: clock.NewFake(t0), MinLevel: LevelRank("ERROR"), QueueSize: 3, MaxBatch: 10,
		Hooks: Hooks{Dropped: func(_, _ string, alerts []Alert, reason error) {
			mu.Lock()
			defer mu.Unlock()
			require.ErrorIs(t, reason, ErrQueueFull)
			dropped = append(dropped, alerts...)
		}},
	})
	d.Start()
	defer d.Stop()
	// The first batch is taken and blocks in Send; the rest queue up behind it.
	d.Notify([]state.AlertChange{change("first", "ERROR", false)})
	require.Eventually(t, func() bool { d.mu.Lock(); defer d.mu.Unlock(); return len(d.order) == 0 }, 10*time.Second, time.Millisecond)
	d.Notify([]state.AlertChange{
		change("warn-only", "WARNING", false), // below min level
		change("a", "ERROR", false), change("b", "ERROR", false), change("c", "ERROR", false),
		change("d", "ERROR", false),          // the queue holds 3: "a" is dropped
		change("c", "ERROR", true),           // replaces the pending firing "c"
		change("never-fired", "ERROR", true), // resolution of an unknown alert: nothing to send
	})
	mu.Lock()
	require.Len(t, dropped, 1)
	assert.Equal(t, "a", dropped[0].Rule)
	mu.Unlock()
	s.release <- nil
	<-s.sent
	s.release <- nil
	<-s.sent
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Len(t, s.batches, 2)
	var rules []string
	for _, a := range s.batches[1] {
		st := "firing"
		if a.Resolved() {
			st = "resolved"
		}
		rules = append(rules, a.Rule+"/"+st)
	}
	assert.Equal(t, []string{"b/firing", "c/resolved", "d/firing"}, rules)
	// A dropped notification does not forget the alert: "a" fires and is re-sent.
	assert.Equal(t, 4, d.Active(), "first, a, b and d fire")
}

func TestDispatcherRetriesThenGivesUp(t *testing.T) {
	fc := clock.NewFake(t0)
	s := &blockingSender{release: make(chan error, 10), sent: make(chan struct{}, 10)}
	gaveUp := make(chan error, 1)
	var failures int
	d := NewDispatcher(Settings{
		Sender: s, Clock: fc, MinLevel: 1,
		Backoff: Backoff{Enabled: true, InitialInterval: time.Second, MaxInterval: 4 * time.Second, Multiplier: 2, MaxElapsedTime: 5 * time.Second},
		Hooks: Hooks{
			Failed:  func(_, _ string, _ []Alert, _ error, _ bool) { failures++ },
			Dropped: func(_, _ string, _ []Alert, reason error) { gaveUp <- reason },
		},
	})
	d.Start()
	defer d.Stop()
	for i := 0; i < 4; i++ {
		s.release <- errors.New("503")
	}
	d.Notify([]state.AlertChange{change("x", "INFO", false)})
	// Waits of 1 s and 2 s fit into 5 s; the third (4 s) would not.
	for _, wait := range []time.Duration{time.Second, 2 * time.Second} {
		<-s.sent
		require.True(t, fc.BlockUntil(1))
		fc.Advance(wait)
	}
	<-s.sent
	select {
	case err := <-gaveUp:
		assert.EqualError(t, err, "503")
	case <-time.After(10 * time.Second):
		t.Fatal("never gave up")
	}
	assert.Equal(t, 3, failures)
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{InitialInterval: time.Second, MaxInterval: 5 * time.Second, Multiplier: 2}
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second},
		[]time.Duration{b.delay(1), b.delay(2), b.delay(3), b.delay(4), b.delay(5)})
	b.RandomizationFactor = 0.5
	for i := 0; i < 100; i++ {
		d := b.delay(1)
		assert.True(t, d >= 500*time.Millisecond && d <= 1500*time.Millisecond, d)
	}
}

func TestSendersClassifyAnswers(t *testing.T) {
	codes := make(chan int, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(<-codes)
	}))
	defer srv.Close()
	alerts := []Alert{FromChange(change("x", "ERROR", false))}
	for _, s := range []Sender{&AlertmanagerSender{Client: srv.Client(), BaseURL: srv.URL + "/"}, &WebhookSender{Client: srv.Client(), URL: srv.URL}} {
		for code, want := range map[int]string{200: "ok", 202: "ok", 400: "permanent", 404: "permanent", 429: "retry", 500: "retry", 503: "retry"} {
			codes <- code
			err := s.Send(context.Background(), alerts)
			var perm *PermanentError
			got := "ok"
			switch {
			case errors.As(err, &perm):
				got = "permanent"
			case err != nil:
				got = "retry"
			}
			assert.Equal(t, want, got, "%s %d: %v", s.Target(), code, err)
		}
	}
	assert.Equal(t, srv.URL+"/api/v2/alerts", (&AlertmanagerSender{BaseURL: srv.URL + "/"}).Endpoint())
}
