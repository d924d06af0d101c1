package buildmonreceiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/buildmon/buildmon/internal/schema"
	"github.com/buildmon/buildmon/internal/wire"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/metadata"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/metadatatest"
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

// nopSettings are the receiver's settings with its real id (the storage client is keyed by it).
func nopSettings() receiver.Settings {
	set := receivertest.NewNopSettings(metadata.Type)
	set.ID = component.NewID(metadata.Type)
	return set
}

// startReceiver creates the receiver through its factory for metrics and traces, starts it on
// a free loopback port and shuts it down when the test ends.
func startReceiver(t *testing.T, host component.Host, mutate func(*Config)) *testReceiver {
	t.Helper()
	return startReceiverWithSettings(t, host, nopSettings(), mutate)
}

func startReceiverWithSettings(t *testing.T, host component.Host, set receiver.Settings, mutate func(*Config)) *testReceiver {
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

// intPoint returns the value of a build metric's point for a phase ("" for build-level metrics)
// in md; the test fails if there is none.
func intPoint(t *testing.T, md pmetric.Metrics, name, phase string) int64 {
	t.Helper()
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		ms := rms.At(i).ScopeMetrics().At(0).Metrics()
		for k := 0; k < ms.Len(); k++ {
			if ms.At(k).Name() != name {
				continue
			}
			dps := ms.At(k).Gauge().DataPoints()
			for d := 0; d < dps.Len(); d++ {
				v, _ := dps.At(d).Attributes().Get("build.phase")
				if v.Str() == phase {
					return dps.At(d).IntValue()
				}
			}
		}
	}
	t.Fatalf("no %s point for phase %q", name, phase)
	return 0
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

// compareGolden compares md with a golden file (UPDATE_GOLDEN=1 rewrites it). Golden files
// normalise timestamps, so the test checks them with pointTimes.
func compareGolden(t *testing.T, name string, actual pmetric.Metrics) {
	t.Helper()
	expectedFile := filepath.Join("testdata", "golden", name)
	if os.Getenv("UPDATE_GOLDEN") != "" {
		require.NoError(t, golden.WriteMetrics(t, expectedFile, actual))
	}
	expected, err := golden.ReadMetrics(expectedFile)
	require.NoError(t, err)
	require.NoError(t, pmetrictest.CompareMetrics(expected, actual,
		pmetrictest.IgnoreStartTimestamp(), pmetrictest.IgnoreTimestamp(),
		pmetrictest.IgnoreMetricDataPointsOrder(), pmetrictest.IgnoreResourceMetricsOrder()))
}

// pointTimes returns the distinct (start, time) pairs of the data points in md, those of the
// durations (build.duration, build.phase.duration) apart.
func pointTimes(md pmetric.Metrics) (others, durations map[[2]time.Time]int) {
	others, durations = map[[2]time.Time]int{}, map[[2]time.Time]int{}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		ms := rms.At(i).ScopeMetrics().At(0).Metrics()
		for k := 0; k < ms.Len(); k++ {
			out := others
			if n := ms.At(k).Name(); n == schema.MetricBuildDuration || n == schema.MetricPhaseDuration {
				out = durations
			}
			dps := ms.At(k).Gauge().DataPoints()
			for d := 0; d < dps.Len(); d++ {
				out[[2]time.Time{dps.At(d).StartTimestamp().AsTime().UTC(), dps.At(d).Timestamp().AsTime().UTC()}]++
			}
		}
	}
	return others, durations
}

// onlyTimes checks that every point starts at start, the durations carry durTS and the rest ts.
func onlyTimes(t *testing.T, md pmetric.Metrics, start, ts, durTS time.Time) {
	t.Helper()
	others, durations := pointTimes(md)
	assert.Equal(t, map[[2]time.Time]bool{{start, ts}: true}, keys(others), "one start time and one time for all points but the durations")
	assert.Equal(t, map[[2]time.Time]bool{{start, durTS}: true}, keys(durations), "one start time and one time for the durations")
}

