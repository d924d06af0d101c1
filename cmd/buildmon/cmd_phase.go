package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/ci"
	"github.com/buildmon/buildmon/cmd/buildmon/internal/collector"
	"github.com/buildmon/buildmon/cmd/buildmon/internal/supervise"
	"github.com/buildmon/buildmon/internal/wire"
)

// waitDelay bounds how long buildmon waits for the command's output after it exited, when
// that output goes through a pipe that a leftover background process keeps open.
const waitDelay = 2 * time.Second

func cmdPhase(a *app, o *options, args []string) int {
	fs := a.flagSet(lookupCommand("phase"), o)
	var steps int
	fs.IntVar(&steps, "steps", 0, "report N completed steps when the command succeeds, for commands that do not run `buildmon step` themselves")
	// Everything after the first "--" is the command, whatever it looks like. Without "--",
	// the command starts at the first argument after PHASE that is not a flag.
	var command []string
	head := args
	if i := slices.Index(args, "--"); i >= 0 {
		head, command = args[:i], args[i+1:]
	}
	var positional []string
	var code int
	var ok bool
	if command != nil {
		positional, code, ok = a.parse(fs, o, head)
	} else {
		positional, code, ok = a.parseUntilCommand(fs, o, args)
	}
	if !ok {
		if len(command) > 0 && code == exitUsage {
			// A mistake in buildmon's own arguments must not keep the build from running.
			a.warnf("running the command without monitoring")
			return a.runUnmonitored(command)
		}
		return code
	}
	if len(positional) == 0 {
		return a.usageErrorf(fs, "phase needs the phase's name and a command")
	}
	name := positional[0]
	if command == nil {
		command = positional[1:]
	} else if len(positional) > 1 {
		return a.usageErrorf(fs, "unexpected arguments %q before --", positional[1:])
	}
	if len(command) == 0 {
		return a.usageErrorf(fs, "phase %s needs a command after --", name)
	}
	if steps < 0 {
		// The command is known here, so it runs; only the step count is dropped.
		a.warnf("--steps must not be negative, got %d; not reporting steps", steps)
		steps = 0
	}

	s := a.newSession(o)
	id := a.buildID(o, ci.Detect(a.getenv))
	monitored := id != ""
	if !monitored {
		s.noBuildID()
	}
	startRejected := false
	if monitored {
		err := s.post(wire.Event{Type: wire.EventPhaseStarted, BuildID: id, Phase: name})
		var he *collector.HTTPError
		var ie *collector.InvalidEventError
		startRejected = errors.As(err, &ie) ||
			(errors.As(err, &he) && he.StatusCode >= 400 && he.StatusCode < 500 && he.StatusCode != http.StatusTooManyRequests)
	}

	cmd := a.command(command, o, id, name)
	opts := supervise.Options{
		Interval: o.pollInterval,
		MaxPause: o.maxPause,
		Logf:     a.warnf,
	}
	if monitored {
		opts.Poll = a.pausePoller(s, id)
	}
	sigs := make(chan os.Signal, 4)
	stop := a.notify(sigs, forwardedSignals...)
	opts.Signals = sigs
	exit, err := supervise.Run(context.Background(), cmd, opts)
	stop()

	end := wire.Event{Type: wire.EventPhaseCompleted, BuildID: id, Phase: name}
	switch {
	case err != nil:
		a.warnf("cannot run %s: %v", command[0], err)
		end.Type, end.Message = wire.EventPhaseFailed, fmt.Sprintf("exit code %d (cannot run %s: %v)", exit, command[0], err)
	case exit != 0:
		end.Type, end.Message = wire.EventPhaseFailed, fmt.Sprintf("exit code %d", exit)
	}
	// After a 4xx for phase_started, or a phase name that is not sent at all, the end would be
	// refused the same way; don't repeat it.
	if monitored && !startRejected {
		// The events API takes a phase's step total only in the plan of build_started, so
		// --steps reports the steps as done once the command has succeeded.
		if steps > 0 && end.Type == wire.EventPhaseCompleted {
			_ = s.post(wire.Event{Type: wire.EventStepCompleted, BuildID: id, Phase: name, Count: collector.StepCount(steps)})
		}
		_ = s.post(end)
	}
	return exit
}

// command builds the wrapped command. It inherits buildmon's standard streams and environment,
// plus the build id, URLs and phase, so that a `buildmon step` inside it needs no flags.
func (a *app) command(argv []string, o *options, buildID, phase string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.stdin, a.stdout, a.stderr
	cmd.WaitDelay = waitDelay
	extra := map[string]string{
		envEventsURL: o.eventsURL,
		envStatusURL: o.statusURL,
		envTimeout:   o.timeout.String(),
		envPhase:     phase,
	}
	if buildID != "" {
		extra[envBuildID] = buildID
	}
	if o.token != "" {
		extra[envToken] = o.token
	}
	env := make([]string, 0, len(a.env)+len(extra))
	for _, kv := range a.env {
		k, _, _ := strings.Cut(kv, "=")
		if _, replaced := extra[k]; !replaced {
			env = append(env, kv)
		}
	}
	for _, k := range []string{envEventsURL, envStatusURL, envTimeout, envPhase, envBuildID, envToken} {
		if v, ok := extra[k]; ok {
			env = append(env, k+"="+v)
		}
	}
	cmd.Env = env
	return cmd
}

// runUnmonitored runs argv with signal forwarding and nothing else.
func (a *app) runUnmonitored(argv []string) int {
	sigs := make(chan os.Signal, 4)
	stop := a.notify(sigs, forwardedSignals...)
	defer stop()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.stdin, a.stdout, a.stderr
	cmd.Env = a.env
	cmd.WaitDelay = waitDelay
	exit, err := supervise.Run(context.Background(), cmd, supervise.Options{Signals: sigs, Logf: a.warnf})
	if err != nil {
		a.warnf("cannot run %s: %v", argv[0], err)
	}
	return exit
}

// pausePoller reads the build's pause state from the status API. A build the status API does
// not know (yet) is not paused.
func (a *app) pausePoller(s *session, id string) supervise.PollFunc {
	warned := false
	return func(ctx context.Context) (supervise.Pause, error) {
		st, err := s.client.GetStatus(ctx, id)
		switch {
		case errors.Is(err, collector.ErrNotFound):
			return supervise.Pause{}, nil
		case err != nil && ctx.Err() != nil:
			// The command ended while the poll ran; nothing to report.
			return supervise.Pause{}, err
		case err != nil:
			// Once, and not at all when the collector was already reported unreachable.
			if !warned && !s.warnedUnreachable {
				warned = true
				a.warnf("cannot read the build status at %s (%v); the command keeps running", s.client.StatusURL(), unwrapUnreachable(err))
			}
			return supervise.Pause{}, err
		}
		return supervise.Pause{Paused: st.Paused, Reason: collector.PauseReason(st)}, nil
	}
}

// unwrapUnreachable drops the URL from an UnreachableError whose URL the message names anyway.
func unwrapUnreachable(err error) error {
	var ue *collector.UnreachableError
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
