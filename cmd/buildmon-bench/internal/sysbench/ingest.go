package sysbench

import (
	"context"
	"fmt"
	"time"

	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/procfs"
	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/results"
	"github.com/buildmon/buildmon/cmd/buildmon-load/loadgen"
)

// ingestRun is one load generator run and the collector's CPU during it.
type ingestRun struct {
	res *loadgen.Result
	cpu time.Duration // collector CPU during the run; 0 for the floor server
}

// Ingestion measures item 3: single-event requests/s and batched events/s over loopback with
// keep-alive, against the collector (rate limits and max_builds raised) and against the floor
// server in this process as the baseline.
func (r *Runner) Ingestion(ctx context.Context) ([]results.Measure, error) {
	c, err := r.start(ctx, "ingest", ingestOverrides(r.Settings))
	if err != nil {
		return nil, err
	}
	single, batch, err := r.ingestAgainst(ctx, URL(c.Ports.Events, ""), c)
	r.stop(c)
	if err != nil {
		return nil, err
	}
	floor, err := startFloorServer()
	if err != nil {
		return nil, err
	}
	floorSingle, floorBatch, err := r.ingestAgainst(ctx, floor.URL(), nil)
	floor.Close()
	if err != nil {
		return nil, err
	}

	s := r.Settings
	note := func(run ingestRun, what string) string {
		res := run.res
		n := fmt.Sprintf("%s: %d requests (%d 2xx, %d 429, %d other, %d errors), %d events accepted in %s",
			what, res.Requests, res.OK, res.TooMany, res.Other, res.Errors, res.Accepted, res.Elapsed.Round(time.Millisecond))
		if run.cpu > 0 && res.Events > 0 {
			n += fmt.Sprintf("; collector CPU %.2f s = %.1f µs per event", run.cpu.Seconds(), float64(run.cpu.Microseconds())/float64(res.Events))
		}
		if res.FirstError != "" {
			n += "; first error: " + res.FirstError
		}
		return n
	}
	return []results.Measure{
		results.New(3, "ingest/single_requests_per_second", "single-event requests/s", "req/s", "higher", windows(single.res, 1)).
			WithBaseline("floor server", windows(floorSingle.res, 1)).
			WithTarget("value", ">=", 20000).
			WithNote(note(single, fmt.Sprintf("%d workers, %d builds", s.Workers, s.IngestBuilds)) + ". Median of 1-s windows; baseline = same load against a no-op HTTP server in the bench process"),
		latencyMeasure(3, "ingest/single_latency_p50", "single-event latency p50", single.res, floorSingle.res, 0.5),
		latencyMeasure(3, "ingest/single_latency_p99", "single-event latency p99", single.res, floorSingle.res, 0.99),
		results.New(3, "ingest/batch_events_per_second", fmt.Sprintf("batched events/s (NDJSON x%d)", s.BatchSize), "events/s", "higher", windows(batch.res, 1)).
			WithBaseline("floor server", windows(floorBatch.res, 1)).
			WithTarget("value", ">=", 500000).
			WithNote(note(batch, fmt.Sprintf("%d workers, batches of %d", s.BatchWorkers, s.BatchSize))),
		latencyMeasure(3, "ingest/batch_latency_p50", "batch request latency p50", batch.res, floorBatch.res, 0.5),
		latencyMeasure(3, "ingest/batch_latency_p99", "batch request latency p99", batch.res, floorBatch.res, 0.99),
	}, nil
}

func latencyMeasure(item int, key, name string, res, floor *loadgen.Result, q float64) results.Measure {
	return results.New(item, key, name, "ns", "lower", []float64{float64(res.Latency.Quantile(q))}).
		WithBaseline("floor server", []float64{float64(floor.Latency.Quantile(q))})
}

// windows are the per-second rates of a run (events per second; requests when divided by the
// batch size), without the partial last second. A run shorter than a second gives its average.
func windows(res *loadgen.Result, perRequest int) []float64 {
	full := res.FullWindows()
	if len(full) == 0 {
		return []float64{res.EventsPerSecond() / float64(perRequest)}
	}
	out := make([]float64, len(full))
	for i, n := range full {
		out[i] = float64(n) / float64(perRequest)
	}
	return out
}

// ingestAgainst starts the builds at target and runs the single-event and then the batch load;
// c, when not nil, is sampled for CPU around each run.
func (r *Runner) ingestAgainst(ctx context.Context, target string, c *Collector) (single, batch ingestRun, err error) {
	s := r.Settings
	client, err := loadgen.NewClient(target, loadgen.ClientOptions{Conns: max(s.Workers, s.BatchWorkers)})
	if err != nil {
		return single, batch, err
	}
	defer client.Close()
	ids := loadgen.BuildIDs(fmt.Sprintf("ingest-%d", time.Now().UnixNano()), s.IngestBuilds)
	// 1,000,000 steps is the receiver's maximum per phase; 10 s of 600,000 events/s over 100
	// builds stays far below it.
	if err := client.StartBuilds(ctx, ids, loadgen.BuildPlan{Pipeline: "bench-ingest", Steps: 1_000_000}, 500); err != nil {
		return single, batch, err
	}
	what := "floor server"
	if c != nil {
		what = "collector"
	}
	run := func(opts loadgen.RunOptions, kind string) (ingestRun, error) {
		var before procfs.Sample
		if c != nil {
			if before, err = c.Sample(); err != nil {
				return ingestRun{}, err
			}
		}
		var prof *profiler
		if c != nil {
			prof = r.cpuProfile(ctx, c, "ingest-"+kind, opts.Duration-time.Second)
		}
		res, err := client.Run(ctx, opts)
		if prof != nil {
			prof.wait()
		}
		if err != nil {
			return ingestRun{}, err
		}
		out := ingestRun{res: res}
		if c != nil {
			after, err := c.Sample()
			if err != nil {
				return ingestRun{}, err
			}
			out.cpu = after.CPU - before.CPU
		}
		r.logf("ingest %s %s: %.0f req/s, %.0f events/s, p50 %s, p99 %s (%d 2xx, %d 429, %d other, %d errors)",
			what, kind, res.RequestsPerSecond(), res.EventsPerSecond(), res.Latency.Quantile(0.5), res.Latency.Quantile(0.99),
			res.OK, res.TooMany, res.Other, res.Errors)
		return out, nil
	}
	// The bound on requests only guards against a runaway; the duration ends the run.
	single, err = run(loadgen.RunOptions{Builds: ids, BatchSize: 1, Workers: s.Workers, Duration: s.IngestDuration, MaxRequests: 50_000_000}, "single")
	if err != nil {
		return single, batch, err
	}
	batch, err = run(loadgen.RunOptions{Builds: ids, BatchSize: s.BatchSize, Workers: s.BatchWorkers, Duration: s.IngestDuration, MaxRequests: 1_000_000}, "batch")
	return single, batch, err
}
