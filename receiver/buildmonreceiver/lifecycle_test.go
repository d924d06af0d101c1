package buildmonreceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/buildmon/buildmon/internal/wire"
	"github.com/buildmon/buildmon/processor/buildprogressprocessor"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"
)

// buildValue returns the newest value in sink of a build metric of build id (for a phase, or
// "" for a build-level metric), and whether there is one.
func buildValue(sink *consumertest.MetricsSink, id, name, phase string) (float64, bool) {
	all := sink.AllMetrics()
	for i := len(all) - 1; i >= 0; i-- {
		rms := all[i].ResourceMetrics()
		for r := 0; r < rms.Len(); r++ {
			rm := rms.At(r)
			if v, ok := rm.Resource().Attributes().Get("cicd.pipeline.run.id"); !ok || v.Str() != id {
				continue
			}
			sms := rm.ScopeMetrics()
			for s := 0; s < sms.Len(); s++ {
				ms := sms.At(s).Metrics()
				for k := 0; k < ms.Len(); k++ {
					m := ms.At(k)
					if m.Name() != name || m.Type() != pmetric.MetricTypeGauge {
						continue
					}
					dps := m.Gauge().DataPoints()
					for d := 0; d < dps.Len(); d++ {
						dp := dps.At(d)
						if p, _ := dp.Attributes().Get("build.phase"); p.Str() != phase {
							continue
						}
						if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
							return float64(dp.IntValue()), true
						}
						return dp.DoubleValue(), true
					}
				}
			}
		}
	}
	return 0, false
}

// A client that sends step events at ten times its rate limit still gets every build and
// phase transition accepted on the first try, and the final state is exact: in the
// receiver's registry, and after the buildprogress processor (progress 1, the steps that
// were accepted and no other). The clock is the receiver's fake clock, so the rates are exact.
func TestLifecycleEventsPassAStepFlood(t *testing.T) {
	const (
		rateLimit  = 100 // events/s
		burst      = 100
		floodRate  = 10 * rateLimit
		tick       = 10 * time.Millisecond
		phaseTicks = 100 // one second per phase
	)
	sink := new(consumertest.MetricsSink)
	pf := buildprogressprocessor.NewFactory()
	proc, err := pf.CreateMetrics(context.Background(), processortest.NewNopSettings(pf.Type()), pf.CreateDefaultConfig(), sink)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, proc.Shutdown(context.Background())) })

	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Events.NetAddr.Endpoint = freeEndpoint(t)
	cfg.Host.Enabled = false
	cfg.Host.Hostname = "build-host-1"
	cfg.ReportInterval = time.Hour
	cfg.RateLimit = RateLimitConfig{EventsPerSecond: rateLimit, Burst: burst, LifecycleReserve: 0.2}
	require.NoError(t, cfg.Validate())
	rcv, err := f.CreateMetrics(context.Background(), nopSettings(), cfg, proc)
	require.NoError(t, err)
	clock := &fakeClock{t: t0}
	tr := &testReceiver{r: rcv.(*buildmonReceiver), clock: clock, url: "http://" + cfg.Events.NetAddr.Endpoint}
	tr.r.now = clock.now
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })

	phases := events.DefaultPhases
	lifecycle := func(line string) {
		t.Helper()
		code, body, _ := tr.post(t, "application/json", line)
		require.Equal(t, http.StatusAccepted, code, "lifecycle event on the first try at %s: %s: %s", clock.now().Sub(t0), line, body)
	}
	lifecycle(`{"id":"start","type":"build_started","build_id":"flood","pipeline":"web"}`)
	accepted := map[string]int{}
	limited := 0
	seq := 0
	for _, phase := range phases {
		lifecycle(fmt.Sprintf(`{"id":"%s-start","type":"phase_started","build_id":"flood","phase":"%s"}`, phase, phase))
		for i := 0; i < phaseTicks; i++ {
			clock.set(clock.now().Add(tick))
			for range floodRate * tick / time.Second {
				seq++
				code, body, hdr := tr.post(t, "application/json", fmt.Sprintf(`{"id":"step-%d","type":"step_completed","build_id":"flood","phase":"%s"}`, seq, phase))
				switch code {
				case http.StatusAccepted:
					accepted[phase]++
				case http.StatusTooManyRequests:
					limited++
					var rl wire.RateLimited
					require.NoError(t, json.Unmarshal([]byte(body), &rl), body)
					assert.Equal(t, wire.ProgressEventTypes, rl.Limited, body)
					assert.Equal(t, wire.LifecycleEventTypes, rl.Admitted, body)
					assert.Contains(t, rl.Error, "lifecycle events (build and phase transitions) are still admitted")
					assert.Equal(t, fmt.Sprint(rl.RetryAfterSeconds), hdr.Get("Retry-After"))
				default:
					t.Fatalf("step: %d %s", code, body)
				}
			}
		}
		lifecycle(fmt.Sprintf(`{"id":"%s-done","type":"phase_completed","build_id":"flood","phase":"%s"}`, phase, phase))
	}
	lifecycle(`{"id":"finish","type":"build_finished","build_id":"flood","result":"success"}`)

	// 10x the rate: about nine in ten steps were limited, and the steps kept the rate less
	// the transitions (5 s at 100/s, the burst less the reserve at the start).
	sent := seq
	total := 0
	for _, n := range accepted {
		total += n
	}
	assert.Equal(t, sent, total+limited)
	assert.InDelta(t, 5*rateLimit+burst-20-11, total, 10, "steps accepted: %d", total)
	assert.Greater(t, limited, sent*8/10)

	b, ok := tr.r.registry.Get("flood")
	require.True(t, ok)
	assert.Equal(t, "success", b.Result)
	for i, phase := range phases {
		assert.Equal(t, events.PhaseCompleted, b.Phases[i].State, phase)
		assert.Equal(t, int64(accepted[phase]), b.Phases[i].Completed, phase)
	}

	require.Eventually(t, func() bool {
		v, ok := buildValue(sink, "flood", "build.progress", "")
		return ok && v == 1
	}, 10*time.Second, 10*time.Millisecond, "the processor's progress reaches 1")
	for _, phase := range phases {
		v, ok := buildValue(sink, "flood", "build.phase.steps.completed", phase)
		require.True(t, ok, phase)
		assert.Equal(t, float64(accepted[phase]), v, phase)
		v, ok = buildValue(sink, "flood", "build.phase.progress", phase)
		require.True(t, ok, phase)
		assert.Equal(t, 1.0, v, phase)
	}
}

