package sysbench

import (
	"context"
	"fmt"
	"time"

	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/results"
	"github.com/buildmon/buildmon/cmd/buildmon-load/loadgen"
)

// Memory measures item 6: RSS with many tracked builds (default 10,000), against the RSS of
// the same collector before the builds started; then the same with the Prometheus exporter
// taken out of the metrics pipeline (an info row), which shows how much of the RSS is the
// exporter's copy of every series.
func (r *Runner) Memory(ctx context.Context) ([]results.Measure, error) {
	ms, err := r.memoryWith(ctx, "memory", memoryOverrides(r.Settings), true)
	if err != nil {
		return ms, err
	}
	exporters, err := Lookup(r.DefaultConfig, "service.pipelines.metrics.exporters")
	if err != nil {
		return ms, nil
	}
	list, _ := exporters.([]any)
	var kept []any
	for _, e := range list {
		if e != "prometheus" {
			kept = append(kept, e)
		}
	}
	if len(kept) == len(list) || len(kept) == 0 {
		return ms, nil // no Prometheus exporter to take out
	}
	without, err := r.memoryWith(ctx, "memory-noprom", append(memoryOverrides(r.Settings),
		Override{Path: "service.pipelines.metrics.exporters", Value: kept}), false)
	return append(ms, without...), err
}

// memoryWith runs the memory measurement with overrides; main says whether it is the row with
// the target or the one without the Prometheus exporter.
func (r *Runner) memoryWith(ctx context.Context, name string, overrides []Override, main bool) ([]results.Measure, error) {
	s := r.Settings
	// The builds run for several report and checkpoint intervals before RSS is read, so the
	// steady state is measured.
	memorySettle := s.MemorySettle
	c, err := r.start(ctx, name, overrides)
	if err != nil {
		return nil, err
	}
	defer r.stop(c)
	// The baseline is read once start-up work is over, as for the idle measurement.
	if err := sleep(ctx, s.IdleWarmup); err != nil {
		return nil, err
	}
	base, err := c.Sample()
	if err != nil {
		return nil, err
	}
	client, err := loadgen.NewClient(URL(c.Ports.Events, ""), loadgen.ClientOptions{Conns: 4})
	if err != nil {
		return nil, err
	}
	defer client.Close()
	ids := loadgen.BuildIDs(fmt.Sprintf("mem-%d", time.Now().UnixNano()), s.MemoryBuilds)
	t0 := time.Now()
	if err := client.StartBuilds(ctx, ids, loadgen.BuildPlan{Pipeline: "bench-memory", Steps: 100}, 1000); err != nil {
		return nil, err
	}
	// One step in every build, so each has progress, a running phase and an ETA.
	pace, err := client.Pace(ctx, loadgen.PaceOptions{Builds: ids, Hz: 1, Duration: time.Second, MaxTicks: 1, Chunk: 1000})
	if err != nil {
		return nil, err
	}
	if pace.FirstError != "" {
		return nil, fmt.Errorf("stepping %d builds: %s", len(ids), pace.FirstError)
	}
	r.logf("memory: %d builds started and stepped in %s; settling %s", len(ids), time.Since(t0).Round(time.Millisecond), memorySettle)
	if err := sleep(ctx, memorySettle); err != nil {
		return nil, err
	}
	tracked, err := r.checkTracked(ctx, c, ids)
	if err != nil {
		return nil, err
	}
	// A scrape is part of normal operation: the Prometheus exporter renders every series. A
	// config without the Prometheus exporter in a pipeline has nothing to scrape.
	scrape := "after one /metrics scrape"
	code, body, err := get(ctx, URL(c.Ports.Prometheus, "/metrics"))
	if err != nil || code != 200 {
		scrape = fmt.Sprintf("without a /metrics scrape (%d %v)", code, err)
		r.logf("memory: %s", scrape)
	} else {
		scrape += fmt.Sprintf(" (%d KiB)", len(body)>>10)
	}
	var rss []float64
	var last int64
	var parts string
	for range 5 {
		smp, err := c.Sample()
		if err != nil {
			return nil, err
		}
		rss = append(rss, float64(smp.RSS))
		last = smp.HWM
		parts = fmt.Sprintf("last reading: RssAnon %.1f MiB, RssFile %.1f MiB", mib(smp.RSSAnon), mib(smp.RSSFile))
		if err := sleep(ctx, min(time.Second, memorySettle)); err != nil {
			return nil, err
		}
	}
	r.heapProfile(ctx, c, name)
	r.logf("%s: RSS %.1f MiB (before the builds %.1f MiB), peak %.1f MiB; %s; %s", name, mib(int64(rss[len(rss)-1])), mib(base.RSS), mib(last), parts, scrape)
	if !main {
		return []results.Measure{
			results.New(6, "memory/rss_builds_without_prometheus", fmt.Sprintf("RSS with %d builds, no Prometheus exporter", len(ids)), "B", "lower", rss).
				WithBaseline("no builds", []float64{float64(base.RSS)}).
				WithNote(fmt.Sprintf("the same measurement with prometheus taken out of the metrics pipeline (%s)", parts)),
		}, nil
	}
	return []results.Measure{
		results.New(6, "memory/rss_builds", fmt.Sprintf("RSS with %d builds", len(ids)), "B", "lower", rss).
			WithBaseline("no builds", []float64{float64(base.RSS)}).
			WithTarget("value", "<=", 256<<20).
			WithNote(fmt.Sprintf("median of 5 VmRSS readings %s after the builds started and %s (%s); %s; max_builds raised to %d",
				memorySettle, scrape, parts, tracked, 2*s.MemoryBuilds)),
		results.New(6, "memory/peak_rss_builds", fmt.Sprintf("peak RSS with %d builds (VmHWM)", len(ids)), "B", "lower", []float64{float64(last)}),
	}, nil
}

// checkTracked confirms the first and the last build are still known to the receiver and the
// status API (none was evicted), and says so for the note.
func (r *Runner) checkTracked(ctx context.Context, c *Collector, ids []string) (string, error) {
	for _, id := range []string{ids[0], ids[len(ids)-1]} {
		for _, u := range []string{URL(c.Ports.Events, "/v1/builds/"+id), URL(c.Ports.Status, "/v1/builds/"+id)} {
			code, body, err := get(ctx, u)
			if err != nil {
				return "", err
			}
			if code != 200 {
				return "", fmt.Errorf("GET %s: %d %s (builds evicted or not yet visible)", u, code, truncateBody(body))
			}
		}
	}
	return "first and last build present in the receiver and the status API", nil
}

func truncateBody(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
