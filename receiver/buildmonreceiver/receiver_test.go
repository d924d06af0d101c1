package buildmonreceiver

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/metadata"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// hostWithExtensions is a host that offers extensions (the storage extension).
type hostWithExtensions struct {
	component.Host
	ext map[component.ID]component.Component
}

func (h hostWithExtensions) GetExtensions() map[component.ID]component.Component { return h.ext }

type testReceiver struct {
	r      *buildmonReceiver
	clock  *fakeClock
	sink   *consumertest.MetricsSink
	traces *consumertest.TracesSink
	url    string
}

func freeEndpoint(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// startReceiver creates the receiver through its factory for metrics and traces, starts it on
// a free loopback port and shuts it down when the test ends.
func startReceiver(t *testing.T, host component.Host, mutate func(*Config)) *testReceiver {
	t.Helper()
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Events.NetAddr.Endpoint = freeEndpoint(t)
	cfg.Host.Enabled = false
	cfg.Host.Hostname = "build-host-1"
	cfg.ReportInterval = time.Hour
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	tr := &testReceiver{clock: &fakeClock{t: t0}, sink: new(consumertest.MetricsSink), traces: new(consumertest.TracesSink)}
	set := receivertest.NewNopSettings(metadata.Type)
	mr, err := f.CreateMetrics(context.Background(), set, cfg, tr.sink)
	require.NoError(t, err)
	trr, err := f.CreateTraces(context.Background(), set, cfg, tr.traces)
	require.NoError(t, err)
	tr.r = mr.(*buildmonReceiver)
	require.Same(t, tr.r, trr.(*buildmonReceiver), "metrics and traces share one receiver")
	tr.r.now = tr.clock.now
	if host == nil {
		host = componenttest.NewNopHost()
	}
	require.NoError(t, mr.Start(context.Background(), host))
	require.NoError(t, trr.Start(context.Background(), host))
	t.Cleanup(func() {
		require.NoError(t, mr.Shutdown(context.Background()))
		require.NoError(t, trr.Shutdown(context.Background()))
	})
	tr.url = "http://" + cfg.Events.NetAddr.Endpoint
	return tr
}

func (tr *testReceiver) post(t *testing.T, contentType, body string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Post(tr.url+"/v1/events", contentType, strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header
}

func (tr *testReceiver) postOK(t *testing.T, lines ...string) {
	t.Helper()
	code, body, _ := tr.post(t, "application/x-ndjson", strings.Join(lines, "\n"))
	require.Equal(t, http.StatusAccepted, code, body)
}

// lastMetricsOf waits for a batch that holds the build and returns the newest such batch.
func (tr *testReceiver) waitFor(t *testing.T, cond func(pmetric.Metrics) bool) pmetric.Metrics {
	t.Helper()
	var found pmetric.Metrics
	require.Eventually(t, func() bool {
		all := tr.sink.AllMetrics()
		for i := len(all) - 1; i >= 0; i-- {
			if cond(all[i]) {
				found = all[i]
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	return found
}

func hasMetric(md pmetric.Metrics, name string) bool {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				if ms.At(k).Name() == name {
					return true
				}
			}
		}
	}
	return false
}

// script is a build of all five phases with client timestamps.
func script(id string) []string {
	at := func(s int) string { return t0.Add(time.Duration(s) * time.Second).Format(time.RFC3339) }
	return []string{
		`{"id":"s1","type":"build_started","build_id":"` + id + `","time":"` + at(0) + `","pipeline":"web","attributes":{"repository":"https://example.com/web.git","branch":"main","revision":"abc123","worker":"runner-7"},` +
			`"phases":[{"name":"INIT","steps":1},{"name":"SETUP","steps":2},{"name":"BUILD","steps":4,"weight":0.5},{"name":"TEST","milestones":["unit","e2e"]},{"name":"CLEANUP"}]}`,
		`{"id":"s2","type":"phase_started","build_id":"` + id + `","phase":"INIT","time":"` + at(1) + `"}`,
		`{"id":"s3","type":"step_completed","build_id":"` + id + `","phase":"INIT","time":"` + at(2) + `"}`,
		`{"id":"s4","type":"phase_completed","build_id":"` + id + `","phase":"INIT","time":"` + at(3) + `"}`,
		`{"id":"s5","type":"phase_skipped","build_id":"` + id + `","phase":"SETUP","time":"` + at(3) + `"}`,
		`{"id":"s6","type":"phase_started","build_id":"` + id + `","phase":"BUILD","time":"` + at(4) + `"}`,
		`{"id":"s7","type":"step_completed","build_id":"` + id + `","phase":"BUILD","step":"compile","count":3,"time":"` + at(10) + `"}`,
		`{"id":"s8","type":"phase_failed","build_id":"` + id + `","phase":"BUILD","message":"link error","time":"` + at(12) + `"}`,
		`{"id":"s9","type":"build_finished","build_id":"` + id + `","result":"failure","time":"` + at(13) + `"}`,
	}
}

func TestScriptedBuildMetricsGolden(t *testing.T) {
	tr := startReceiver(t, nil, nil)
	tr.clock.set(t0.Add(20 * time.Second))
	tr.postOK(t, script("build-42")...)
	actual := tr.waitFor(t, func(md pmetric.Metrics) bool { return hasMetric(md, "build.result") })

	expectedFile := filepath.Join("testdata", "golden", "scripted_build.yaml")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		require.NoError(t, golden.WriteMetrics(t, expectedFile, actual))
	}
	expected, err := golden.ReadMetrics(expectedFile)
	require.NoError(t, err)
	require.NoError(t, pmetrictest.CompareMetrics(expected, actual,
		pmetrictest.IgnoreStartTimestamp(), pmetrictest.IgnoreTimestamp(),
		pmetrictest.IgnoreMetricDataPointsOrder(), pmetrictest.IgnoreResourceMetricsOrder()))
}

func TestTracesOneTracePerBuild(t *testing.T) {
	tr := startReceiver(t, nil, nil)
	tr.postOK(t, script("build-43")...)
	require.Eventually(t, func() bool { return tr.traces.SpanCount() >= 8 }, 10*time.Second, 10*time.Millisecond)
	kinds := map[string]int{}
	names := map[string]bool{}
	traceIDs := map[string]bool{}
	for _, td := range tr.traces.AllTraces() {
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			v, _ := rss.At(i).Resource().Attributes().Get("cicd.pipeline.run.id")
			assert.Equal(t, "build-43", v.Str())
			spans := rss.At(i).ScopeSpans().At(0).Spans()
			for j := 0; j < spans.Len(); j++ {
				s := spans.At(j)
				traceIDs[s.TraceID().String()] = true
				k, _ := s.Attributes().Get("buildmon.span.kind")
				kinds[k.Str()]++
				names[s.Name()] = true
				if s.Name() == "BUILD" {
					assert.Equal(t, ptrace.StatusCodeError, s.Status().Code())
					assert.Equal(t, t0.Add(4*time.Second), s.StartTimestamp().AsTime())
					assert.Equal(t, t0.Add(12*time.Second), s.EndTimestamp().AsTime())
				}
			}
		}
	}
	assert.Len(t, traceIDs, 1)
	assert.Equal(t, map[string]int{"build": 1, "phase": 3, "step": 4}, kinds)
	for _, n := range []string{"RUN web", "INIT", "SETUP", "BUILD", "INIT/step 1", "BUILD/compile"} {
		assert.True(t, names[n], "span %q missing from %v", n, names)
	}
}

func TestEventErrorsLeaveStateUnchanged(t *testing.T) {
	tr := startReceiver(t, nil, func(c *Config) { c.Events.MaxRequestBodySize = 4096 })
	tr.postOK(t,
		`{"id":"a","type":"build_started","build_id":"b1","pipeline":"p","phases":[{"name":"INIT","steps":1},{"name":"BUILD","steps":2},{"name":"TEST","milestones":["unit"]}]}`,
		`{"type":"phase_started","build_id":"b1","phase":"INIT"}`,
		`{"type":"step_completed","build_id":"b1","phase":"INIT"}`,
		`{"type":"phase_completed","build_id":"b1","phase":"INIT"}`,
		`{"type":"phase_started","build_id":"b1","phase":"BUILD"}`)
	before, ok := tr.r.registry.Get("b1")
	require.True(t, ok)

	tests := []struct {
		name, ct, body string
		status         int
		field          string
	}{
		{"malformed JSON", "application/json", `{"type":`, 400, ""},
		{"wrong type", "application/json", `{"type":"step_completed","build_id":"b1","phase":"BUILD","count":"1"}`, 400, "count"},
		{"float count", "application/json", `{"type":"step_completed","build_id":"b1","phase":"BUILD","count":1.5}`, 400, "count"},
		{"unknown field", "application/json", `{"type":"step_completed","build_id":"b1","phase":"BUILD","colour":"red"}`, 400, "colour"},
		{"unknown phase", "application/json", `{"type":"phase_started","build_id":"b1","phase":"DEPLOY"}`, 400, "phase"},
		{"step beyond plan", "application/json", `{"type":"step_completed","build_id":"b1","phase":"BUILD","count":3}`, 400, "count"},
		{"step in completed phase", "application/json", `{"type":"step_completed","build_id":"b1","phase":"INIT"}`, 400, "phase"},
		{"milestone not in plan", "application/json", `{"type":"milestone_reached","build_id":"b1","phase":"TEST","step":"perf"}`, 400, "phase"},
		{"bad result", "application/json", `{"type":"build_finished","build_id":"b1","result":"ok"}`, 400, "result"},
		{"bad build id", "application/json", `{"type":"build_started","build_id":"../x","pipeline":"p"}`, 400, "build_id"},
		{"missing pipeline", "application/json", `{"type":"build_started","build_id":"b2"}`, 400, "pipeline"},
		{"negative steps", "application/json", `{"type":"build_started","build_id":"b2","pipeline":"p","phases":[{"name":"A","steps":-1}]}`, 400, "phases[0].steps"},
		{"unknown build", "application/json", `{"type":"phase_started","build_id":"nope","phase":"INIT"}`, 404, "build_id"},
		{"different plan", "application/json", `{"type":"build_started","build_id":"b1","pipeline":"q"}`, 409, "build_id"},
		{"batch with one bad line", "application/x-ndjson", "{\"type\":\"step_completed\",\"build_id\":\"b1\",\"phase\":\"BUILD\"}\n{\"type\":\"step_completed\",\"build_id\":\"b1\",\"phase\":\"BUILD\",\"count\":5}\n", 400, "count"},
		{"too large", "application/json", `{"type":"step_completed","build_id":"b1","phase":"BUILD","message":"` + strings.Repeat("x", 5000) + `"}`, 413, ""},
		{"content type", "text/plain", `{}`, 415, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := tr.post(t, tt.ct, tt.body)
			require.Equal(t, tt.status, code, body)
			var eb errorBody
			require.NoError(t, json.Unmarshal([]byte(body), &eb), body)
			assert.NotEmpty(t, eb.Error)
			assert.Equal(t, tt.field, eb.Field, body)
			after, _ := tr.r.registry.Get("b1")
			assert.Equal(t, before, after, "state changed")
			_, created := tr.r.registry.Get("b2")
			assert.False(t, created)
		})
	}
	t.Run("index of the bad line", func(t *testing.T) {
		_, body, _ := tr.post(t, "application/x-ndjson", "{\"type\":\"step_completed\",\"build_id\":\"b1\",\"phase\":\"BUILD\"}\n{\"type\":\"nope\",\"build_id\":\"b1\"}\n")
		assert.Contains(t, body, `"index":1`)
	})
	t.Run("method", func(t *testing.T) {
		resp, err := http.Get(tr.url + "/v1/events")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	})
}

