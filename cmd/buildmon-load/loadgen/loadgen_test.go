package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckTarget(t *testing.T) {
	for _, tc := range []struct {
		target string
		ok     bool
	}{
		{"http://127.0.0.1:4320", true},
		{"http://127.0.0.1:4320/", true},
		{"http://127.9.8.7:80", true},
		{"http://[::1]:4320", true},
		{"http://localhost:4320", false},
		{"http://10.0.0.1:4320", false},
		{"http://192.168.1.5:4320", false},
		{"http://0.0.0.0:4320", false},
		{"http://[::]:4320", false},
		{"http://example.com:4320", false},
		{"https://127.0.0.1:4320", false},
		{"http://127.0.0.1", false},
		{"http://127.0.0.1:4320/v1/events", false},
		{"http://user:pw@127.0.0.1:4320", false},
		{"127.0.0.1:4320", false},
		{"http://127.0.0.1.example.com:4320", false},
	} {
		t.Run(tc.target, func(t *testing.T) {
			u, err := CheckTarget(tc.target)
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Empty(t, u.Path)
		})
	}
}

func TestNewClientRefusesRemoteTargets(t *testing.T) {
	_, err := NewClient("http://8.8.8.8:4320", ClientOptions{})
	require.ErrorContains(t, err, "not a loopback address")
	_, err = NewClient("http://localhost:4320", ClientOptions{})
	require.ErrorContains(t, err, "loopback IP address")
}

// eventsServer is a fake events API that counts what it receives, per content type and build.
type eventsServer struct {
	mu       sync.Mutex
	requests int
	events   []map[string]any
	perBuild map[string]int
	types    map[string]int
	// answer decides the status of request number n (1-based); nil answers 202.
	answer func(n int) int
}

