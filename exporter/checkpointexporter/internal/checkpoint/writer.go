package checkpoint

import (
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
)

// Writer decides when to flush (write reports and a checkpoint): every Interval, and soon
// after Request (a phase or build ended), but never more often than MinGap; requests that
// arrive while a flush is waiting or running are coalesced into the next one. One goroutine
// runs every flush, so flushes never overlap.
type Writer struct {
	clock    clock.Clock
	interval time.Duration
	minGap   time.Duration
	flush    func() error
	logger   *zap.Logger

	requests chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	started  bool

	// failing is true while flushes fail; owned by the writer goroutine (and by Stop after
	// it ended).
	failing bool
}

// NewWriter returns a Writer that calls flush. The flush function returns an error when the
// state could not be written; it is retried at the next interval or request.
func NewWriter(c clock.Clock, interval, minGap time.Duration, flush func() error, logger *zap.Logger) *Writer {
	return &Writer{
		clock: c, interval: interval, minGap: minGap, flush: flush, logger: logger,
		requests: make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// Start starts the writer goroutine. Start and Stop are called from one goroutine.
func (w *Writer) Start() {
	w.started = true
	go w.run()
}

// Request asks for a flush soon. It never blocks.
func (w *Writer) Request() {
	select {
	case w.requests <- struct{}{}:
	default:
	}
}

// Stop stops the goroutine and runs a final flush; it returns the final flush's error.
func (w *Writer) Stop() error {
	var err error
	w.stopOnce.Do(func() {
		if w.started {
			close(w.stop)
			<-w.done
		}
		err = w.do()
	})
	return err
}

func (w *Writer) run() {
	defer close(w.done)
	ticker := w.clock.NewTicker(w.interval)
	defer ticker.Stop()
	var last time.Time
	var gap clock.Timer
	var gapC <-chan time.Time
	stopGap := func() {
		if gap != nil {
			gap.Stop()
			gap, gapC = nil, nil
		}
	}
	defer stopGap()
	for {
		select {
		case <-w.stop:
			return
		case <-ticker.C():
			stopGap()
			_ = w.do()
			last = w.clock.Now()
		case <-w.requests:
			if gap != nil {
				continue // a flush is already scheduled
			}
			wait := w.minGap - w.clock.Now().Sub(last)
			if wait <= 0 {
				_ = w.do()
				last = w.clock.Now()
				continue
			}
			gap = w.clock.NewTimer(wait)
			gapC = gap.C()
		case <-gapC:
			gap, gapC = nil, nil
			_ = w.do()
			last = w.clock.Now()
		}
	}
}

// do runs one flush and logs the start and the end of a streak of failures once each.
func (w *Writer) do() error {
	err := w.flush()
	switch {
	case err != nil && !w.failing:
		w.failing = true
		w.logger.Error("checkpoint write failed; the state stays in memory and is written again when the fault clears", zap.Error(err))
	case err != nil:
		w.logger.Debug("checkpoint write still failing", zap.Error(err))
	case w.failing:
		w.failing = false
		w.logger.Info("checkpoint writes recovered")
	}
	return err
}
