package collector

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/internal/wire"
)

// answer is one scripted reply of the fake events API.
type answer struct {
	status     int
	retryAfter string
	body       string
}

type fakeAPI struct {
	mu       sync.Mutex
	answers  []answer // consumed in order; the last one repeats
	requests []*http.Request
	bodies   [][]byte
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, r)
	f.bodies = append(f.bodies, b)
	a := f.answers[0]
	if len(f.answers) > 1 {
		f.answers = f.answers[1:]
	}
	f.mu.Unlock()
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (f *fakeAPI) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func newTestClient(t *testing.T, api *fakeAPI, timeout time.Duration) (*Client, *[]time.Duration) {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	c := NewClient(Config{EventsURL: srv.URL + "/", StatusURL: srv.URL, Token: "s3cret", Timeout: timeout, UserAgent: "buildmon-test"})
	var waits []time.Duration
	c.sleep = func(_ context.Context, d time.Duration) error {
		waits = append(waits, d)
		return nil
	}
	return c, &waits
}

func TestPostSendsEventWithHeaders(t *testing.T) {
	api := &fakeAPI{answers: []answer{{status: http.StatusAccepted, body: `{"accepted":1,"duplicates":0}`}}}
	c, _ := newTestClient(t, api, 2*time.Second)
	acc, err := c.Post(context.Background(), wire.Event{Type: wire.EventPhaseStarted, BuildID: "b-1", Phase: "BUILD"})
	require.NoError(t, err)
	assert.Equal(t, wire.Accepted{Accepted: 1}, acc)
	require.Equal(t, 1, api.count())
	r := api.requests[0]
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/v1/events", r.URL.Path)
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.Equal(t, "Bearer s3cret", r.Header.Get("Authorization"))
	assert.Equal(t, "buildmon-test", r.Header.Get("User-Agent"))
	var got map[string]any
	require.NoError(t, json.Unmarshal(api.bodies[0], &got))
	assert.Len(t, got["id"], 32)
	assert.Equal(t, "phase_started", got["type"])
	assert.Equal(t, "b-1", got["build_id"])
	assert.Equal(t, "BUILD", got["phase"])
	assert.NotContains(t, got, "attributes", "empty fields are left out")
	assert.NotContains(t, got, "count")
}

func TestPostRetriesServerErrorsWithTheSameID(t *testing.T) {
	api := &fakeAPI{answers: []answer{
		{status: http.StatusInternalServerError, body: `{"error":"boom"}`},
		{status: http.StatusBadGateway},
		{status: http.StatusAccepted, body: `{"accepted":0,"duplicates":1}`},
	}}
	c, waits := newTestClient(t, api, 2*time.Second)
	acc, err := c.Post(context.Background(), wire.Event{Type: wire.EventStepCompleted, BuildID: "b-1", Phase: "BUILD"})
	require.NoError(t, err)
	assert.Equal(t, 1, acc.Duplicates)
	require.Equal(t, 3, api.count())
	ids := map[string]bool{}
	for _, b := range api.bodies {
		var ev wire.Event
		require.NoError(t, json.Unmarshal(b, &ev))
		ids[ev.ID] = true
	}
	assert.Len(t, ids, 1, "every retry carries the same event id")
	assert.Equal(t, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, *waits)
}

func TestPostGivesUpAfterThreeAttempts(t *testing.T) {
	api := &fakeAPI{answers: []answer{{status: http.StatusInternalServerError, body: `{"error":"still broken"}`}}}
	c, _ := newTestClient(t, api, 2*time.Second)
	_, err := c.Post(context.Background(), wire.Event{Type: wire.EventStepCompleted, BuildID: "b-1", Phase: "BUILD"})
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusInternalServerError, he.StatusCode)
	assert.Equal(t, "500 still broken", he.Error())
	assert.Equal(t, 3, api.count())
}