// Mixed batches are judged by their content, all or nothing: a batch that carries a
// lifecycle event may use the whole bucket, the share kept for lifecycle events included;
// a batch of step and milestone events only must leave that share.
func TestRateLimitMixedBatches(t *testing.T) {
	tr := startReceiver(t, nil, func(c *Config) {
		c.RateLimit = RateLimitConfig{EventsPerSecond: 1, Burst: 10, LifecycleReserve: 0.3} // 3 kept
	})
	tr.postOK(t, `{"type":"build_started","build_id":"b1","pipeline":"p","phases":[{"name":"A"},{"name":"B"}]}`,
		`{"type":"phase_started","build_id":"b1","phase":"A"}`) // 8 left
	step := `{"type":"step_completed","build_id":"b1","phase":"A"}`
	tr.postOK(t, step, step, step, step, step) // 3 left: the reserve

	code, body, hdr := tr.post(t, "application/json", step)
	require.Equal(t, http.StatusTooManyRequests, code, body)
	assert.Equal(t, "1", hdr.Get("Retry-After"), "one token more than the reserve comes in a second")
	var rl wire.RateLimited
	require.NoError(t, json.Unmarshal([]byte(body), &rl))
	assert.Equal(t, wire.ProgressEventTypes, rl.Limited)
	assert.Equal(t, wire.LifecycleEventTypes, rl.Admitted)
	var asError wire.Error
	require.NoError(t, json.Unmarshal([]byte(body), &asError), "a 429 decodes as the API's Error too")
	assert.Contains(t, asError.Error, "rate_limit.lifecycle_reserve")

	// A batch with a lifecycle event takes the reserve, its step rides along.
	tr.postOK(t, step, `{"type":"phase_completed","build_id":"b1","phase":"A"}`) // 1 left
	tr.postOK(t, `{"type":"phase_started","build_id":"b1","phase":"B"}`)         // 0 left

	code, body, hdr = tr.post(t, "application/json", `{"type":"phase_completed","build_id":"b1","phase":"B"}`)
	require.Equal(t, http.StatusTooManyRequests, code, body)
	assert.Equal(t, "1", hdr.Get("Retry-After"))
	rl = wire.RateLimited{}
	require.NoError(t, json.Unmarshal([]byte(body), &rl))
	assert.Equal(t, wire.EventTypes, rl.Limited, "the whole budget is spent")
	assert.Empty(t, rl.Admitted)
	b, _ := tr.r.registry.Get("b1")
	assert.Equal(t, int64(6), b.Phases[0].Completed, "the refused step changed nothing, the one riding along counts")
	assert.Equal(t, events.PhaseRunning, b.Phases[1].State, "a refused transition changes nothing")

	// A second later one token is back: the transition passes, a step does not (it must
	// leave the reserve).
	tr.clock.set(t0.Add(time.Second))
	code, body, _ = tr.post(t, "application/json", `{"type":"step_completed","build_id":"b1","phase":"B"}`)
	require.Equal(t, http.StatusTooManyRequests, code, body)
	tr.postOK(t, `{"type":"phase_completed","build_id":"b1","phase":"B"}`)
}

