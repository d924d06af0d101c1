// Package supervise runs the command that `buildmon phase` wraps: in a group of its own (a
// process group on Linux and macOS, a job object on Windows), with the build client's signals
// forwarded to that group, and stopped while the build is paused by a CRITICAL alert (SIGSTOP;
// on Windows every process of the job is suspended), continued when the pause clears.
//
// Monitoring must never hold a build: when the status cannot be read the group is continued,
// and a termination signal always reaches a running (continued) group.
package supervise

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"time"
)

// Pause is the pause state of the build as the status API reports it.
type Pause struct {
	Paused bool
	// Reason says why, e.g. "CRITICAL alert cpu_usage (97.5)"; empty when unknown.
	Reason string
}

// PollFunc reads the pause state of the build. It should return within its own timeout, and
// it tells the user about its failures itself: Run only acts on them.
type PollFunc func(ctx context.Context) (Pause, error)

// Options configure Run.
type Options struct {
	// Poll reads the pause state every Interval (and once at start). Nil disables pausing.
	Poll     PollFunc
	Interval time.Duration
	// MaxPause continues a paused command after this long even if the pause has not cleared;
	// zero waits for the pause to clear.
	MaxPause time.Duration
	// Signals delivers the signals to forward to the command's process group.
	Signals <-chan os.Signal
	// Logf writes a message for the user (one line, without the "buildmon: " prefix).
	Logf func(format string, args ...any)
}

// Exit codes for a command that could not be started, as a POSIX shell reports them.
const (
	ExitNotFound      = 127
	ExitCannotExecute = 126
)

// StartFailureCode is the exit code for a command that failed to start with err.
func StartFailureCode(err error) int {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return ExitNotFound
	}
	return ExitCannotExecute
}

func (o *Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

type pollResult struct {
	pause Pause
	err   error
}

// group is the supervised command's processes as one unit: what a pause stops and continues
// and what forwarded signals reach. Unix: the command's process group (SIGSTOP, SIGCONT, kill
// of the group); Windows: a job object holding the command and every process it starts
// (NtSuspendProcess and NtResumeProcess of each).
type group interface {
	stop() error
	cont() error
	// signal delivers a forwarded signal; a group gone already is no error.
	signal(sig os.Signal) error
	// String names the group in messages, e.g. "process group 42".
	String() string
}

// supervisor is what Run decides about one group: when to stop and continue it. Its methods
// are called from Run's loop only; the decisions hold on every OS, the group does the rest.
type supervisor struct {
	g           group
	opts        *Options
	now         func() time.Time
	stopped     bool      // the group was stopped and not yet continued
	stoppedAt   time.Time // when it was stopped
	ignorePause bool      // MaxPause ran out: pauses are ignored until this one clears
	terminating bool      // a termination signal was forwarded: never stop again
}

func (s *supervisor) apply(r pollResult) {
	if r.err != nil {
		if s.stopped {
			s.continueGroup()
			s.opts.logf("continuing %s: the build status cannot be read, and monitoring being down never holds a build", s.g)
		}
		return
	}
	if !r.pause.Paused {
		// A later pause is a new one, even after MaxPause let the last one pass.
		s.ignorePause = false
	}
	switch {
	case r.pause.Paused && !s.stopped && !s.ignorePause && !s.terminating:
		reason := r.pause.Reason
		if reason == "" {
			reason = "the collector"
		}
		if err := s.g.stop(); err != nil {
			// The group is gone (the command is exiting), or the OS refused: the build
			// runs on, and the next poll tries again.
			s.opts.logf("build paused by %s, but stopping %s failed: %v", reason, s.g, err)
			return
		}
		s.stopped, s.stoppedAt = true, s.now()
		s.opts.logf("build paused by %s; stopping %s", reason, s.g)
	case r.pause.Paused && s.stopped && s.opts.MaxPause > 0 && s.now().Sub(s.stoppedAt) >= s.opts.MaxPause:
		s.continueGroup()
		s.ignorePause = true
		s.opts.logf("build still paused after %s (max pause); continuing %s anyway", s.opts.MaxPause, s.g)
	case !r.pause.Paused && s.stopped:
		held := s.now().Sub(s.stoppedAt).Round(time.Second)
		s.continueGroup()
		s.opts.logf("pause cleared after %s; continuing %s", held, s.g)
	}
}

// forward sends sig to the group. A stopped group is continued as well, or it could not act
// on a termination signal.
func (s *supervisor) forward(sig os.Signal) {
	if !forwardable(sig) {
		return
	}
	if isTermination(sig) {
		s.terminating = true
		s.opts.logf("received %v; forwarding it to %s", sig, s.g)
	}
	if err := s.g.signal(sig); err != nil {
		s.opts.logf("forwarding %v to %s: %v", sig, s.g, err)
	}
	if s.stopped {
		s.continueGroup()
		s.opts.logf("continuing %s so that it can handle %v", s.g, sig)
	}
}

func (s *supervisor) continueGroup() {
	if !s.stopped {
		return
	}
	s.stopped = false
	_ = s.g.cont()
}

// loop supervises until waited is closed (the command exited): it polls the pause state every
// opts.Interval, one poll at a time, and forwards opts.Signals. The group is left continued.
func (s *supervisor) loop(ctx context.Context, waited <-chan struct{}) {
	opts := s.opts
	pollCtx, cancelPolls := context.WithCancel(ctx)
	defer cancelPolls()
	results := make(chan pollResult, 1)
	inFlight := false
	poll := func() {
		inFlight = true
		go func() {
			p, err := opts.Poll(pollCtx)
			results <- pollResult{pause: p, err: err}
		}()
	}
	var tick <-chan time.Time
	if opts.Poll != nil {
		interval := opts.Interval
		if interval <= 0 {
			interval = 2 * time.Second
		}
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		tick = ticker.C
		poll()
	}

	for {
		select {
		case <-waited:
			cancelPolls()
			if inFlight {
				<-results
			}
			// Processes left in the group (the command's own children) must not stay stopped.
			s.continueGroup()
			return
		case sig := <-opts.Signals:
			s.forward(sig)
		case <-tick:
			// One poll at a time: a slow status API must not pile up requests.
			if !inFlight && !s.terminating {
				poll()
			}
		case r := <-results:
			inFlight = false
			s.apply(r)
		}
	}
}