func keys[K comparable, V any](m map[K]V) map[K]bool {
	out := make(map[K]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// A finished build: every point carries the time of the build's newest event (client time
// t0+13s), durations are final whatever the receiver's clock says and carry that clock's time
// (t0+20s), so that each re-emission is a sample of its own.
func TestScriptedBuildMetricsGolden(t *testing.T) {
	tr := startReceiver(t, nil, nil)
	tr.clock.set(t0.Add(20 * time.Second))
	tr.postOK(t, script("build-42")...)
	actual := tr.waitFor(t, func(md pmetric.Metrics) bool { return hasMetric(md, "build.result") })
	compareGolden(t, "scripted_build.yaml", actual)
	onlyTimes(t, actual, t0, t0.Add(13*time.Second), t0.Add(20*time.Second))
}

// A running build: durations of the running phase and the build run to the receiver's clock;
// events without a time take the receiver's clock.
func TestRunningBuildMetricsGolden(t *testing.T) {
	tr := startReceiver(t, nil, func(c *Config) { c.MetricsBuilderConfig.ResourceAttributes.CicdWorkerID.Enabled = false })
	lines := script("build-7")[:7] // started, INIT done, SETUP skipped, BUILD running with 3 of 4 steps
	tr.clock.set(t0.Add(30 * time.Second))
	tr.postOK(t, lines...)
	tr.clock.set(t0.Add(40 * time.Second))
	tr.postOK(t, `{"type":"step_completed","build_id":"build-7","phase":"BUILD","step":"package"}`)
	actual := tr.waitFor(t, func(md pmetric.Metrics) bool {
		return hasMetric(md, "build.duration") && intPoint(t, md, "build.phase.steps.completed", "BUILD") == 4
	})
	compareGolden(t, "running_build.yaml", actual)
	onlyTimes(t, actual, t0, t0.Add(40*time.Second), t0.Add(40*time.Second))
}

func TestTracesOneTracePerBuild(t *testing.T) {
	tr := startReceiver(t, nil, nil)
	tr.postOK(t, script("build-43")...)
	require.Eventually(t, func() bool { return tr.traces.SpanCount() >= 6 }, 10*time.Second, 10*time.Millisecond)
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
				switch s.Name() {
				case "BUILD":
					assert.Equal(t, ptrace.StatusCodeError, s.Status().Code())
					assert.Equal(t, "link error", s.Status().Message())
					assert.Equal(t, t0.Add(4*time.Second), s.StartTimestamp().AsTime())
					assert.Equal(t, t0.Add(12*time.Second), s.EndTimestamp().AsTime())
					assert.Equal(t, s.ParentSpanID(), rootSpanID(t, tr))
				case "BUILD/compile":
					// One span for the event's three steps, from the phase's start.
					assert.Equal(t, t0.Add(4*time.Second), s.StartTimestamp().AsTime())
					assert.Equal(t, t0.Add(10*time.Second), s.EndTimestamp().AsTime())
					n, _ := s.Attributes().Get("buildmon.step.count")
					assert.Equal(t, int64(3), n.Int())
					task, _ := s.Attributes().Get("cicd.pipeline.task.name")
					assert.Equal(t, "BUILD", task.Str())
				case "RUN web":
					assert.True(t, s.ParentSpanID().IsEmpty())
					res, _ := s.Attributes().Get("cicd.pipeline.result")
					assert.Equal(t, "failure", res.Str())
				case "SETUP":
					res, _ := s.Attributes().Get("cicd.pipeline.task.run.result")
					assert.Equal(t, "skip", res.Str())
					assert.Equal(t, ptrace.StatusCodeUnset, s.Status().Code())
				}
			}
		}
	}
	assert.Equal(t, map[string]bool{traceID("build-43").String(): true}, traceIDs)
	assert.Equal(t, map[string]int{"build": 1, "phase": 3, "step": 2}, kinds)
	for _, n := range []string{"RUN web", "INIT", "SETUP", "BUILD", "INIT/step 1", "BUILD/compile"} {
		assert.True(t, names[n], "span %q missing from %v", n, names)
	}
}

// rootSpanID returns the span id of the build span among the received spans.
func rootSpanID(t *testing.T, tr *testReceiver) pcommon.SpanID {
	for _, td := range tr.traces.AllTraces() {
		spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for j := 0; j < spans.Len(); j++ {
			if spans.At(j).ParentSpanID().IsEmpty() {
				return spans.At(j).SpanID()
			}
		}
	}
	t.Fatal("no build span")
	return pcommon.SpanID{}
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
		{"unknown field", "application/json", `{"type":"step_completed","build_id":"b1","phase":"BUILD","color":"red"}`, 400, "color"},
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
			var eb wire.Error
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
	resp, err := http.Get(tr.url + "/v1/registry/builds/b1")
	require.NoError(t, err)
	defer resp.Body.Close()
	var v map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	assert.Equal(t, "b1", v["id"])
	assert.Equal(t, "running", v["state"])
	resp2, err := http.Get(tr.url + "/v1/registry/builds/nope")
	require.NoError(t, err)
	resp2.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp2.StatusCode)
}

