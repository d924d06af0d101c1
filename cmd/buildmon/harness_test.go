package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/internal/testproc"
	"github.com/buildmon/buildmon/internal/wire"
)

// fakeCollector mimics the events API (POST /v1/events) and the status API
// (GET /v1/builds/{id}) on one loopback server, and records what it is sent.
type fakeCollector struct {
	*httptest.Server
	mu         sync.Mutex
	events     []wire.Event          // accepted events, in order
	raw        []map[string]any      // the same, as JSON objects
	reject     map[string]response   // answer for an event type instead of 202
	once       map[string][]response // answers for an event type, each used once, before reject
	status     map[string]string     // status API body per build id; missing is 404
	statusHits int
	postCount  int
	sent       [][]byte // every request body of the events API, accepted or not
}

type response struct {
	code       int
	body       string
	retryAfter string // Retry-After header, if not empty
}

func newFakeCollector(t *testing.T) *fakeCollector {
	t.Helper()
	f := &fakeCollector{reject: map[string]response{}, once: map[string][]response{}, status: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events", f.postEvents)
	mux.HandleFunc("GET /v1/builds/{id}", f.getBuild)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeCollector) postEvents(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var ev wire.Event
	var raw map[string]any
	if r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &ev) != nil || json.Unmarshal(body, &raw) != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"malformed event"}`)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.postCount++
	f.sent = append(f.sent, body)
	rej, ok := f.reject[ev.Type]
	if queued := f.once[ev.Type]; len(queued) > 0 {
		rej, ok = queued[0], true
		f.once[ev.Type] = queued[1:]
	}
	if ok {
		w.Header().Set("Content-Type", "application/json")
		if rej.retryAfter != "" {
			w.Header().Set("Retry-After", rej.retryAfter)
		}
		w.WriteHeader(rej.code)
		_, _ = io.WriteString(w, rej.body)
		return
	}
	f.events = append(f.events, ev)
	f.raw = append(f.raw, raw)
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"accepted":1,"duplicates":0}`)
}

func (f *fakeCollector) getBuild(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statusHits++
	body, ok := f.status[r.PathValue("id")]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":"unknown build"}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, body)
}

func (f *fakeCollector) setStatus(id, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status[id] = body
}

func (f *fakeCollector) setReject(eventType string, code int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reject[eventType] = response{code: code, body: body}
}

// answerOnce queues answers for the next events of eventType, before any setReject answer.
func (f *fakeCollector) answerOnce(eventType string, answers ...response) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.once[eventType] = append(f.once[eventType], answers...)
}

// posts counts the requests to the events API, accepted or not.
func (f *fakeCollector) posts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.postCount
}

// sentBodies are the bodies of every request to the events API, accepted or not.
func (f *fakeCollector) sentBodies() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.sent...)
}

func (f *fakeCollector) received() []wire.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wire.Event(nil), f.events...)
}

func (f *fakeCollector) types() []string {
	var types []string
	for _, ev := range f.received() {
		types = append(types, ev.Type)
	}
	return types
}

// closedURL is a loopback URL where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

// syncBuffer is safe for the command's output copier and the test.
type syncBuffer = testproc.Buffer

// cliRun is one in-process run of buildmon.
type cliRun struct {
	app    *app
	stdout *syncBuffer
	stderr *syncBuffer
	sigs   chan chan<- os.Signal // the channel phase subscribes for signals
}

var testNow = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)

// baseEnv is an environment without CI variables, pointing at f (or nowhere).
func baseEnv(eventsURL, statusURL string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"BUILDMON_EVENTS_URL=" + eventsURL,
		"BUILDMON_STATUS_URL=" + statusURL,
		"BUILDMON_POLL_INTERVAL=20ms",
	}
	return append(env, extra...)
}

func newCLI(env []string) *cliRun {
	c := &cliRun{stdout: &syncBuffer{}, stderr: &syncBuffer{}, sigs: make(chan chan<- os.Signal, 1)}
	c.app = newApp(env, nil, c.stdout, c.stderr)
	c.app.now = func() time.Time { return testNow }
	c.app.hostname = func() (string, error) { return "build-host-1", nil }
	c.app.getwd = func() (string, error) { return "/src/my-project", nil }
	c.app.notify = func(ch chan<- os.Signal, _ ...os.Signal) func() {
		c.sigs <- ch
		return func() {}
	}
	return c
}

func (c *cliRun) run(args ...string) int { return c.app.run(args) }

// runCLI runs buildmon once in-process.
func runCLI(env []string, args ...string) (code int, stdout, stderr string) {
	c := newCLI(env)
	code = c.run(args...)
	return code, c.stdout.String(), c.stderr.String()
}

// selfCLI is the test binary acting as buildmon, and the env that makes it do so.
func selfCLI(t *testing.T) (string, string) {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	return self, testModeEnv + "=cli"
}

func statusJSON(id string, paused bool, alerts string) string {
	return fmt.Sprintf(`{"id":%q,"pipeline":"p","host":"build-host-1","state":"running","phase":"BUILD","progress":0.4,"eta_seconds":30,"paused":%t,"alerts":[%s],"phases":[],"updated_at":"2025-06-01T10:00:00Z"}`, id, paused, alerts)
}
