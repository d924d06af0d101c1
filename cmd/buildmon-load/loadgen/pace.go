package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// PaceOptions configures Pace.
type PaceOptions struct {
	Builds   []string      // every build gets one step_completed per tick
	Phase    string        // default "BUILD"
	Hz       float64       // ticks per second
	Duration time.Duration // no tick starts after this
	MaxTicks int           // no more ticks than this
	// Chunk splits a tick's events into NDJSON requests of at most this many events, sent in
	// parallel; default 1000.
	Chunk int
}

// Tick is one round of updates: every build's step number Seq+1, sent at Sent (which is also
// the events' time field).
type Tick struct {
	Seq     int
	Sent    time.Time
	Latency time.Duration // until the last answer of the tick
	Events  int64         // events in 2xx answers
	Failed  int64         // events in requests not answered 2xx
}

// PaceResult is what Pace sent.
type PaceResult struct {
	Ticks []Tick
	Late  int // ticks that started more than one period late because the previous was slow
	// FirstError describes the first request not answered 2xx.
	FirstError string
}

// Pace sends, Hz times a second, one step_completed event for each build, stamped with the
// time the tick started; every build therefore has completed Seq+1 steps after tick Seq. It
// stops after opts.Duration or opts.MaxTicks ticks, whichever comes first.
func (c *Client) Pace(ctx context.Context, opts PaceOptions) (*PaceResult, error) {
	if opts.Phase == "" {
		opts.Phase = "BUILD"
	}
	if opts.Chunk <= 0 {
		opts.Chunk = 1000
	}
	var errs []error
	if err := validateIDs(opts.Builds); err != nil {
		errs = append(errs, err)
	}
	if !namePattern.MatchString(opts.Phase) {
		errs = append(errs, fmt.Errorf("phase %q is not a valid phase name", opts.Phase))
	}
	if opts.Hz <= 0 || opts.Hz > 1000 {
		errs = append(errs, fmt.Errorf("hz %g must be above 0 and at most 1000", opts.Hz))
	}
	if opts.Duration <= 0 || opts.Duration > MaxDuration {
		errs = append(errs, fmt.Errorf("duration %s must be positive and at most %s", opts.Duration, MaxDuration))
	}
	if opts.MaxTicks <= 0 {
		errs = append(errs, fmt.Errorf("max ticks %d must be positive", opts.MaxTicks))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	period := time.Duration(float64(time.Second) / opts.Hz)
	res := &PaceResult{}
	start := time.Now()
	for seq := 0; seq < opts.MaxTicks; seq++ {
		due := start.Add(time.Duration(seq) * period)
		if due.Sub(start) >= opts.Duration {
			break
		}
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(wait):
			}
		} else if -wait > period {
			res.Late++
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		res.Ticks = append(res.Ticks, c.tick(ctx, seq, opts, res))
	}
	return res, ctx.Err()
}

func (c *Client) tick(ctx context.Context, seq int, opts PaceOptions, res *PaceResult) Tick {
	t := Tick{Seq: seq, Sent: time.Now()}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for lo := 0; lo < len(opts.Builds); lo += opts.Chunk {
		hi := min(lo+opts.Chunk, len(opts.Builds))
		lines := make([][]byte, 0, hi-lo)
		for _, id := range opts.Builds[lo:hi] {
			lines = append(lines, appendStepCompleted(nil, id, opts.Phase, t.Sent))
		}
		wg.Add(1)
		go func(n int64, body []byte) {
			defer wg.Done()
			r, err := c.post(ctx, contentNDJSON, body)
			mu.Lock()
			defer mu.Unlock()
			if err == nil && r.status/100 == 2 {
				t.Events += n
				return
			}
			t.Failed += n
			if res.FirstError == "" {
				if err != nil {
					res.FirstError = err.Error()
				} else {
					res.FirstError = (&StatusError{Status: r.status, Body: string(r.body)}).Error()
				}
			}
		}(int64(len(lines)), ndjson(lines))
	}
	wg.Wait()
	t.Latency = time.Since(t.Sent)
	return t
}
