package main

import (
	"flag"
	"strings"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/ci"
	"github.com/buildmon/buildmon/cmd/buildmon/internal/collector"
	"github.com/buildmon/buildmon/internal/wire"
)

func cmdStep(a *app, o *options, args []string) int {
	fs := a.flagSet(lookupCommand("step"), o)
	var name string
	count := 1
	fs.StringVar(&name, "name", "", "name of the step")
	fs.IntVar(&count, "count", count, "number of steps completed")
	positional, code, ok := a.parse(fs, o, args)
	if !ok {
		return code
	}
	if count < 1 {
		return a.usageErrorf(fs, "--count must be at least 1, got %d", count)
	}
	phase, code, ok := a.phaseArg(fs, positional, 0)
	if !ok {
		return code
	}
	return a.report(o, wire.Event{Type: wire.EventStepCompleted, Phase: phase, Step: name, Count: collector.StepCount(count)})
}

func cmdMilestone(a *app, o *options, args []string) int {
	fs := a.flagSet(lookupCommand("milestone"), o)
	positional, code, ok := a.parse(fs, o, args)
	if !ok {
		return code
	}
	if len(positional) == 0 {
		return a.usageErrorf(fs, "milestone needs the milestone's name")
	}
	name := positional[len(positional)-1]
	phase, code, ok := a.phaseArg(fs, positional[:len(positional)-1], 0)
	if !ok {
		return code
	}
	return a.report(o, wire.Event{Type: wire.EventMilestoneReached, Phase: phase, Step: name})
}

func cmdSkip(a *app, o *options, args []string) int {
	fs := a.flagSet(lookupCommand("skip"), o)
	positional, code, ok := a.parse(fs, o, args)
	if !ok {
		return code
	}
	if len(positional) != 1 {
		return a.usageErrorf(fs, "skip needs exactly one phase, got %q", positional)
	}
	return a.report(o, wire.Event{Type: wire.EventPhaseSkipped, Phase: positional[0]})
}

// resultAliases maps what CI systems call a job's outcome to the results of build_finished:
// GitHub's job.status (success, failure, cancelled) and GitLab's CI_JOB_STATUS (success,
// failed, canceled).
var resultAliases = map[string]string{
	"success":      "success",
	"succeeded":    "success",
	"passed":       "success",
	"failure":      "failure",
	"failed":       "failure",
	"error":        "error",
	"errored":      "error",
	"timeout":      "timeout",
	"timed_out":    "timeout",
	"timedout":     "timeout",
	"cancellation": "cancellation",
	"cancelled":    "cancellation",
	"canceled":     "cancellation",
}

func cmdFinish(a *app, o *options, args []string) int {
	fs := a.flagSet(lookupCommand("finish"), o)
	result := "success"
	var message string
	fs.StringVar(&result, "result", result, "success, failure, error, timeout or cancellation (also failed, cancelled, canceled)")
	fs.StringVar(&message, "message", "", "why the build ended so")
	positional, code, ok := a.parse(fs, o, args)
	if !ok {
		return code
	}
	if len(positional) > 0 {
		return a.usageErrorf(fs, "finish takes no arguments, got %q", positional)
	}
	r, known := resultAliases[strings.ToLower(strings.TrimSpace(result))]
	if !known {
		return a.usageErrorf(fs, "--result %q: want success, failure, error, timeout or cancellation", result)
	}
	return a.report(o, wire.Event{Type: wire.EventBuildFinished, Result: r, Message: message})
}

// phaseArg is the phase named at positional[i], or $BUILDMON_PHASE inside `buildmon phase`.
func (a *app) phaseArg(fs *flag.FlagSet, positional []string, i int) (string, int, bool) {
	switch {
	case len(positional) > i+1:
		a.warnf("unexpected arguments %q; run `buildmon help %s`", positional[i+1:], strings.TrimPrefix(fs.Name(), "buildmon "))
		return "", exitUsage, false
	case len(positional) == i+1:
		return positional[i], 0, true
	}
	if p := strings.TrimSpace(a.getenv(envPhase)); p != "" {
		return p, 0, true
	}
	a.warnf("no phase given, and not inside `buildmon phase` ($%s is not set); run `buildmon help %s`", envPhase, strings.TrimPrefix(fs.Name(), "buildmon "))
	return "", exitUsage, false
}

// report sends one event of the build named by the options or the CI environment.
func (a *app) report(o *options, ev wire.Event) int {
	s := a.newSession(o)
	ev.BuildID = a.buildID(o, ci.Detect(a.getenv))
	if ev.BuildID == "" {
		return s.noBuildID()
	}
	_ = s.post(ev)
	return s.exitCode()
}
