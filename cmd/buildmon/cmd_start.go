package main

import (
	"fmt"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/ci"
	"github.com/buildmon/buildmon/cmd/buildmon/internal/plan"
	"github.com/buildmon/buildmon/cmd/buildmon/internal/printable"
	"github.com/buildmon/buildmon/internal/wire"
)

func cmdStart(a *app, o *options, args []string) int {
	c := lookupCommand("start")
	fs := a.flagSet(c, o)
	pipeline := a.getenv(envPipeline)
	var phases string
	var weights []string
	fs.StringVar(&pipeline, "pipeline", pipeline, "pipeline name; default from CI, else the working directory's name (env "+envPipeline+")")
	fs.StringVar(&phases, "phases", "", "phase plan NAME[:STEPS|:m1|m2],…; default INIT,SETUP,BUILD,TEST,CLEANUP with unknown steps")
	fs.Var(listFlag{&weights}, "weight", "weight of a phase in overall progress, PHASE=W (repeatable, or comma-separated)")
	positional, code, ok := a.parse(fs, o, args)
	if !ok {
		return code
	}
	if len(positional) > 0 {
		return a.usageErrorf(fs, "start takes no arguments, got %q", positional)
	}

	var phasePlan []wire.PhasePlan
	if phases != "" {
		var err error
		if phasePlan, err = plan.ParsePhases(phases); err != nil {
			return a.usageErrorf(fs, "--phases: %v", err)
		}
	}
	if len(weights) > 0 {
		w, err := plan.ParseWeights(weights)
		if err != nil {
			return a.usageErrorf(fs, "--weight: %v", err)
		}
		if phasePlan == nil {
			phasePlan = plan.Default()
		}
		if err := plan.ApplyWeights(phasePlan, w); err != nil {
			return a.usageErrorf(fs, "--weight: %v", err)
		}
	}

	info := ci.Detect(a.getenv)
	host := a.host(o)
	id := a.buildID(o, info)
	if id == "" {
		id = a.newLocalBuildID(host)
		a.warnf("no build id in the environment; this build is %s (export %s=%s for the commands that follow)", id, envBuildID, id)
	}
	if pipeline == "" {
		// What CI names describes the build; a control character in it is sent as a visible
		// escape rather than losing the build. Names typed by the user are sent as typed.
		pipeline = printable.String(info.Pipeline)
	}
	if pipeline == "" {
		pipeline = a.defaultPipeline()
	}
	s := a.newSession(o)
	_ = s.post(wire.Event{
		Type:     wire.EventBuildStarted,
		BuildID:  id,
		Pipeline: pipeline,
		Attributes: &wire.Attributes{
			Repository: printable.String(info.Repository),
			Branch:     printable.String(info.Branch),
			Revision:   printable.String(info.Revision),
			Worker:     printable.String(info.Worker),
			Host:       host,
		},
		Phases: phasePlan,
	})
	// Printed whatever the collector said, so that `export BUILDMON_BUILD_ID=$(buildmon start)`
	// works without it.
	fmt.Fprintln(a.stdout, id)
	return s.exitCode()
}