func TestIdempotentRetries(t *testing.T) {
	tr := startReceiver(t, nil, nil)
	tr.postOK(t, `{"type":"build_started","build_id":"b1","pipeline":"p","phases":[{"name":"BUILD","steps":5}]}`,
		`{"type":"phase_started","build_id":"b1","phase":"BUILD"}`)
	step := `{"id":"evt-1","type":"step_completed","build_id":"b1","phase":"BUILD","count":2}`
	code, body, _ := tr.post(t, "application/json", step)
	require.Equal(t, 202, code)
	assert.JSONEq(t, `{"accepted":1,"duplicates":0}`, body)
	code, body, _ = tr.post(t, "application/json", step)
	require.Equal(t, 202, code)
	assert.JSONEq(t, `{"accepted":0,"duplicates":1}`, body)
	// The same id twice in one batch counts once too.
	code, body, _ = tr.post(t, "application/x-ndjson", `{"id":"evt-2","type":"step_completed","build_id":"b1","phase":"BUILD"}`+"\n"+`{"id":"evt-2","type":"step_completed","build_id":"b1","phase":"BUILD"}`)
	require.Equal(t, 202, code)
	assert.JSONEq(t, `{"accepted":1,"duplicates":1}`, body)
	b, _ := tr.r.registry.Get("b1")
	assert.Equal(t, int64(3), b.Phases[0].Completed)
}

