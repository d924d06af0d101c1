//go:build unix

package supervise

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Run starts cmd in a new process group and supervises it until it exits. It returns the
// command's exit code (128+N when it was killed by signal N) and an error only when the command
// could not be started, in which case the code is 126 or 127 as a shell would report.
func Run(ctx context.Context, cmd *exec.Cmd, opts Options) (int, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Its own group lets SIGSTOP reach the whole command tree without stopping buildmon.
	cmd.SysProcAttr.Setpgid = true
	setParentDeathSignal(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return StartFailureCode(err), err
	}
	s := &supervisor{pgid: cmd.Process.Pid, opts: &opts, now: time.Now}

	waited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit status is read from cmd.ProcessState
		close(waited)
	}()

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
			return exitCode(cmd.ProcessState), nil
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

// supervisor is the state of one supervised process group; it is owned by Run's loop.
type supervisor struct {
	pgid        int
	opts        *Options
	now         func() time.Time
	stopped     bool      // the group was sent SIGSTOP and not yet SIGCONT
	stoppedAt   time.Time // when it was stopped
	ignorePause bool      // MaxPause ran out: pauses are ignored for the rest of the phase
	terminating bool      // a termination signal was forwarded: never stop again
}

func (s *supervisor) apply(r pollResult) {
	if r.err != nil {
		if s.stopped {
			s.continueGroup()
			s.opts.logf("continuing process group %d: the build status cannot be read, and monitoring being down never holds a build", s.pgid)
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
		if err := syscall.Kill(-s.pgid, syscall.SIGSTOP); err != nil {
			// The group is gone (the command is exiting); there is nothing to stop.
			return
		}
		s.stopped, s.stoppedAt = true, s.now()
		s.opts.logf("build paused by %s; stopping process group %d", reason, s.pgid)
	case r.pause.Paused && s.stopped && s.opts.MaxPause > 0 && s.now().Sub(s.stoppedAt) >= s.opts.MaxPause:
		s.continueGroup()
		s.ignorePause = true
		s.opts.logf("build still paused after %s (max pause); continuing process group %d anyway", s.opts.MaxPause, s.pgid)
	case !r.pause.Paused && s.stopped:
		held := s.now().Sub(s.stoppedAt).Round(time.Second)
		s.continueGroup()
		s.opts.logf("pause cleared after %s; continuing process group %d", held, s.pgid)
	}
}

// forward sends sig to the group. A stopped group is continued as well, or it could not act
// on a termination signal.
func (s *supervisor) forward(sig os.Signal) {
	ssig, ok := sig.(syscall.Signal)
	if !ok {
		return
	}
	switch ssig {
	case syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT:
		s.terminating = true
		s.opts.logf("received %v; forwarding it to process group %d", ssig, s.pgid)
	}
	if err := syscall.Kill(-s.pgid, ssig); err != nil && !errors.Is(err, syscall.ESRCH) {
		s.opts.logf("forwarding %v to process group %d: %v", ssig, s.pgid, err)
	}
	if s.stopped {
		s.continueGroup()
		s.opts.logf("continuing process group %d so that it can handle %v", s.pgid, ssig)
	}
}

func (s *supervisor) continueGroup() {
	if !s.stopped {
		return
	}
	s.stopped = false
	_ = syscall.Kill(-s.pgid, syscall.SIGCONT)
}

// exitCode follows the shell convention: the exit status, or 128+N for death by signal N.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