func newEventsServer(t *testing.T, answer func(n int) int) (*eventsServer, *httptest.Server) {
	s := &eventsServer{perBuild: map[string]int{}, types: map[string]int{}, answer: answer}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *eventsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/events" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	var lines []map[string]any
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		lines = append(lines, ev)
	}
	ct := r.Header.Get("Content-Type")
	if ct == contentJSON && len(lines) != 1 {
		http.Error(w, "one event per JSON request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.requests++
	status := http.StatusAccepted
	if s.answer != nil {
		status = s.answer(s.requests)
	}
	if status == http.StatusAccepted {
		for _, ev := range lines {
			s.events = append(s.events, ev)
			s.perBuild[ev["build_id"].(string)]++
			s.types[ev["type"].(string)]++
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status == http.StatusAccepted {
		fmt.Fprintf(w, `{"accepted": %d, "duplicates": 0}`, len(lines))
		return
	}
	fmt.Fprint(w, `{"error": "refused"}`)
}

func (s *eventsServer) counts() (requests, events int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, len(s.events)
}

func TestStartBuilds(t *testing.T) {
	s, srv := newEventsServer(t, nil)
	c, err := NewClient(srv.URL, ClientOptions{Conns: 2})
	require.NoError(t, err)
	defer c.Close()
	ids := BuildIDs("b", 7)
	require.NoError(t, c.StartBuilds(context.Background(), ids, BuildPlan{Pipeline: "p", Steps: 42}, 3))

	reqs, events := s.counts()
	assert.Equal(t, 6, reqs, "7 builds in batches of 3, twice")
	require.Equal(t, 14, events)
	for i, ev := range s.events[:7] {
		assert.Equal(t, "build_started", ev["type"])
		assert.Equal(t, ids[i], ev["build_id"])
		assert.Equal(t, "p", ev["pipeline"])
		assert.Equal(t, []any{map[string]any{"name": "BUILD", "steps": float64(42)}}, ev["phases"])
	}
	for i, ev := range s.events[7:] {
		assert.Equal(t, "phase_started", ev["type"])
		assert.Equal(t, ids[i], ev["build_id"])
		assert.Equal(t, "BUILD", ev["phase"])
	}
}

func TestStartBuildsReportsRefusal(t *testing.T) {
	_, srv := newEventsServer(t, func(int) int { return http.StatusConflict })
	c, err := NewClient(srv.URL, ClientOptions{})
	require.NoError(t, err)
	defer c.Close()
	err = c.StartBuilds(context.Background(), BuildIDs("b", 2), BuildPlan{}, 0)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusConflict, se.Status)
	assert.Contains(t, se.Body, "refused")
}

func TestStartBuildsRejectsInvalidIDs(t *testing.T) {
	_, srv := newEventsServer(t, nil)
	c, err := NewClient(srv.URL, ClientOptions{})
	require.NoError(t, err)
	defer c.Close()
	require.ErrorContains(t, c.StartBuilds(context.Background(), []string{`bad"id`}, BuildPlan{}, 0), "must match")
	require.ErrorContains(t, c.StartBuilds(context.Background(), nil, BuildPlan{}, 0), "no builds")
}

func TestRunSingleStopsAtMaxRequests(t *testing.T) {
	s, srv := newEventsServer(t, nil)
	c, err := NewClient(srv.URL, ClientOptions{Conns: 4})
	require.NoError(t, err)
	defer c.Close()
	ids := BuildIDs("b", 3)
	res, err := c.Run(context.Background(), RunOptions{
		Builds: ids, BatchSize: 1, Workers: 4, Duration: time.Minute, MaxRequests: 101,
	})
	require.NoError(t, err)

	reqs, events := s.counts()
	assert.Equal(t, 101, reqs)
	assert.Equal(t, 101, events)
	assert.Equal(t, int64(101), res.Requests)
	assert.Equal(t, int64(101), res.OK)
	assert.Equal(t, int64(101), res.Events)
	assert.Equal(t, int64(101), res.Accepted)
	assert.Equal(t, uint64(101), res.Latency.Count())
	assert.Zero(t, res.TooMany+res.Other+res.Errors)
	var windowed int64
	for _, n := range res.Windows {
		windowed += n
	}
	assert.Equal(t, int64(101), windowed)
	// Round robin over the builds: 34, 34, 33 in some order.
	total := 0
	for _, id := range ids {
		n := s.perBuild[id]
		assert.InDelta(t, 101.0/3, n, 1, id)
		total += n
	}
	assert.Equal(t, 101, total)
	assert.Equal(t, 101, s.types["step_completed"])
}

func TestRunBatchCountsEventsExactly(t *testing.T) {
	s, srv := newEventsServer(t, nil)
	c, err := NewClient(srv.URL, ClientOptions{Conns: 3})
	require.NoError(t, err)
	defer c.Close()
	ids := BuildIDs("b", 5)
	res, err := c.Run(context.Background(), RunOptions{
		Builds: ids, BatchSize: 7, Workers: 3, Duration: time.Minute, MaxRequests: 10,
	})
	require.NoError(t, err)
	reqs, events := s.counts()
	assert.Equal(t, 10, reqs)
	assert.Equal(t, 70, events)
	assert.Equal(t, int64(70), res.Events)
	assert.Equal(t, int64(70), res.Accepted)
	// Two full cycles of the five distinct bodies: every build got the same share.
	for _, id := range ids {
		assert.Equal(t, 14, s.perBuild[id], id)
	}
}

func TestRunStopsAtDuration(t *testing.T) {
	s, srv := newEventsServer(t, nil)
	c, err := NewClient(srv.URL, ClientOptions{Conns: 2})
	require.NoError(t, err)
	defer c.Close()
	res, err := c.Run(context.Background(), RunOptions{
		Builds: BuildIDs("b", 2), BatchSize: 1, Workers: 2, Duration: 50 * time.Millisecond, MaxRequests: MaxRequests,
	})
	require.NoError(t, err)
	reqs, events := s.counts()
	// The run ended on its time bound, and every request it made is accounted for.
	assert.Less(t, res.Requests, int64(MaxRequests))
	assert.Equal(t, int64(reqs), res.Requests)
	assert.Equal(t, int64(events), res.Events)
}

func TestRunClassifiesAnswers(t *testing.T) {
	answer := func(n int) int {
		switch n % 4 {
		case 1:
			return http.StatusTooManyRequests
		case 2:
			return http.StatusBadRequest
		default:
			return http.StatusAccepted
		}
	}
	s, srv := newEventsServer(t, answer)
	c, err := NewClient(srv.URL, ClientOptions{Conns: 1})
	require.NoError(t, err)
	defer c.Close()
	res, err := c.Run(context.Background(), RunOptions{
		Builds: BuildIDs("b", 1), BatchSize: 2, Workers: 1, Duration: time.Minute, MaxRequests: 8,
	})
	require.NoError(t, err)
	_, events := s.counts()
	assert.Equal(t, int64(8), res.Requests)
	assert.Equal(t, int64(4), res.OK)
	assert.Equal(t, int64(2), res.TooMany)
	assert.Equal(t, int64(2), res.Other)
	assert.Equal(t, int64(8), res.Events)
	assert.Equal(t, 8, events)
	assert.Contains(t, res.FirstError, "400")
}

func TestRunCountsTransportErrors(t *testing.T) {
	_, srv := newEventsServer(t, nil)
	c, err := NewClient(srv.URL, ClientOptions{Conns: 1, Timeout: time.Second})
	require.NoError(t, err)
	defer c.Close()
	srv.Close()
	res, err := c.Run(context.Background(), RunOptions{
		Builds: BuildIDs("b", 1), BatchSize: 1, Workers: 1, Duration: time.Minute, MaxRequests: 3,
	})
	require.NoError(t, err)
	assert.Equal(t, int64(3), res.Errors)
	assert.Zero(t, res.OK)
	assert.NotEmpty(t, res.FirstError)
}

func TestRunHonoursCancellation(t *testing.T) {
	_, srv := newEventsServer(t, nil)
	c, err := NewClient(srv.URL, ClientOptions{})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := c.Run(ctx, RunOptions{Builds: BuildIDs("b", 1), BatchSize: 1, Workers: 2, Duration: time.Minute, MaxRequests: 10})
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, res.Requests)
}

func TestRunOptionsAreBounded(t *testing.T) {
	_, srv := newEventsServer(t, nil)
	c, err := NewClient(srv.URL, ClientOptions{})
	require.NoError(t, err)
	defer c.Close()
	ok := RunOptions{Builds: BuildIDs("b", 1), BatchSize: 1, Workers: 1, Duration: time.Second, MaxRequests: 1}
	for name, mutate := range map[string]func(o *RunOptions){
		"duration":     func(o *RunOptions) { o.Duration = 0 },
		"long":         func(o *RunOptions) { o.Duration = 2 * MaxDuration },
		"max requests": func(o *RunOptions) { o.MaxRequests = 0 },
		"too many":     func(o *RunOptions) { o.MaxRequests = MaxRequests + 1 },
		"workers":      func(o *RunOptions) { o.Workers = 0 },
		"batch":        func(o *RunOptions) { o.BatchSize = 0 },
		"builds":       func(o *RunOptions) { o.Builds = nil },
		"phase":        func(o *RunOptions) { o.Phase = "no spaces" },
	} {
		t.Run(name, func(t *testing.T) {
			o := ok
			mutate(&o)
			_, err := c.Run(context.Background(), o)
			require.Error(t, err)
		})
	}
}

func TestPace(t *testing.T) {
	s, srv := newEventsServer(t, nil)
	c, err := NewClient(srv.URL, ClientOptions{Conns: 2})
	require.NoError(t, err)
	defer c.Close()
	ids := BuildIDs("b", 5)
	res, err := c.Pace(context.Background(), PaceOptions{Builds: ids, Hz: 1000, Duration: time.Minute, MaxTicks: 4, Chunk: 2})
	require.NoError(t, err)
	require.Len(t, res.Ticks, 4)
	reqs, events := s.counts()
	assert.Equal(t, 12, reqs, "3 chunks per tick")
	assert.Equal(t, 20, events)
	for i, tk := range res.Ticks {
		assert.Equal(t, i, tk.Seq)
		assert.Equal(t, int64(5), tk.Events)
		assert.Zero(t, tk.Failed)
	}
	for _, id := range ids {
		assert.Equal(t, 4, s.perBuild[id])
	}
	// Every event carries its tick's time.
	sent := map[string]bool{}
	for _, tk := range res.Ticks {
		sent[tk.Sent.UTC().Format(time.RFC3339Nano)] = true
	}
	for _, ev := range s.events {
		assert.True(t, sent[ev["time"].(string)], ev["time"])
	}
}

func TestPaceCountsFailures(t *testing.T) {
	_, srv := newEventsServer(t, func(n int) int {
		if n == 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusAccepted
	})
	c, err := NewClient(srv.URL, ClientOptions{Conns: 1})
	require.NoError(t, err)
	defer c.Close()
	res, err := c.Pace(context.Background(), PaceOptions{Builds: BuildIDs("b", 3), Hz: 1000, Duration: time.Minute, MaxTicks: 3})
	require.NoError(t, err)
	var ok, failed int64
	for _, tk := range res.Ticks {
		ok += tk.Events
		failed += tk.Failed
	}
	assert.Equal(t, int64(6), ok)
	assert.Equal(t, int64(3), failed)
	assert.Contains(t, res.FirstError, "503")
}

func TestPaceRejectsUnboundedOptions(t *testing.T) {
	_, srv := newEventsServer(t, nil)
	c, err := NewClient(srv.URL, ClientOptions{})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Pace(context.Background(), PaceOptions{Builds: BuildIDs("b", 1), Hz: 10, MaxTicks: 1})
	require.ErrorContains(t, err, "duration")
	_, err = c.Pace(context.Background(), PaceOptions{Builds: BuildIDs("b", 1), Hz: 10, Duration: time.Second})
	require.ErrorContains(t, err, "max ticks")
	_, err = c.Pace(context.Background(), PaceOptions{Builds: BuildIDs("b", 1), Duration: time.Second, MaxTicks: 1})
	require.ErrorContains(t, err, "hz")
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	assert.Zero(t, h.Quantile(0.5))
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	assert.Equal(t, uint64(1000), h.Count())
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}, {0, time.Millisecond}} {
		got := h.Quantile(tc.q)
		assert.GreaterOrEqual(t, got, tc.want, "q=%v", tc.q)
		assert.LessOrEqual(t, float64(got), float64(tc.want)*1.0101, "q=%v", tc.q)
	}
	assert.Equal(t, time.Second, h.Max())
	assert.Equal(t, 500500*time.Microsecond, h.Mean())
}