func TestRateLimitAndMaxBuilds(t *testing.T) {
	tr := startReceiver(t, nil, func(c *Config) {
		c.RateLimit = RateLimitConfig{EventsPerSecond: 1, Burst: 3}
		c.MaxBuilds = 1
	})
	tr.postOK(t, `{"type":"build_started","build_id":"b1","pipeline":"p"}`)
	code, body, _ := tr.post(t, "application/json", `{"type":"build_started","build_id":"b2","pipeline":"p"}`)
	assert.Equal(t, http.StatusTooManyRequests, code, body)
	assert.Contains(t, body, "max_builds")
	code, body, hdr := tr.post(t, "application/x-ndjson", strings.Repeat(`{"type":"phase_started","build_id":"b1","phase":"INIT"}`+"\n", 2))
	assert.Equal(t, http.StatusTooManyRequests, code, body)
	assert.NotEmpty(t, hdr.Get("Retry-After"))
	b, _ := tr.r.registry.Get("b1")
	assert.Equal(t, events.PhasePending, b.Phases[0].State, "a rate-limited request changes nothing")
}

func TestFinishedBuildsExpire(t *testing.T) {
	tr := startReceiver(t, nil, func(c *Config) { c.FinishedBuildTTL = time.Minute })
	tr.postOK(t, `{"type":"build_started","build_id":"b1","pipeline":"p"}`, `{"type":"build_finished","build_id":"b1","result":"success"}`)
	assert.Equal(t, 0, tr.r.registry.Expire(t0.Add(30*time.Second)))
	assert.Equal(t, 1, tr.r.registry.Expire(t0.Add(2*time.Minute)))
	_, ok := tr.r.registry.Get("b1")
	assert.False(t, ok)
}