func newFileStorage(t testing.TB, dir string) (component.ID, component.Component) {
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	return component.NewID(f.Type()), ext
}

// The registry survives a restart with the contrib file_storage extension: the second
// receiver emits the restored build at once, accepts events for it, counts continue, and event
// ids remembered before the restart still count once.
func TestRegistrySurvivesRestartWithStorage(t *testing.T) {
	dir := t.TempDir()
	run := func(expectRestored bool, lines ...string) events.Build {
		id, ext := newFileStorage(t, dir)
		defer func() { require.NoError(t, ext.Shutdown(context.Background())) }()
		host := hostWithExtensions{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{id: ext}}
		f := NewFactory()
		cfg := f.CreateDefaultConfig().(*Config)
		cfg.Events.NetAddr.Endpoint = freeEndpoint(t)
		cfg.Host.Enabled = false
		cfg.Storage = &id
		sink := new(consumertest.MetricsSink)
		r, err := f.CreateMetrics(context.Background(), nopSettings(), cfg, sink)
		require.NoError(t, err)
		require.NoError(t, r.Start(context.Background(), host))
		tr := &testReceiver{r: r.(*buildmonReceiver), sink: sink, url: "http://" + cfg.Events.NetAddr.Endpoint}
		if expectRestored {
			md := tr.waitFor(t, func(md pmetric.Metrics) bool { return hasMetric(md, "build.phase.steps.completed") })
			assert.Equal(t, int64(2), intPoint(t, md, "build.phase.steps.completed", "BUILD"), "restored state emitted before any event")
		}
		tr.postOK(t, lines...)
		b, ok := tr.r.registry.Get("kept")
		require.True(t, ok)
		require.NoError(t, r.Shutdown(context.Background()))
		return b
	}
	run(false, `{"id":"e1","type":"build_started","build_id":"kept","pipeline":"p","phases":[{"name":"BUILD","steps":5}]}`,
		`{"id":"e2","type":"phase_started","build_id":"kept","phase":"BUILD"}`,
		`{"id":"e3","type":"step_completed","build_id":"kept","phase":"BUILD","count":2}`)
	b := run(true, `{"id":"e3","type":"step_completed","build_id":"kept","phase":"BUILD","count":2}`,
		`{"id":"e4","type":"step_completed","build_id":"kept","phase":"BUILD"}`)
	assert.Equal(t, int64(3), b.Phases[0].Completed)
	assert.Equal(t, events.PhaseRunning, b.Phases[0].State)
}

func TestTelemetryCountsEvents(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	tr := startReceiverWithSettings(t, nil, metadatatest.NewSettings(tel), nil)
	tr.postOK(t, `{"id":"1","type":"build_started","build_id":"b1","pipeline":"p"}`, `{"id":"2","type":"phase_started","build_id":"b1","phase":"INIT"}`)
	tr.postOK(t, `{"id":"2","type":"phase_started","build_id":"b1","phase":"INIT"}`)
	code, _, _ := tr.post(t, "application/json", `{"type":"phase_started","build_id":"nope","phase":"INIT"}`)
	require.Equal(t, http.StatusNotFound, code)
	opts := []metricdatatest.Option{metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars()}
	metadatatest.AssertEqualReceiverBuildmonEventsAccepted(t, tel, []metricdata.DataPoint[int64]{{Value: 2}}, opts...)
	metadatatest.AssertEqualReceiverBuildmonEventsDuplicate(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, opts...)
	metadatatest.AssertEqualReceiverBuildmonRequestsRejected(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, opts...)
	metadatatest.AssertEqualReceiverBuildmonBuildsTracked(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, opts...)
}