func TestHistogramMerge(t *testing.T) {
	var a, b Histogram
	a.Record(time.Millisecond)
	b.Record(3 * time.Millisecond)
	b.Record(2 * time.Millisecond)
	a.Merge(&b)
	a.Merge(&Histogram{})
	assert.Equal(t, uint64(3), a.Count())
	assert.Equal(t, 3*time.Millisecond, a.Max())
	assert.InDelta(t, float64(time.Millisecond), float64(a.Quantile(0)), float64(time.Millisecond)*0.011)
	got := a.Quantile(0.5)
	assert.InDelta(t, float64(2*time.Millisecond), float64(got), float64(2*time.Millisecond)*0.011)
}

func TestHistogramExtremes(t *testing.T) {
	var h Histogram
	h.Record(-time.Second)
	h.Record(0)
	h.Record(time.Hour)
	assert.LessOrEqual(t, h.Quantile(0.5), histFloor, "below the first bucket")
	assert.Equal(t, time.Hour, h.Quantile(1), "the overflow bucket reports the maximum")
}

func TestJSONInt(t *testing.T) {
	n, ok := jsonInt([]byte(`{"accepted": 12, "duplicates":3}`), `"accepted"`)
	assert.True(t, ok)
	assert.Equal(t, int64(12), n)
	n, ok = jsonInt([]byte(`{"accepted": 12, "duplicates":3}`), `"duplicates"`)
	assert.True(t, ok)
	assert.Equal(t, int64(3), n)
	_, ok = jsonInt([]byte(`{"error":"x"}`), `"accepted"`)
	assert.False(t, ok)
	_, ok = jsonInt([]byte(`{"accepted": "x"}`), `"accepted"`)
	assert.False(t, ok)
}

func TestEventsAreValidJSON(t *testing.T) {
	for _, b := range [][]byte{
		appendBuildStarted(nil, "b-1", BuildPlan{}.withDefaults()),
		appendPhaseStarted(nil, "b-1", "BUILD"),
		appendStepCompleted(nil, "b-1", "BUILD", time.Time{}),
		appendStepCompleted(nil, "b-1", "BUILD", time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)),
	} {
		var v map[string]any
		require.NoError(t, json.Unmarshal(b, &v), string(b))
		assert.Equal(t, "b-1", v["build_id"])
	}
	assert.Equal(t, []string{"x-00000", "x-00001"}, BuildIDs("x", 2))
}