func TestRegistryView(t *testing.T) {
	tr := startReceiver(t, nil, nil)
	tr.postOK(t, `{"type":"build_started","build_id":"b1","pipeline":"p","phases":[{"name":"BUILD","steps":2}]}`)
	resp, err := http.Get(tr.url + "/v1/builds/b1")
	require.NoError(t, err)
	defer resp.Body.Close()
	var v map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	assert.Equal(t, "b1", v["id"])
	assert.Equal(t, "running", v["state"])
	resp2, err := http.Get(tr.url + "/v1/builds/nope")
	require.NoError(t, err)
	resp2.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp2.StatusCode)
}

func newFileStorage(t *testing.T, dir string) (component.ID, component.Component) {
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	return component.NewID(f.Type()), ext
}

func TestRegistrySurvivesRestartWithStorage(t *testing.T) {
	dir := t.TempDir()
	run := func(lines ...string) *events.Build {
		id, ext := newFileStorage(t, dir)
		defer func() { require.NoError(t, ext.Shutdown(context.Background())) }()
		host := hostWithExtensions{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{id: ext}}
		f := NewFactory()
		cfg := f.CreateDefaultConfig().(*Config)
		cfg.Events.NetAddr.Endpoint = freeEndpoint(t)
		cfg.Host.Enabled = false
		cfg.Storage = &id
		set := receivertest.NewNopSettings(metadata.Type)
		set.ID = component.NewID(metadata.Type) // the storage client is keyed by the receiver's id
		r, err := f.CreateMetrics(context.Background(), set, cfg, new(consumertest.MetricsSink))
		require.NoError(t, err)
		require.NoError(t, r.Start(context.Background(), host))
		tr := &testReceiver{r: r.(*buildmonReceiver), url: "http://" + cfg.Events.NetAddr.Endpoint}
		tr.postOK(t, lines...)
		b, ok := tr.r.registry.Get("kept")
		require.NoError(t, r.Shutdown(context.Background()))
		if !ok {
			return nil
		}
		return &b
	}
	run(`{"id":"e1","type":"build_started","build_id":"kept","pipeline":"p","phases":[{"name":"BUILD","steps":5}]}`,
		`{"id":"e2","type":"phase_started","build_id":"kept","phase":"BUILD"}`,
		`{"id":"e3","type":"step_completed","build_id":"kept","phase":"BUILD","count":2}`)
	// After the restart the build is known, counts continue, and old event ids still count once.
	b := run(`{"id":"e3","type":"step_completed","build_id":"kept","phase":"BUILD","count":2}`,
		`{"id":"e4","type":"step_completed","build_id":"kept","phase":"BUILD"}`)
	require.NotNil(t, b)
	assert.Equal(t, int64(3), b.Phases[0].Completed)
	assert.Equal(t, events.PhaseRunning, b.Phases[0].State)
}
