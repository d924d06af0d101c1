package buildmonreceiver

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/buildmon/buildmon/internal/selfprotect"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/metadatatest"
)

// fakeUsage is a process whose CPU time grows at a settable share of the host's CPUs, on the
// wall clock (the controller measures its share against the wall clock), and whose memory is
// settable.
type fakeUsage struct {
	mu     sync.Mutex
	share  float64
	rss    uint64
	cpu    time.Duration
	lastAt time.Time
}

func (f *fakeUsage) set(share float64, rssMiB uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance()
	f.share, f.rss = share, rssMiB<<20
}

func (f *fakeUsage) advance() {
	now := time.Now()
	if !f.lastAt.IsZero() {
		f.cpu += time.Duration(float64(now.Sub(f.lastAt)) * f.share * float64(runtime.NumCPU()))
	}
	f.lastAt = now
}

func (f *fakeUsage) Read(context.Context) (selfprotect.Usage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance()
	return selfprotect.Usage{CPU: f.cpu, RSS: f.rss, At: f.lastAt}, nil
}

type protectedReceiver struct {
	*testReceiver
	usage *fakeUsage
	logs  *observer.ObservedLogs
	tel   *componenttest.Telemetry
}

// startProtected starts the receiver through its factory with a fake usage reader, an
// observed logger and test telemetry.
func startProtected(t *testing.T, mutate func(*Config)) *protectedReceiver {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	core, logs := observer.New(zapcore.InfoLevel)
	set := metadatatest.NewSettings(tel)
	set.ID = nopSettings().ID
	set.Logger = zap.New(core)
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Events.NetAddr.Endpoint = freeEndpoint(t)
	cfg.Host.Enabled = false
	cfg.Host.Hostname = "build-host-1"
	cfg.ReportInterval = time.Hour
	cfg.SelfProtection = SelfProtectionConfig{
		CPUShare: 0.25, CheckInterval: 10 * time.Millisecond, ReleaseRatio: 0.8, ReleaseChecks: 2,
		StepSpanSampleRate: 3, MaxScrapeStretch: 4, ReportIntervalStretch: 5,
	}
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	pr := &protectedReceiver{
		testReceiver: &testReceiver{clock: &fakeClock{t: t0}, sink: new(consumertest.MetricsSink), traces: new(consumertest.TracesSink), url: "http://" + cfg.Events.NetAddr.Endpoint},
		usage:        &fakeUsage{},
		logs:         logs,
		tel:          tel,
	}
	mr, err := f.CreateMetrics(context.Background(), set, cfg, pr.sink)
	require.NoError(t, err)
	trr, err := f.CreateTraces(context.Background(), set, cfg, pr.traces)
	require.NoError(t, err)
	pr.r = mr.(*buildmonReceiver)
	pr.r.now = pr.clock.now
	pr.r.usage = pr.usage
	require.NoError(t, mr.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, trr.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, mr.Shutdown(context.Background()))
		require.NoError(t, trr.Shutdown(context.Background()))
	})
	return pr
}

// activeGauge returns the newest buildmon.self_protection.active values by measure.
func activeGauge(sink *consumertest.MetricsSink) map[string]int64 {
	all := sink.AllMetrics()
	for i := len(all) - 1; i >= 0; i-- {
		rms := all[i].ResourceMetrics()
		for r := 0; r < rms.Len(); r++ {
			ms := rms.At(r).ScopeMetrics().At(0).Metrics()
			for k := 0; k < ms.Len(); k++ {
				if ms.At(k).Name() != "buildmon.self_protection.active" {
					continue
				}
				out := map[string]int64{}
				dps := ms.At(k).Gauge().DataPoints()
				for d := 0; d < dps.Len(); d++ {
					v, _ := dps.At(d).Attributes().Get("self_protection.measure")
					out[v.Str()] = dps.At(d).IntValue()
				}
				if h, _ := rms.At(r).Resource().Attributes().Get("host.name"); h.Str() != "build-host-1" {
					return nil
				}
				return out
			}
		}
	}
	return nil
}

// messages are the logged messages with their measure, in order.
func messages(logs *observer.ObservedLogs, prefix string) []string {
	var out []string
	for _, e := range logs.All() {
		if strings.HasPrefix(e.Message, prefix) {
			out = append(out, e.ContextMap()["measure"].(string))
		}
	}
	return out
}

// spanNames counts the spans of the traces sink by name.
func spanNames(ts *consumertest.TracesSink) map[string]int {
	out := map[string]int{}
	for _, td := range ts.AllTraces() {
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			spans := rss.At(i).ScopeSpans().At(0).Spans()
			for j := 0; j < spans.Len(); j++ {
				out[spans.At(j).Name()]++
			}
		}
	}
	return out
}

