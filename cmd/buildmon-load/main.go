// Command buildmon-load is a load generator for the buildmon events API. It starts a number of
// builds and then sends step_completed events to them, either one event per request or in
// NDJSON batches, from several keep-alive connections, or paced updates of every build at a
// fixed rate. Every run is bounded in time and in requests, and only loopback targets are
// accepted.
//
//	buildmon-load -target http://127.0.0.1:4320 -builds 100 -mode single -workers 8 -duration 10s
//	buildmon-load -mode batch -batch 1000
//	buildmon-load -mode paced -builds 1000 -hz 10 -duration 30s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/buildmon/buildmon/cmd/buildmon-load/loadgen"
)

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "buildmon-load:", err)
		os.Exit(1)
	}
}

type options struct {
	target      string
	token       string
	mode        string
	builds      int
	prefix      string
	steps       int
	workers     int
	batch       int
	duration    time.Duration
	maxRequests int64
	hz          float64
	jsonOut     bool
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("buildmon-load", flag.ContinueOnError)
	fs.StringVar(&o.target, "target", "http://127.0.0.1:4320", "base URL of the events API (loopback IP addresses only)")
	fs.StringVar(&o.token, "token", os.Getenv("BUILDMON_TOKEN"), "bearer token (default $BUILDMON_TOKEN)")
	fs.StringVar(&o.mode, "mode", "single", "single: one event per request; batch: NDJSON batches; paced: every build updated -hz times a second; start: only start the builds")
	fs.IntVar(&o.builds, "builds", 100, "builds to start before the run")
	fs.StringVar(&o.prefix, "prefix", "", "build id prefix (default load-<unix time>)")
	fs.IntVar(&o.steps, "steps", 1_000_000, "steps in the plan of each build")
	fs.IntVar(&o.workers, "workers", 8, "concurrent requests (keep-alive connections)")
	fs.IntVar(&o.batch, "batch", 1000, "events per NDJSON request in batch mode")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "upper bound of the run's time")
	fs.Int64Var(&o.maxRequests, "max-requests", 1_000_000, "upper bound of the run's requests (paced: ticks)")
	fs.Float64Var(&o.hz, "hz", 10, "updates per build per second in paced mode")
	fs.BoolVar(&o.jsonOut, "json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch o.mode {
	case "single", "batch", "paced", "start":
	default:
		return o, fmt.Errorf("-mode %q: want single, batch, paced or start", o.mode)
	}
	if o.builds < 1 {
		return o, fmt.Errorf("-builds %d: at least one build is needed", o.builds)
	}
	if o.prefix == "" {
		o.prefix = "load-" + strconv.FormatInt(time.Now().Unix(), 10)
	}
	return o, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	client, err := loadgen.NewClient(o.target, loadgen.ClientOptions{Conns: o.workers, Token: o.token})
	if err != nil {
		return err
	}
	defer client.Close()

	ids := loadgen.BuildIDs(o.prefix, o.builds)
	if err := client.StartBuilds(ctx, ids, loadgen.BuildPlan{Steps: o.steps}, 500); err != nil {
		return err
	}
	switch o.mode {
	case "start":
		_, err := fmt.Fprintf(out, "started %d builds %s..%s\n", len(ids), ids[0], ids[len(ids)-1])
		return err
	case "paced":
		res, err := client.Pace(ctx, loadgen.PaceOptions{Builds: ids, Hz: o.hz, Duration: o.duration, MaxTicks: int(min(o.maxRequests, 1<<31-1))})
		if res != nil {
			if perr := printPaced(out, o.jsonOut, res); perr != nil {
				return perr
			}
		}
		return err
	}
	batch := 1
	if o.mode == "batch" {
		batch = o.batch
	}
	res, err := client.Run(ctx, loadgen.RunOptions{
		Builds: ids, BatchSize: batch, Workers: o.workers, Duration: o.duration, MaxRequests: o.maxRequests,
	})
	if res != nil {
		if perr := printRun(out, o.jsonOut, o.mode, res); perr != nil {
			return perr
		}
	}
	return err
}

// runSummary is the JSON form of a Run result.
type runSummary struct {
	Mode              string  `json:"mode"`
	Requests          int64   `json:"requests"`
	Events            int64   `json:"events"`
	Status2xx         int64   `json:"status_2xx"`
	Status429         int64   `json:"status_429"`
	StatusOther       int64   `json:"status_other"`
	Errors            int64   `json:"errors"`
	Accepted          int64   `json:"accepted"`
	Duplicates        int64   `json:"duplicates"`
	ElapsedSeconds    float64 `json:"elapsed_seconds"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	EventsPerSecond   float64 `json:"events_per_second"`
	LatencyP50Ms      float64 `json:"latency_p50_ms"`
	LatencyP99Ms      float64 `json:"latency_p99_ms"`
	LatencyMaxMs      float64 `json:"latency_max_ms"`
	FirstError        string  `json:"first_error,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func printRun(out io.Writer, asJSON bool, mode string, r *loadgen.Result) error {
	s := runSummary{
		Mode: mode, Requests: r.Requests, Events: r.Events, Status2xx: r.OK, Status429: r.TooMany,
		StatusOther: r.Other, Errors: r.Errors, Accepted: r.Accepted, Duplicates: r.Duplicates,
		ElapsedSeconds: r.Elapsed.Seconds(), RequestsPerSecond: r.RequestsPerSecond(),
		EventsPerSecond: r.EventsPerSecond(), LatencyP50Ms: ms(r.Latency.Quantile(0.5)),
		LatencyP99Ms: ms(r.Latency.Quantile(0.99)), LatencyMaxMs: ms(r.Latency.Max()), FirstError: r.FirstError,
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	_, err := fmt.Fprintf(out, "%s: %d requests in %.2fs (%d 2xx, %d 429, %d other, %d errors)\n"+
		"  %.0f requests/s, %.0f events/s, %d accepted, %d duplicates\n"+
		"  latency p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
		mode, s.Requests, s.ElapsedSeconds, s.Status2xx, s.Status429, s.StatusOther, s.Errors,
		s.RequestsPerSecond, s.EventsPerSecond, s.Accepted, s.Duplicates,
		s.LatencyP50Ms, s.LatencyP99Ms, s.LatencyMaxMs)
	if err == nil && s.FirstError != "" {
		_, err = fmt.Fprintf(out, "  first error: %s\n", s.FirstError)
	}
	return err
}

func printPaced(out io.Writer, asJSON bool, r *loadgen.PaceResult) error {
	var events, failed int64
	var lat loadgen.Histogram
	for _, t := range r.Ticks {
		events += t.Events
		failed += t.Failed
		lat.Record(t.Latency)
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{
			"mode": "paced", "ticks": len(r.Ticks), "late_ticks": r.Late, "events": events, "failed_events": failed,
			"tick_latency_p50_ms": ms(lat.Quantile(0.5)), "tick_latency_p99_ms": ms(lat.Quantile(0.99)),
			"first_error": r.FirstError,
		})
	}
	_, err := fmt.Fprintf(out, "paced: %d ticks (%d late), %d events accepted, %d failed; tick latency p50 %.3f ms, p99 %.3f ms\n",
		len(r.Ticks), r.Late, events, failed, ms(lat.Quantile(0.5)), ms(lat.Quantile(0.99)))
	if err == nil && r.FirstError != "" {
		_, err = fmt.Fprintf(out, "  first error: %s\n", r.FirstError)
	}
	return err
}
