package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Hard limits of one run, whatever the options say.
const (
	MaxDuration = time.Hour
	MaxRequests = 100_000_000
	MaxWorkers  = 1024
	MaxBatch    = 100_000
)

// RunOptions configures Run. Duration and MaxRequests are both required: a run ends at
// whichever bound it reaches first.
type RunOptions struct {
	Builds      []string      // builds the step_completed events go to, round robin
	Phase       string        // phase of the steps; default "BUILD"
	BatchSize   int           // events per request: 1 sends application/json, more NDJSON
	Workers     int           // concurrent requests, each on its own keep-alive connection
	Duration    time.Duration // no request starts after this
	MaxRequests int64         // no more requests than this
}

func (o *RunOptions) validate() error {
	var errs []error
	if err := validateIDs(o.Builds); err != nil {
		errs = append(errs, err)
	}
	if o.Phase == "" {
		o.Phase = "BUILD"
	}
	if !namePattern.MatchString(o.Phase) {
		errs = append(errs, fmt.Errorf("phase %q is not a valid phase name", o.Phase))
	}
	if o.BatchSize < 1 || o.BatchSize > MaxBatch {
		errs = append(errs, fmt.Errorf("batch size %d must be between 1 and %d", o.BatchSize, MaxBatch))
	}
	if o.Workers < 1 || o.Workers > MaxWorkers {
		errs = append(errs, fmt.Errorf("workers %d must be between 1 and %d", o.Workers, MaxWorkers))
	}
	if o.Duration <= 0 || o.Duration > MaxDuration {
		errs = append(errs, fmt.Errorf("duration %s must be positive and at most %s", o.Duration, MaxDuration))
	}
	if o.MaxRequests <= 0 || o.MaxRequests > MaxRequests {
		errs = append(errs, fmt.Errorf("max requests %d must be between 1 and %d", o.MaxRequests, MaxRequests))
	}
	return errors.Join(errs...)
}

// Result counts what a run sent and what came back.
type Result struct {
	Requests   int64 // requests that got an answer or failed
	Events     int64 // events in requests answered 2xx
	OK         int64 // requests answered 2xx
	Accepted   int64 // sum of "accepted" in 2xx answers
	Duplicates int64 // sum of "duplicates" in 2xx answers
	TooMany    int64 // requests answered 429
	Other      int64 // requests answered anything else
	Errors     int64 // requests that got no answer
	Elapsed    time.Duration
	Latency    Histogram // of every answered request
	// Windows holds events in 2xx answers per second of the run (by completion time).
	Windows []int64
	// FirstError describes the first answer other than 2xx/429 or transport error.
	FirstError string
}

// RequestsPerSecond is the rate of 2xx answers over the run.
func (r *Result) RequestsPerSecond() float64 { return rate(r.OK, r.Elapsed) }

// EventsPerSecond is the rate of events in 2xx answers over the run.
func (r *Result) EventsPerSecond() float64 { return rate(r.Events, r.Elapsed) }

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// FullWindows returns the per-second event counts without the last, partial, second.
func (r *Result) FullWindows() []int64 {
	n := int(r.Elapsed / time.Second)
	if n > len(r.Windows) {
		n = len(r.Windows)
	}
	return r.Windows[:n]
}

type workerResult struct {
	Result
	windows []int64
}

// Run sends step_completed events to opts.Builds until opts.Duration has passed or
// opts.MaxRequests requests were made, and waits for every answer. The builds must have been
// started (StartBuilds). A canceled ctx ends the run early.
func (c *Client) Run(ctx context.Context, opts RunOptions) (*Result, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	contentType, bodies := contentJSON, singleBodies(opts.Builds, opts.Phase)
	if opts.BatchSize > 1 {
		contentType, bodies = contentNDJSON, batchBodies(opts.Builds, opts.Phase, opts.BatchSize)
	}
	requests := make([][]byte, len(bodies))
	for i, b := range bodies {
		requests[i] = rawRequest(c.target, contentType, c.token, b)
	}

	var (
		claimed atomic.Int64
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	results := make([]workerResult, opts.Workers)
	start := time.Now()
	timer := time.AfterFunc(opts.Duration, func() { stop.Store(true) })
	defer timer.Stop()
	for w := range results {
		wg.Add(1)
		go func(res *workerResult) {
			defer wg.Done()
			conn := newRawConn(c.target, c.timeout)
			defer conn.close()
			for !stop.Load() && ctx.Err() == nil {
				n := claimed.Add(1)
				if n > opts.MaxRequests {
					return
				}
				c.one(ctx, conn, requests[(n-1)%int64(len(requests))], opts.BatchSize, start, res)
			}
		}(&results[w])
	}
	wg.Wait()
	total := &Result{Elapsed: time.Since(start)}
	for i := range results {
		total.merge(&results[i])
	}
	return total, ctx.Err()
}

func (c *Client) one(ctx context.Context, conn *rawConn, req []byte, events int, start time.Time, res *workerResult) {
	t0 := time.Now()
	r, err := conn.do(req)
	done := time.Now()
	res.Requests++
	if err != nil {
		res.Errors++
		if res.FirstError == "" {
			res.FirstError = err.Error()
		}
		return
	}
	res.Latency.Record(done.Sub(t0))
	switch {
	case r.status/100 == 2:
		res.OK++
		res.Events += int64(events)
		res.Accepted += r.accepted
		res.Duplicates += r.duplicates
		sec := int(done.Sub(start) / time.Second)
		for len(res.windows) <= sec {
			res.windows = append(res.windows, 0)
		}
		res.windows[sec] += int64(events)
	case r.status == 429:
		res.TooMany++
		// A short pause keeps a rate-limited worker from spinning; the run measures how much
		// gets through, not how fast refusals come back.
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	default:
		res.Other++
		if res.FirstError == "" {
			res.FirstError = (&StatusError{Status: r.status, Body: string(r.body)}).Error()
		}
	}
}

func (r *Result) merge(w *workerResult) {
	r.Requests += w.Requests
	r.Events += w.Events
	r.OK += w.OK
	r.Accepted += w.Accepted
	r.Duplicates += w.Duplicates
	r.TooMany += w.TooMany
	r.Other += w.Other
	r.Errors += w.Errors
	r.Latency.Merge(&w.Latency)
	for len(r.Windows) < len(w.windows) {
		r.Windows = append(r.Windows, 0)
	}
	for i, n := range w.windows {
		r.Windows[i] += n
	}
	if r.FirstError == "" {
		r.FirstError = w.FirstError
	}
}

// singleBodies is one single-event body per build.
func singleBodies(builds []string, phase string) [][]byte {
	bodies := make([][]byte, len(builds))
	for i, id := range builds {
		bodies[i] = appendStepCompleted(nil, id, phase, time.Time{})
	}
	return bodies
}

// batchBodies are NDJSON bodies of size events each, going round robin over the builds. Sent
// in turn, the bodies give every build the same number of events per cycle (as long as the
// cycle, len(builds)/gcd(len(builds), size) bodies, is at most 64 long).
func batchBodies(builds []string, phase string, size int) [][]byte {
	lines := singleBodies(builds, phase)
	n := min(64, len(builds)/gcd(len(builds), size))
	bodies := make([][]byte, n)
	next := 0
	for b := range bodies {
		batch := make([][]byte, size)
		for i := range batch {
			batch[i] = lines[next]
			next = (next + 1) % len(lines)
		}
		bodies[b] = ndjson(batch)
	}
	return bodies
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