func TestPostDoesNotRetryValidationErrors(t *testing.T) {
	api := &fakeAPI{answers: []answer{{status: http.StatusBadRequest, body: `{"error":"steps must not be negative","field":"phases[1].steps"}`}}}
	c, waits := newTestClient(t, api, 2*time.Second)
	_, err := c.Post(context.Background(), wire.Event{Type: wire.EventBuildStarted, BuildID: "b-1", Pipeline: "p"})
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 1, api.count())
	assert.Empty(t, *waits)
	assert.Equal(t, wire.Error{Error: "steps must not be negative", Field: "phases[1].steps"}, he.Body)
	assert.Equal(t, "400 steps must not be negative (field phases[1].steps)", he.Error())
}

func TestPostHonoursRetryAfterWithinBudget(t *testing.T) {
	api := &fakeAPI{answers: []answer{
		{status: http.StatusTooManyRequests, retryAfter: "1", body: `{"error":"rate limited"}`},
		{status: http.StatusAccepted, body: `{"accepted":1}`},
	}}
	c, waits := newTestClient(t, api, 3*time.Second)
	_, err := c.Post(context.Background(), wire.Event{Type: wire.EventStepCompleted, BuildID: "b-1", Phase: "BUILD"})
	require.NoError(t, err)
	assert.Equal(t, []time.Duration{time.Second}, *waits)
}

func TestPostGivesUpWhenRetryAfterExceedsBudget(t *testing.T) {
	api := &fakeAPI{answers: []answer{{status: http.StatusTooManyRequests, retryAfter: "30", body: `{"error":"rate limited"}`}}}
	c, waits := newTestClient(t, api, 500*time.Millisecond)
	_, err := c.Post(context.Background(), wire.Event{Type: wire.EventStepCompleted, BuildID: "b-1", Phase: "BUILD"})
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusTooManyRequests, he.StatusCode)
	assert.Equal(t, 1, api.count())
	assert.Empty(t, *waits, "no point waiting past the budget")
}

func TestPostUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	c := NewClient(Config{EventsURL: "http://" + addr, Timeout: time.Second})
	_, err = c.Post(context.Background(), wire.Event{Type: wire.EventStepCompleted, BuildID: "b-1", Phase: "BUILD"})
	var ue *UnreachableError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, "http://"+addr, ue.URL)
}

func TestPostTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := NewClient(Config{EventsURL: srv.URL, Timeout: 200 * time.Millisecond})
	_, err := c.Post(context.Background(), wire.Event{Type: wire.EventStepCompleted, BuildID: "b-1", Phase: "BUILD"})
	var ue *UnreachableError
	require.ErrorAs(t, err, &ue)
	assert.Contains(t, ue.Error(), "timed out")
}

func TestGetStatus(t *testing.T) {
	api := &fakeAPI{answers: []answer{{status: http.StatusOK, body: `{
		"id":"b-1","pipeline":"p","host":"h","state":"running","phase":"BUILD","progress":0.5,
		"eta_seconds":12.5,"paused":true,
		"alerts":[{"rule":"cpu","level":"CRITICAL","state":"firing","value":97.25},{"rule":"x","level":"INFO","state":"pending","value":"n/a"},{"rule":"y","level":"INFO","state":"pending","value":null}],
		"phases":[{"name":"BUILD","state":"running","steps_total":4,"steps_completed":2,"progress":0.5,"duration_seconds":3}],
		"updated_at":"2025-06-01T10:00:00Z","future_field":{"x":1}}`}}}
	c, _ := newTestClient(t, api, time.Second)
	st, err := c.GetStatus(context.Background(), "b-1")
	require.NoError(t, err)
	assert.Equal(t, "/v1/builds/b-1", api.requests[0].URL.Path)
	assert.Equal(t, "Bearer s3cret", api.requests[0].Header.Get("Authorization"))
	assert.True(t, st.Paused)
	require.NotNil(t, st.ETASeconds)
	assert.InDelta(t, 12.5, *st.ETASeconds, 1e-9)
	require.Len(t, st.Alerts, 3)
	assert.Equal(t, "97.25", FormatValue(st.Alerts[0].Value))
	// A value of another type than the contract's number is left at 0, and the rest of the
	// status is read: a change on the server side degrades the display, not the client.
	assert.Equal(t, wire.AlertStatus{Rule: "x", Level: "INFO", State: "pending"}, st.Alerts[1])
	assert.Equal(t, wire.AlertStatus{Rule: "y", Level: "INFO", State: "pending"}, st.Alerts[2])
	assert.Equal(t, []wire.PhaseStatus{{Name: "BUILD", State: "running", StepsTotal: 4, StepsCompleted: 2, Progress: 0.5, DurationSeconds: 3}}, st.Phases)
}