// Every report_interval all tracked builds are emitted again, without new events, and finished
// builds past finished_build_ttl leave the registry.
func TestPeriodicReportAndExpiry(t *testing.T) {
	tr := startReceiver(t, nil, func(c *Config) {
		c.ReportInterval = 10 * time.Millisecond
		c.FinishedBuildTTL = time.Minute
	})
	tr.postOK(t, `{"type":"build_started","build_id":"running","pipeline":"p"}`,
		`{"type":"build_started","build_id":"done","pipeline":"p"}`,
		`{"type":"build_finished","build_id":"done","result":"success"}`)
	require.Eventually(t, func() bool {
		n := 0
		for _, md := range tr.sink.AllMetrics() {
			if md.ResourceMetrics().Len() == 2 {
				n++
			}
		}
		return n >= 3
	}, 10*time.Second, 5*time.Millisecond, "both builds are re-emitted every report_interval")

	tr.clock.set(t0.Add(2 * time.Minute))
	require.Eventually(t, func() bool {
		_, ok := tr.r.registry.Get("done")
		return !ok
	}, 10*time.Second, 5*time.Millisecond)
	_, ok := tr.r.registry.Get("running")
	assert.True(t, ok, "running builds never expire")
	code, _, _ := tr.post(t, "application/json", `{"type":"phase_started","build_id":"done","phase":"INIT"}`)
	assert.Equal(t, http.StatusNotFound, code)
}

// A consumer that fails does not fail the request nor change what the registry holds.
func TestConsumerErrorKeepsState(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Events.NetAddr.Endpoint = freeEndpoint(t)
	cfg.Host.Enabled = false
	r, err := f.CreateMetrics(context.Background(), nopSettings(), cfg, consumertest.NewErr(errors.New("pipeline full")))
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, r.Shutdown(context.Background())) }()
	tr := &testReceiver{r: r.(*buildmonReceiver), url: "http://" + cfg.Events.NetAddr.Endpoint}
	tr.postOK(t, `{"type":"build_started","build_id":"b1","pipeline":"p","phases":[{"name":"BUILD","steps":3}]}`, `{"type":"phase_started","build_id":"b1","phase":"BUILD"}`)
	tr.postOK(t, `{"type":"step_completed","build_id":"b1","phase":"BUILD"}`)
	tr.postOK(t, `{"type":"step_completed","build_id":"b1","phase":"BUILD"}`)
	b, _ := tr.r.registry.Get("b1")
	assert.Equal(t, int64(2), b.Phases[0].Completed)
}

// A Start that fails (the port is taken) leaves nothing running, and Shutdown returns.
func TestStartFailureReleasesEverything(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Events.NetAddr.Endpoint = l.Addr().String()
	cfg.Host.Enabled = false
	r, err := f.CreateMetrics(context.Background(), nopSettings(), cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.ErrorContains(t, r.Start(context.Background(), componenttest.NewNopHost()), "events.endpoint")
	require.NoError(t, r.Shutdown(context.Background()))
	// The config can be used again (the shared receiver was released).
	r2, err := f.CreateMetrics(context.Background(), nopSettings(), cfg, consumertest.NewNop())
	require.NoError(t, err)
	assert.NotSame(t, r, r2)
	require.NoError(t, r2.Shutdown(context.Background()))
}

func TestUnknownPath(t *testing.T) {
	tr := startReceiver(t, nil, nil)
	resp, err := http.Get(tr.url + "/v2/whatever")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
}

// With host.enabled the receiver runs the host scraper into its metrics pipeline: host metrics
// arrive on a resource that carries only host.name, beside the build metrics.
func TestHostMetricsIntegration(t *testing.T) {
	tr := startReceiver(t, nil, func(c *Config) {
		c.Host.Enabled = true
		c.Host.System.CollectionInterval = 10 * time.Millisecond
		c.Host.Resources.CollectionInterval = time.Hour
	})
	md := tr.waitFor(t, func(md pmetric.Metrics) bool { return hasMetric(md, "system.memory.usage") })
	res := md.ResourceMetrics().At(0).Resource().Attributes()
	assert.Equal(t, map[string]any{"host.name": "build-host-1"}, res.AsRaw())
	tr.postOK(t, `{"type":"build_started","build_id":"b1","pipeline":"p"}`)
	build := tr.waitFor(t, func(md pmetric.Metrics) bool { return hasMetric(md, "build.state") })
	v, _ := build.ResourceMetrics().At(0).Resource().Attributes().Get("host.name")
	assert.Equal(t, "build-host-1", v.Str(), "a build without attributes.host runs on the receiver's host")
}

// Many builds reported at once go down the pipeline in chunks of at most emitChunk builds,
// and every build is in one of them.
func TestReportIsChunked(t *testing.T) {
	tr := startReceiver(t, nil, func(c *Config) {
		c.ReportInterval = 50 * time.Millisecond
		c.MaxBuilds = 5000
	})
	const builds = 2*emitChunk + 37
	lines := make([]string, builds)
	for i := range lines {
		lines[i] = fmt.Sprintf(`{"type":"build_started","build_id":"b-%d","pipeline":"p","phases":[{"name":"BUILD","steps":3}]}`, i)
	}
	tr.postOK(t, lines...)
	seen := map[string]bool{}
	require.Eventually(t, func() bool {
		for _, md := range tr.sink.AllMetrics() {
			require.LessOrEqual(t, md.ResourceMetrics().Len(), emitChunk)
			for i := 0; i < md.ResourceMetrics().Len(); i++ {
				id, ok := md.ResourceMetrics().At(i).Resource().Attributes().Get("cicd.pipeline.run.id")
				require.True(t, ok)
				seen[id.Str()] = true
			}
		}
		return len(seen) == builds
	}, 10*time.Second, 20*time.Millisecond)
}

// statePoints returns value by state attribute of a build's state-set metric (phase "" for
// build-level metrics).
func statePoints(md pmetric.Metrics, name, attr, phase string) map[string]int64 {
	out := map[string]int64{}
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		sms := md.ResourceMetrics().At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				if ms.At(k).Name() != name {
					continue
				}
				dps := ms.At(k).Gauge().DataPoints()
				for l := 0; l < dps.Len(); l++ {
					if p, _ := dps.At(l).Attributes().Get("build.phase"); p.Str() != phase {
						continue
					}
					s, _ := dps.At(l).Attributes().Get(attr)
					out[s.Str()] = dps.At(l).IntValue()
				}
			}
		}
	}
	return out
}

