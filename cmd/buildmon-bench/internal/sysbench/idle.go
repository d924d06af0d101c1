package sysbench

import (
	"context"
	"fmt"
	"time"

	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/results"
	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/stats"
	"github.com/buildmon/buildmon/cmd/buildmon-load/loadgen"
)

// IdleAndE2E measures item 2 (idle cost with the default config) and then, on the same
// collector, item 7 (end-to-end latency from an event POST to build.progress on the Prometheus
// endpoint).
func (r *Runner) IdleAndE2E(ctx context.Context) ([]results.Measure, error) {
	c, err := r.start(ctx, "idle", nil)
	if err != nil {
		return nil, err
	}
	defer r.stop(c)

	measures, err := r.idle(ctx, c)
	if err != nil {
		return measures, err
	}
	e2e, err := r.e2e(ctx, c)
	return append(measures, e2e...), err
}

func (r *Runner) idle(ctx context.Context, c *Collector) ([]results.Measure, error) {
	// Start-up work (config, first scrapes, storage open) is not idle cost: the warm-up is
	// skipped. The table shows the median of idleWindow-long CPU samples.
	total := time.Duration(r.Settings.IdleSeconds) * time.Second
	idleWarmup, idleWindow := r.Settings.IdleWarmup, r.Settings.IdleWindow
	r.logf("idle: warming up %s, then sampling for %s", idleWarmup, total)
	if err := sleep(ctx, idleWarmup); err != nil {
		return nil, err
	}
	first, err := c.Sample()
	if err != nil {
		return nil, err
	}
	var (
		windows []float64
		rss     []float64
		last    = first
		prev    = first
	)
	start := first.At
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(start) < total {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		s, err := c.Sample()
		if err != nil {
			return nil, err
		}
		rss = append(rss, float64(s.RSS))
		if s.At.Sub(prev.At) >= idleWindow {
			windows = append(windows, cpuRate(prev, s))
			prev = s
		}
		last = s
	}
	if len(windows) == 0 {
		windows = []float64{cpuRate(first, last)}
	}
	whole := cpuRate(first, last)
	r.logf("idle: %.3f CPU-s/min over %s, VmHWM %.1f MiB", whole, last.At.Sub(first.At).Round(time.Second), mib(last.HWM))
	return []results.Measure{
		results.New(2, "idle/cpu_seconds_per_minute", "idle CPU, default config", "CPU-s/min", "lower", windows).
			WithTarget("value", "<=", 0.6).
			WithNote(fmt.Sprintf("median of %s windows after a %s warm-up; %.3f CPU-s/min (%.2f%% of one core) over the whole %s; 1%% of a core = 0.6 CPU-s/min",
				idleWindow, idleWarmup, whole, whole/0.6, last.At.Sub(first.At).Round(time.Second))),
		results.New(2, "idle/peak_rss", "idle peak RSS (VmHWM)", "B", "lower", []float64{float64(last.HWM)}).
			WithTarget("value", "<=", 80<<20),
		results.New(2, "idle/rss", "idle RSS (VmRSS)", "B", "lower", rss),
	}, nil
}

const progressMetric = "build_progress_ratio"

// e2e posts step_completed events to one build and polls the Prometheus endpoint until the
// build's build_progress_ratio shows the new value.
func (r *Runner) e2e(ctx context.Context, c *Collector) ([]results.Measure, error) {
	n := r.Settings.E2ESamples
	client, err := loadgen.NewClient(URL(c.Ports.Events, ""), loadgen.ClientOptions{Conns: 1})
	if err != nil {
		return nil, err
	}
	defer client.Close()
	id := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
	// One phase of 10n steps: every step raises progress by 1/(10n), never reaching 1.
	if err := client.StartBuilds(ctx, []string{id}, loadgen.BuildPlan{Pipeline: "bench-e2e", Steps: 10 * n}, 1); err != nil {
		return nil, err
	}
	metrics := URL(c.Ports.Prometheus, "/metrics")
	var scrapes []float64
	read := func() (float64, bool, error) {
		t0 := time.Now()
		code, body, err := get(ctx, metrics)
		scrapes = append(scrapes, float64(time.Since(t0)))
		if err != nil {
			return 0, false, err
		}
		if code != 200 {
			return 0, false, fmt.Errorf("GET %s: %d", metrics, code)
		}
		v, ok := promValue(body, progressMetric, "cicd_pipeline_run_id", id)
		return v, ok, nil
	}
	// The series appears once the build's first metrics went through the pipeline.
	var current float64
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, ok, err := read()
		if err != nil {
			return nil, err
		}
		if ok {
			current = v
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no %s series for build %s on %s within 30 s", progressMetric, id, metrics)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
	scrapes = scrapes[:0]
	r.logf("e2e: %d samples of event POST -> %s on /metrics", n, progressMetric)
	step := []byte(`{"type":"step_completed","build_id":"` + id + `","phase":"BUILD"}`)
	events := URL(c.Ports.Events, "/v1/events")
	var lat []float64
	for i := 0; i < n; i++ {
		t0 := time.Now()
		code, body, err := post(ctx, events, "application/json", step)
		if err != nil {
			return nil, err
		}
		if code/100 != 2 {
			return nil, fmt.Errorf("POST step %d: %d %s", i, code, body)
		}
		seen := false
		for limit := t0.Add(10 * time.Second); time.Now().Before(limit); {
			v, ok, err := read()
			if err != nil {
				return nil, err
			}
			if ok && v > current {
				lat = append(lat, float64(time.Since(t0)))
				current, seen = v, true
				break
			}
			if err := sleep(ctx, 2*time.Millisecond); err != nil {
				return nil, err
			}
		}
		if !seen {
			return nil, fmt.Errorf("step %d of build %s not visible on /metrics within 10 s", i, id)
		}
		// The receiver emits the first change at once and gathers the changes of the next
		// 50 ms into one emission, so an event's latency depends on when it arrives after the
		// previous one. Gaps spread evenly over 0-250 ms sample that, instead of hitting one
		// phase of it with a fixed spacing.
		if err := sleep(ctx, time.Duration(i*97%250)*time.Millisecond); err != nil {
			return nil, err
		}
	}
	p50, p99 := stats.Median(lat), stats.Quantile(lat, 0.99)
	scrape := stats.Median(scrapes)
	r.logf("e2e: p50 %s, p99 %s (one /metrics GET: %s)", time.Duration(p50), time.Duration(p99), time.Duration(scrape))
	note := fmt.Sprintf("%d samples, one build, default config; events 0-250 ms apart (spread evenly); polled every 2 ms; baseline = median duration of one GET /metrics (the resolution of this measurement)", len(lat))
	return []results.Measure{
		results.New(7, "e2e/latency_p50", "event POST -> Prometheus, p50", "ns", "lower", lat).
			WithBaseline("GET /metrics", scrapes).WithNote(note),
		results.New(7, "e2e/latency_p99", "event POST -> Prometheus, p99", "ns", "lower", []float64{p99}).
			WithBaseline("GET /metrics", scrapes),
	}, nil
}