// A batch of steps larger than the burst less the reserve can never pass: 413, naming the
// reserve; the same number of events with a lifecycle event among them fits.
func TestStepBatchLargerThanItsShare(t *testing.T) {
	tr := startReceiver(t, nil, func(c *Config) {
		c.RateLimit = RateLimitConfig{EventsPerSecond: 1, Burst: 10, LifecycleReserve: 0.5}
	})
	tr.postOK(t, `{"type":"build_started","build_id":"b1","pipeline":"p","phases":[{"name":"A"}]}`)
	tr.clock.set(t0.Add(time.Minute))
	step := `{"type":"step_completed","build_id":"b1","phase":"A"}`
	code, body, _ := tr.post(t, "application/x-ndjson", strings.Repeat(step+"\n", 6))
	require.Equal(t, http.StatusRequestEntityTooLarge, code, body)
	assert.Contains(t, body, "less the 5 kept for lifecycle events")
	tr.postOK(t, `{"type":"phase_started","build_id":"b1","phase":"A"}`, step, step, step, step, step)
}

// Invalid requests are rate-limited as before, whether or not they name a lifecycle event
// type: a client past its budget gets 429, not a decoded 400.
func TestInvalidRequestsCostTokens(t *testing.T) {
	tr := startReceiver(t, nil, func(c *Config) {
		c.RateLimit = RateLimitConfig{EventsPerSecond: 1, Burst: 2, LifecycleReserve: 0}
	})
	bad := `{"type":"build_started","build_id":"b1"}` // no pipeline
	for range 2 {
		code, body, _ := tr.post(t, "application/json", bad)
		require.Equal(t, http.StatusBadRequest, code, body)
	}
	code, body, _ := tr.post(t, "application/json", bad)
	require.Equal(t, http.StatusTooManyRequests, code, body)
}

// max_builds refuses only new builds: at the cap, the transitions and the finish of a
// tracked build are accepted.
func TestMaxBuildsNeverRefusesTrackedBuilds(t *testing.T) {
	tr := startReceiver(t, nil, func(c *Config) { c.MaxBuilds = 1 })
	tr.postOK(t, `{"type":"build_started","build_id":"b1","pipeline":"p","phases":[{"name":"A"}]}`)
	code, body, _ := tr.post(t, "application/json", `{"type":"build_started","build_id":"b2","pipeline":"p"}`)
	require.Equal(t, http.StatusTooManyRequests, code, body)
	tr.postOK(t, `{"type":"phase_started","build_id":"b1","phase":"A"}`)
	tr.postOK(t, `{"type":"step_completed","build_id":"b1","phase":"A"}`)
	code, body, _ = tr.post(t, "application/json", `{"type":"build_started","build_id":"b3","pipeline":"p"}`)
	require.Equal(t, http.StatusTooManyRequests, code, body)
	tr.postOK(t, `{"type":"phase_completed","build_id":"b1","phase":"A"}`)
	tr.postOK(t, `{"type":"build_finished","build_id":"b1","result":"success"}`)
	b, _ := tr.r.registry.Get("b1")
	assert.True(t, b.Done())
}

func TestMayHoldLifecycle(t *testing.T) {
	for _, tc := range []struct {
		body string
		want bool
	}{
		{`{"type":"step_completed","build_id":"b","phase":"A"}`, false},
		{`{"type":"milestone_reached","build_id":"b","phase":"A","step":"unit"}`, false},
		{`{"type":"phase_completed","build_id":"b","phase":"A"}`, true},
		{`{"type":"step_completed","build_id":"b","phase":"A","step":"phase_started"}`, true}, // decoded, then classified exactly
		{`{"type":"\u0062uild_started","build_id":"b","pipeline":"p"}`, false},                // limited as steps: stricter
	} {
		assert.Equal(t, tc.want, mayHoldLifecycle([]byte(tc.body)), tc.body)
	}
}
