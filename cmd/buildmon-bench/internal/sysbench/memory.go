package sysbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/results"
	"github.com/buildmon/buildmon/cmd/buildmon-load/loadgen"
)

// memoryLimit is the GOMEMLIMIT of the info run that shows what the README's advice gives
// with the default config: set it to about 80 % of what the process may use, here the 256 MiB
// of the target.
const memoryLimit = "200MiB"

// Memory measures item 6: RSS with many tracked builds (default 10,000), against the RSS of
// the same collector before the builds started; then the same with GOMEMLIMIT set (an info
// row), with the Prometheus exporter taken out of the metrics pipeline (an info row), which
// shows how much of the RSS is the exporter's copy of every series, and with the Prometheus
// exporter replaced by remote write into a loopback sink (the configuration the README
// recommends for thousands of builds).
func (r *Runner) Memory(ctx context.Context) ([]results.Measure, error) {
	ms, err := r.memoryWith(ctx, "memory", memoryOverrides(r.Settings), memoryDefault)
	if err != nil {
		return ms, err
	}
	limited, err := r.memoryWith(ctx, "memory-gomemlimit", memoryOverrides(r.Settings), memoryLimited, "GOMEMLIMIT="+memoryLimit)
	ms = append(ms, limited...)
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
		Override{Path: "service.pipelines.metrics.exporters", Value: kept}), memoryWithoutPrometheus)
	ms = append(ms, without...)
	if err != nil {
		return ms, err
	}
	sink := newRemoteWriteSink()
	defer sink.Close()
	rw, err := r.memoryWith(ctx, "memory-remote-write", append(memoryOverrides(r.Settings),
		Override{Path: "exporters.prometheus_remote_write", Value: remoteWriteExporter(sink.URL)},
		Override{Path: "service.pipelines.metrics.exporters", Value: append(kept, "prometheus_remote_write")}), memoryRemoteWrite)
	if err == nil {
		if n, b := sink.received(); n == 0 {
			err = errors.New("memory-remote-write: the sink received no remote-write request")
		} else {
			for i := range rw {
				rw[i] = rw[i].WithNote(rw[i].Note + fmt.Sprintf("; the sink received %d requests, %d KiB", n, b>>10))
			}
		}
	}
	return append(ms, rw...), err
}

// The four memory measurements.
const (
	memoryDefault = iota
	memoryLimited
	memoryWithoutPrometheus
	memoryRemoteWrite
)

// remoteWriteExporter is the prometheus_remote_write exporter as the README recommends it for
// thousands of builds: the build's identity as labels, no scope labels, no target_info.
func remoteWriteExporter(url string) map[string]any {
	return map[string]any{
		"endpoint": url,
		"resource_constant_labels": map[string]any{"included": []any{"host.name", "cicd.pipeline.name",
			"cicd.pipeline.run.id", "cicd.worker.id", "vcs.repository.url.full", "vcs.ref.head.name", "vcs.ref.head.revision"}},
		"disable_scope_info": true,
		"target_info":        map[string]any{"enabled": false},
	}
}

// remoteWriteSink is a loopback remote-write endpoint that reads and drops what it gets.
type remoteWriteSink struct {
	*httptest.Server
	requests, bytes atomic.Int64
}

func newRemoteWriteSink() *remoteWriteSink {
	s := &remoteWriteSink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n, _ := io.Copy(io.Discard, req.Body)
		s.requests.Add(1)
		s.bytes.Add(n)
		w.WriteHeader(http.StatusNoContent)
	}))
	return s
}

func (s *remoteWriteSink) received() (requests, bytes int64) {
	return s.requests.Load(), s.bytes.Load()
}

// memoryWith runs the memory measurement with overrides and env; kind says which of the four
// it is.
func (r *Runner) memoryWith(ctx context.Context, name string, overrides []Override, kind int, env ...string) ([]results.Measure, error) {
	s := r.Settings
	// The builds run for several report and checkpoint intervals before RSS is read, so the
	// steady state is measured.
	memorySettle := s.MemorySettle
	c, err := r.start(ctx, name, overrides, env...)
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
	switch kind {
	case memoryLimited:
		return []results.Measure{
			results.New(6, "memory/rss_builds_gomemlimit", fmt.Sprintf("RSS with %d builds, GOMEMLIMIT=%s", len(ids), memoryLimit), "B", "lower", rss).
				WithBaseline("no builds", []float64{float64(base.RSS)}).
				WithNote(fmt.Sprintf("the default measurement with GOMEMLIMIT=%s in the collector's environment, as the README advises (%s; %s; peak %.0f MiB)", memoryLimit, parts, scrape, mib(last))),
		}, nil
	case memoryWithoutPrometheus:
		return []results.Measure{
			results.New(6, "memory/rss_builds_without_prometheus", fmt.Sprintf("RSS with %d builds, no Prometheus exporter", len(ids)), "B", "lower", rss).
				WithBaseline("no builds", []float64{float64(base.RSS)}).
				WithNote(fmt.Sprintf("the same measurement with prometheus taken out of the metrics pipeline (%s)", parts)),
		}, nil
	case memoryRemoteWrite:
		return []results.Measure{
			results.New(6, "memory/rss_builds_remote_write", fmt.Sprintf("RSS with %d builds, remote write instead of /metrics", len(ids)), "B", "lower", rss).
				WithBaseline("no builds", []float64{float64(base.RSS)}).
				WithTarget("value", "<=", 256<<20).
				WithNote(fmt.Sprintf("the same measurement with prometheus replaced by prometheus_remote_write into a loopback sink, as the README recommends for thousands of builds (%s; peak %.0f MiB)", parts, mib(last))),
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
		for _, u := range []string{URL(c.Ports.Events, "/v1/registry/builds/"+id), URL(c.Ports.Status, "/v1/builds/"+id)} {
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