func TestGetStatusNotFound(t *testing.T) {
	api := &fakeAPI{answers: []answer{{status: http.StatusNotFound, body: `{"error":"unknown build"}`}}}
	c, _ := newTestClient(t, api, time.Second)
	_, err := c.GetStatus(context.Background(), "nope")
	assert.True(t, errors.Is(err, ErrNotFound), "got %v", err)
	assert.Equal(t, 1, api.count())
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{97.5, "97.5"}, {3, "3"}, {1.0 / 3, "0.33"}, {2e8, "200000000"}, {0, "0"},
		{0.004, "0"}, {0.005, "0.01"}, {-1.25, "-1.25"}, {99.999, "100"},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, FormatValue(tc.v), "%v", tc.v)
	}
}

func TestDecodeStatus(t *testing.T) {
	tests := []struct {
		name, body string
		want       wire.BuildStatus
		err        bool
	}{
		{"empty object", `{}`, wire.BuildStatus{}, false},
		{"known members", `{"id":"b","progress":0.5,"paused":true}`, wire.BuildStatus{ID: "b", Progress: 0.5, Paused: true}, false},
		{"a string where a number is", `{"id":"b","progress":"half","state":"running"}`, wire.BuildStatus{ID: "b", State: "running"}, false},
		{"an object where a string is", `{"id":{"x":1},"state":"running"}`, wire.BuildStatus{State: "running"}, false},
		{"unknown members", `{"id":"b","next_version":[1,2]}`, wire.BuildStatus{ID: "b"}, false},
		{"not an object", `["b"]`, wire.BuildStatus{}, true},
		{"a string", `"b"`, wire.BuildStatus{}, true},
		{"malformed", `{"id":`, wire.BuildStatus{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := DecodeStatus([]byte(tc.body))
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, st)
		})
	}
}

func TestPauseReason(t *testing.T) {
	st := wire.BuildStatus{Alerts: []wire.AlertStatus{
		{Rule: "mem", Level: "WARNING", State: "firing", Value: 90},
		{Rule: "disk", Level: "CRITICAL", State: "pending", Value: 97},
		{Rule: "cpu", Level: "critical", State: "firing", Value: 99.5},
	}}
	assert.Equal(t, "CRITICAL alert cpu (99.5)", PauseReason(st))
	st.Alerts = st.Alerts[:2]
	assert.Equal(t, "CRITICAL alert disk (97)", PauseReason(st))
	st.Alerts = []wire.AlertStatus{{Rule: "x", Level: "CRITICAL", State: "firing"}}
	assert.Equal(t, "CRITICAL alert x (0)", PauseReason(st), "the status API always sends a value")
	st.Alerts = nil
	assert.Equal(t, "", PauseReason(st))
}

func TestHTTPErrorDetailForbidden(t *testing.T) {
	i := 2
	for _, tc := range []struct {
		body wire.Error
		want string
	}{
		{wire.Error{Error: "x", Permission: "events:write", Subject: "cn:a", Pipeline: "p", Host: "h", Index: &i}, "403 subject cn:a lacks permission events:write on pipeline p (host h) (event 2)"},
		{wire.Error{Error: "x", Permission: "status:read", Subject: "alice", Host: "h"}, "403 subject alice lacks permission status:read on host h"},
		{wire.Error{Error: "x", Permission: "reports:read", Pipeline: "p"}, "403 subject anonymous lacks permission reports:read on pipeline p"},
		{wire.Error{Error: "forbidden"}, "403 forbidden"},
	} {
		e := &HTTPError{StatusCode: 403, Body: tc.body}
		if got := e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