// The state sets hold the current state (1) and the state just left (0), nothing else, so a
// last-value consumer sees the old state drop to 0.
func TestStateSetsCarryCurrentAndLeftState(t *testing.T) {
	tr := startReceiver(t, nil, nil)
	tr.postOK(t, `{"type":"build_started","build_id":"s","pipeline":"p","phases":[{"name":"INIT","steps":1},{"name":"BUILD","steps":2},{"name":"TEST","steps":1}]}`)
	md := tr.waitFor(t, func(md pmetric.Metrics) bool { return hasMetric(md, "build.phase.state") })
	assert.Equal(t, map[string]int64{"pending": 1}, statePoints(md, "build.phase.state", "build.phase.state", "INIT"))
	assert.Equal(t, map[string]int64{"running": 1}, statePoints(md, "build.state", "build.state", ""))
	assert.Empty(t, statePoints(md, "build.result", "cicd.pipeline.result", ""))

	tr.postOK(t, `{"type":"phase_started","build_id":"s","phase":"INIT"}`)
	md = tr.waitFor(t, func(md pmetric.Metrics) bool {
		return statePoints(md, "build.phase.state", "build.phase.state", "INIT")["running"] == 1
	})
	assert.Equal(t, map[string]int64{"pending": 0, "running": 1}, statePoints(md, "build.phase.state", "build.phase.state", "INIT"))

	tr.postOK(t, `{"type":"phase_completed","build_id":"s","phase":"INIT"}`,
		`{"type":"phase_skipped","build_id":"s","phase":"BUILD"}`,
		`{"type":"build_finished","build_id":"s","result":"failure"}`)
	md = tr.waitFor(t, func(md pmetric.Metrics) bool {
		return statePoints(md, "build.state", "build.state", "")["finished"] == 1
	})
	assert.Equal(t, map[string]int64{"running": 0, "completed": 1}, statePoints(md, "build.phase.state", "build.phase.state", "INIT"))
	assert.Equal(t, map[string]int64{"pending": 0, "skipped": 1}, statePoints(md, "build.phase.state", "build.phase.state", "BUILD"))
	assert.Equal(t, map[string]int64{"pending": 1}, statePoints(md, "build.phase.state", "build.phase.state", "TEST"), "a phase that never ran stays pending")
	assert.Equal(t, map[string]int64{"running": 0, "finished": 1}, statePoints(md, "build.state", "build.state", ""))
	assert.Equal(t, map[string]int64{"failure": 1}, statePoints(md, "build.result", "cicd.pipeline.result", ""))
}
