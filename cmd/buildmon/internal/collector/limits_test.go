package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/printable"
	"github.com/buildmon/buildmon/internal/wire"
)

// countingTransport counts the response body bytes the client reads.
type countingTransport struct {
	rt   http.RoundTripper
	read atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if resp != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &t.read}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// endless answers status with a chunked body that never ends, until the client hangs up.
func endless(status int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		chunk := []byte(`{"id":"b-1","pipeline":"` + strings.Repeat("x", 32<<10))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			chunk = []byte(strings.Repeat("x", 32<<10))
		}
	})
}

// countingClient is a client of srv whose reads are counted, with a budget that only a broken
// client could use up.
func countingClient(t *testing.T, srv *httptest.Server) (*Client, *countingTransport, *[]time.Duration) {
	t.Helper()
	c := NewClient(Config{EventsURL: srv.URL, StatusURL: srv.URL, Timeout: 2 * time.Minute})
	ct := &countingTransport{rt: c.http.Transport}
	c.http.Transport = ct
	var waits []time.Duration
	c.sleep = func(_ context.Context, d time.Duration) error {
		waits = append(waits, d)
		return nil
	}
	return c, ct, &waits
}

func TestStatusReplyIsBounded(t *testing.T) {
	srv := httptest.NewServer(endless(http.StatusOK))
	t.Cleanup(srv.Close)
	c, ct, waits := countingClient(t, srv)
	_, err := c.GetStatus(context.Background(), "b-1")
	var tooLarge *ReplyTooLargeError
	require.ErrorAs(t, err, &tooLarge)
	assert.Equal(t, int64(MaxStatusReply), tooLarge.Limit)
	assert.Equal(t, fmt.Sprintf("%s: reply larger than 67108864 bytes (64 MiB), the most the client reads", srv.URL), err.Error())
	assert.LessOrEqual(t, ct.read.Load(), int64(MaxStatusReply+1), "read no more than the limit")
	assert.Empty(t, *waits, "not retried")

	_, err = c.GetStatusRaw(context.Background(), "b-1")
	require.ErrorAs(t, err, &tooLarge)
}

func TestStatusReplyOfExactlyTheLimitIsRead(t *testing.T) {
	const limit = 4 << 10
	body := `{"id":"b-1","pipeline":"` + strings.Repeat("p", limit-len(`{"id":"b-1","pipeline":""}`)) + `"}`
	require.Len(t, body, limit)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, body)
		if r.URL.Query().Has("more") {
			_, _ = io.WriteString(w, " ")
		}
	}))
	t.Cleanup(srv.Close)
	c, _, _ := countingClient(t, srv)
	c.statusReplyLimit = limit
	st, err := c.GetStatus(context.Background(), "b-1")
	require.NoError(t, err)
	assert.Len(t, st.Pipeline, limit-len(`{"id":"b-1","pipeline":""}`))

	// One byte more is too much.
	err = c.do(context.Background(), http.MethodGet, srv.URL+"/?more", nil, limit, func([]byte) error { return nil })
	var tooLarge *ReplyTooLargeError
	require.ErrorAs(t, err, &tooLarge)
	assert.Equal(t, "4096 bytes (4 KiB)", err.Error()[strings.Index(err.Error(), "than ")+5:strings.Index(err.Error(), ", the")])
}

func TestErrorAndAcceptedRepliesAreBounded(t *testing.T) {
	// An endless error body: each of the three attempts reads at most maxErrorBody.
	srv := httptest.NewServer(endless(http.StatusInternalServerError))
	t.Cleanup(srv.Close)
	c, ct, _ := countingClient(t, srv)
	_, err := c.GetStatus(context.Background(), "b-1")
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusInternalServerError, he.StatusCode)
	assert.Len(t, he.Raw, maxErrorBody)
	assert.LessOrEqual(t, ct.read.Load(), int64(maxAttempts*maxErrorBody))

	// An endless 202: the event is accepted, the count is not read.
	srv = httptest.NewServer(endless(http.StatusAccepted))
	t.Cleanup(srv.Close)
	c, ct, waits := countingClient(t, srv)
	acc, err := c.Post(context.Background(), wire.Event{Type: wire.EventStepCompleted, BuildID: "b-1", Phase: "BUILD"})
	require.NoError(t, err)
	assert.Equal(t, wire.Accepted{}, acc)
	assert.LessOrEqual(t, ct.read.Load(), int64(maxAcceptedReply+1))
	assert.Empty(t, *waits, "an accepted event is not sent again")
}

func TestSlowReplyEndsWithTheBudget(t *testing.T) {
	// Headers, a few bytes, then nothing until the client hangs up.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"id":`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	c := NewClient(Config{StatusURL: srv.URL, Timeout: 300 * time.Millisecond})
	_, err := c.GetStatus(context.Background(), "b-1")
	var ue *UnreachableError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, srv.URL+" unreachable: timed out reading the reply", ue.Error())
}