// Over budget, the measures engage one per check in the documented order, each logged once,
// the gauge says which are active, step spans are sampled 1 in N (the rest counted) while
// phase and build spans and every state change still go out; in the band between the release
// level and the budget nothing changes; once calm, the measures are released in reverse and
// everything is back to normal.
func TestSelfProtectionEngagesAndReleases(t *testing.T) {
	pr := startProtected(t, nil)
	assert.Equal(t, 1, pr.r.scrapeStretch())
	assert.Equal(t, 1, pr.r.reportStretch())

	pr.usage.set(0.9, 0) // far over the 0.25 budget
	require.Eventually(t, func() bool { return pr.r.protect.Level() == 3 }, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		g := activeGauge(pr.sink)
		return g["step_span_sampling"] == 1 && g["host_scrape_stretch"] == 1 && g["reemission_slowdown"] == 1
	}, 10*time.Second, 5*time.Millisecond, "the gauge says every measure is active")
	pr.usage.set(0.22, 0) // in the band: hold
	assert.Equal(t, []string{"step_span_sampling", "host_scrape_stretch", "reemission_slowdown"},
		messages(pr.logs, "self-protection: over budget"), "engaged in order, each logged once")
	assert.Equal(t, 4, pr.r.scrapeStretch())
	assert.Equal(t, 5, pr.r.reportStretch())

	// Step spans 1 in 3; the phase, build and every state change go out.
	lines := []string{`{"type":"build_started","build_id":"b1","pipeline":"p","phases":[{"name":"BUILD","steps":30}]}`,
		`{"type":"phase_started","build_id":"b1","phase":"BUILD"}`}
	for i := range 30 {
		lines = append(lines, fmt.Sprintf(`{"type":"step_completed","build_id":"b1","phase":"BUILD","step":"s%d"}`, i))
	}
	lines = append(lines, `{"type":"phase_completed","build_id":"b1","phase":"BUILD"}`, `{"type":"build_finished","build_id":"b1","result":"success"}`)
	for _, l := range lines {
		pr.postOK(t, l)
	}
	md := pr.waitFor(t, func(md pmetric.Metrics) bool { return hasMetric(md, "build.result") })
	assert.Equal(t, int64(30), intPoint(t, md, "build.phase.steps.completed", "BUILD"), "every step counts in the metrics")
	require.Eventually(t, func() bool { return spanNames(pr.traces)["RUN p"] == 1 }, 10*time.Second, 5*time.Millisecond)
	names := spanNames(pr.traces)
	assert.Equal(t, 1, names["BUILD"], "the phase span")
	steps := 0
	for name, n := range names {
		if strings.HasPrefix(name, "BUILD/") {
			steps += n
		}
	}
	assert.Equal(t, 10, steps, "one step span in three")
	metadatatest.AssertEqualReceiverBuildmonStepSpansSampledOut(t, pr.tel, []metricdata.DataPoint[int64]{{Value: 20}},
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	assert.Equal(t, 3, pr.r.protect.Level(), "the band held every measure")

	pr.usage.set(0, 0) // calm
	require.Eventually(t, func() bool { return pr.r.protect.Level() == 0 }, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		g := activeGauge(pr.sink)
		return g != nil && g["step_span_sampling"] == 0 && g["host_scrape_stretch"] == 0 && g["reemission_slowdown"] == 0
	}, 10*time.Second, 5*time.Millisecond, "the gauge says no measure is active")
	assert.Equal(t, []string{"reemission_slowdown", "host_scrape_stretch", "step_span_sampling"},
		messages(pr.logs, "self-protection: pressure gone"), "released in reverse, each logged once")
	assert.Len(t, messages(pr.logs, "self-protection: over budget"), 3, "nothing engaged again")
	assert.Equal(t, 1, pr.r.scrapeStretch())
	assert.Equal(t, 1, pr.r.reportStretch())

	// Back to normal: every step span goes out.
	pr.postOK(t, `{"type":"build_started","build_id":"b2","pipeline":"q","phases":[{"name":"A"}]}`, `{"type":"phase_started","build_id":"b2","phase":"A"}`,
		`{"type":"step_completed","build_id":"b2","phase":"A","step":"x"}`, `{"type":"step_completed","build_id":"b2","phase":"A","step":"y"}`)
	require.Eventually(t, func() bool { n := spanNames(pr.traces); return n["A/x"] == 1 && n["A/y"] == 1 }, 10*time.Second, 5*time.Millisecond)
}

// Memory over its budget engages the measures as CPU does.
func TestSelfProtectionMemoryBudget(t *testing.T) {
	pr := startProtected(t, func(c *Config) { c.SelfProtection.CPUShare, c.SelfProtection.MemoryMiB = 0, 512 })
	pr.usage.set(0.9, 100)
	time.Sleep(50 * time.Millisecond) // several checks: CPU has no budget, memory is fine
	assert.Equal(t, 0, pr.r.protect.Level())
	pr.usage.set(0, 600)
	require.Eventually(t, func() bool { return pr.r.protect.Level() == 3 }, 10*time.Second, 5*time.Millisecond)
}

// Without a budget there is no controller, no gauge and no sampling.
func TestSelfProtectionOffByDefault(t *testing.T) {
	tr := startReceiver(t, nil, nil)
	assert.Nil(t, tr.r.protect)
	tr.postOK(t, `{"type":"build_started","build_id":"b1","pipeline":"p","phases":[{"name":"A"}]}`, `{"type":"phase_started","build_id":"b1","phase":"A"}`,
		`{"type":"step_completed","build_id":"b1","phase":"A","step":"x"}`)
	require.Eventually(t, func() bool { return spanNames(tr.traces)["A/x"] == 1 }, 10*time.Second, 5*time.Millisecond)
	assert.Nil(t, activeGauge(tr.sink))
}

// With self-protection on, host metrics run on the stretchable ticker and are scraped.
func TestSelfProtectionHostMetricsStillScraped(t *testing.T) {
	pr := startProtected(t, func(c *Config) {
		c.Host.Enabled = true
		c.Host.System.CollectionInterval = 20 * time.Millisecond
	})
	pr.usage.set(0.9, 0)
	require.Eventually(t, func() bool { return pr.r.protect.Level() == 3 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 4, pr.r.scrapeStretch())
	n := len(pr.sink.AllMetrics())
	pr.waitFor(t, func(md pmetric.Metrics) bool {
		return hasMetric(md, "system.memory.usage") && len(pr.sink.AllMetrics()) > n
	})
}