func TestPostHonoursRetryAfterOf503(t *testing.T) {
	api := &fakeAPI{answers: []answer{
		{status: http.StatusServiceUnavailable, retryAfter: "2", body: `{"error":"storage write failed"}`},
		{status: http.StatusAccepted, body: `{"accepted":1}`},
	}}
	c, waits := newTestClient(t, api, 5*time.Second)
	_, err := c.Post(context.Background(), wire.Event{Type: wire.EventStepCompleted, BuildID: "b-1", Phase: "BUILD"})
	require.NoError(t, err)
	assert.Equal(t, []time.Duration{2 * time.Second}, *waits)
	assert.Equal(t, 2, api.count())

	// Past the budget: given up at once, with what the server said.
	api = &fakeAPI{answers: []answer{{status: http.StatusServiceUnavailable, retryAfter: "5", body: `{"error":"storage write failed"}`}}}
	c, waits = newTestClient(t, api, 2*time.Second)
	_, err = c.Post(context.Background(), wire.Event{Type: wire.EventStepCompleted, BuildID: "b-1", Phase: "BUILD"})
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, "503 storage write failed", he.Error())
	assert.Equal(t, 1, api.count())
	assert.Empty(t, *waits)
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":                              0,
		"soon":                          0,
		"0":                             0,
		"-5":                            0,
		"3":                             3 * time.Second,
		"86399":                         86399 * time.Second,
		"18446744074":                   maxRetryAfter, // ×1e9 ns would wrap to 0.29 s
		"99999999999999999999999":       maxRetryAfter,
		"Sun, 01 Jun 2025 10:00:07 GMT": 7 * time.Second,
		"Sun, 01 Jun 2025 09:00:00 GMT": 0,
		"Fri, 01 Jan 9999 00:00:00 GMT": maxRetryAfter,
	} {
		assert.Equal(t, want, retryAfter(h, now), "%q", h)
	}
}

func TestPostGivesUpOnAnAbsurdRetryAfter(t *testing.T) {
	api := &fakeAPI{answers: []answer{{status: http.StatusServiceUnavailable, retryAfter: "18446744074", body: `{"error":"later"}`}}}
	c, waits := newTestClient(t, api, 2*time.Second)
	_, err := c.Post(context.Background(), wire.Event{Type: wire.EventStepCompleted, BuildID: "b-1", Phase: "BUILD"})
	require.Error(t, err)
	assert.Equal(t, 1, api.count())
	assert.Empty(t, *waits)
}

func TestPostDoesNotRetryWhatCanNeverPass(t *testing.T) {
	api := &fakeAPI{answers: []answer{{status: http.StatusRequestEntityTooLarge, body: `{"error":"body larger than events.max_request_body_size (1048576 bytes)"}`}}}
	c, waits := newTestClient(t, api, 2*time.Second)
	_, err := c.Post(context.Background(), wire.Event{Type: wire.EventStepCompleted, BuildID: "b-1", Phase: "BUILD"})
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusRequestEntityTooLarge, he.StatusCode)
	assert.Equal(t, 1, api.count())
	assert.Empty(t, *waits)
}

func TestHTTPErrorDetailNamesTheField(t *testing.T) {
	idx := 2
	for _, tc := range []struct {
		err  HTTPError
		want string
	}{
		{HTTPError{StatusCode: 400, Body: wire.Error{Error: "must not contain control characters", Field: "step"}}, "must not contain control characters (field step)"},
		{HTTPError{StatusCode: 400, Body: wire.Error{Error: "duplicate key", Field: "type", Index: &idx}}, "duplicate key (event 2, field type)"},
		{HTTPError{StatusCode: 502, Raw: "<html>bad gateway</html>"}, "<html>bad gateway</html>"},
		{HTTPError{StatusCode: 503}, "Service Unavailable"},
	} {
		assert.Equal(t, tc.want, tc.err.Detail())
		assert.Equal(t, fmt.Sprintf("%d %s", tc.err.StatusCode, tc.want), tc.err.Error())
	}
}

func TestPostDoesNotSendControlCharacters(t *testing.T) {
	api := &fakeAPI{answers: []answer{{status: http.StatusAccepted}}}
	c, _ := newTestClient(t, api, 2*time.Second)
	_, err := c.Post(context.Background(), wire.Event{Type: wire.EventBuildStarted, BuildID: "b-1", Pipeline: "p",
		Phases: []wire.PhasePlan{{Name: "INIT"}, {Name: "TEST", Milestones: []string{"unit", "e\x1b[2J"}}}})
	var ie *InvalidEventError
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, "phases[1].milestones[1]", ie.Field)
	assert.Equal(t, `phases[1].milestones[1] "e\x1b[2J" contains the control character \x1b`, err.Error())
	var ce *printable.ControlError
	assert.ErrorAs(t, err, &ce)
	assert.Equal(t, 0, api.count(), "nothing sent")
}

// TestEventCheckCoversEveryText puts a control character into each string of an event in turn,
// found by reflection, so that a field added later cannot be forgotten by check.
func TestEventCheckCoversEveryText(t *testing.T) {
	full := wire.Event{Attributes: &wire.Attributes{}, Phases: []wire.PhasePlan{{Milestones: []string{""}}}}
	var paths []string
	var walk func(v reflect.Value, path string, visit func(reflect.Value, string))
	walk = func(v reflect.Value, path string, visit func(reflect.Value, string)) {
		switch v.Kind() {
		case reflect.String:
			visit(v, path)
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem(), path, visit)
			}
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name, visit)
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i), visit)
			}
		}
	}
	walk(reflect.ValueOf(&full).Elem(), "Event", func(_ reflect.Value, p string) { paths = append(paths, p) })
	require.Len(t, paths, 16)
	for _, target := range paths {
		ev := wire.Event{Attributes: &wire.Attributes{}, Phases: []wire.PhasePlan{{Milestones: []string{""}}}}
		walk(reflect.ValueOf(&ev).Elem(), "Event", func(v reflect.Value, p string) {
			if p == target {
				v.SetString("x\x1b")
			}
		})
		var ie *InvalidEventError
		assert.True(t, errors.As(checkEvent(ev), &ie), "%s is not checked", target)
	}
	assert.NoError(t, checkEvent(full))
}
