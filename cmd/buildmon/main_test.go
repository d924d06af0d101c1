package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/collector"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/testcounter"
	"github.com/buildmon/buildmon/internal/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestStartPostsBuildStarted(t *testing.T) {
	f := newFakeCollector(t)
	env := baseEnv(f.URL, f.URL,
		"GITHUB_RUN_ID=777", "GITHUB_RUN_ATTEMPT=1", "GITHUB_REPOSITORY=octo/app", "GITHUB_WORKFLOW=CI",
		"GITHUB_SERVER_URL=https://github.com", "GITHUB_REF_NAME=main", "GITHUB_SHA=abc123", "RUNNER_NAME=runner-1",
		"BUILDMON_TOKEN=tok")
	code, stdout, stderr := runCLI(env, "start", "--phases", "INIT:3,SETUP,BUILD:10,TEST:unit|e2e,CLEANUP", "--weight", "BUILD=0.5", "--weight", "TEST=0.3")
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stderr)
	assert.Equal(t, "github-777-1\n", stdout)

	evs := f.received()
	require.Len(t, evs, 1)
	ev := evs[0]
	assert.Len(t, ev.ID, 32)
	half, tenth := 0.5, 0.3
	ev.ID = ""
	assert.Equal(t, wire.Event{
		Type: "build_started", BuildID: "github-777-1", Time: "2025-06-01T10:00:00Z", Pipeline: "octo/app/CI",
		Attributes: &wire.Attributes{Repository: "https://github.com/octo/app", Branch: "main", Revision: "abc123", Worker: "runner-1", Host: "build-host-1"},
		Phases: []wire.PhasePlan{
			{Name: "INIT", Steps: 3}, {Name: "SETUP"}, {Name: "BUILD", Steps: 10, Weight: &half},
			{Name: "TEST", Milestones: []string{"unit", "e2e"}, Weight: &tenth}, {Name: "CLEANUP"},
		},
	}, ev)
}

func TestStartDefaults(t *testing.T) {
	f := newFakeCollector(t)
	// No CI, no build id: one is made up and printed, the pipeline is the directory's name,
	// and without --phases the plan is left to the collector's default.
	code, stdout, stderr := runCLI(baseEnv(f.URL, f.URL), "start")
	require.Equal(t, 0, code, stderr)
	id := strings.TrimSpace(stdout)
	assert.Regexp(t, `^local-build-host-1-20250601T100000-[0-9a-f]{6}$`, id)
	assert.Contains(t, stderr, "export BUILDMON_BUILD_ID="+id)
	evs := f.received()
	require.Len(t, evs, 1)
	assert.Equal(t, id, evs[0].BuildID)
	assert.Equal(t, "my-project", evs[0].Pipeline)
	assert.NotContains(t, f.raw[0], "phases")

	// --weight without --phases fills in the five default phases; --build-id and --pipeline win.
	code, stdout, stderr = runCLI(baseEnv(f.URL, f.URL, "CI_PIPELINE_ID=5", "CI_PROJECT_PATH=g/app"),
		"--build-id", "given-1", "start", "--pipeline", "mine", "--weight", "BUILD=0.9")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "given-1\n", stdout)
	ev := f.received()[1]
	assert.Equal(t, "mine", ev.Pipeline)
	require.Len(t, ev.Phases, 5)
	assert.Nil(t, ev.Phases[0].Weight)
	require.NotNil(t, ev.Phases[2].Weight)
	assert.InDelta(t, 0.9, *ev.Phases[2].Weight, 0)
}

func TestStartUsageErrors(t *testing.T) {
	f := newFakeCollector(t)
	env := baseEnv(f.URL, f.URL, "BUILDMON_BUILD_ID=b-1")
	for _, args := range [][]string{
		{"start", "--phases", "BUILD,BUILD"},
		{"start", "--phases", "BUILD", "--weight", "TEST=1"},
		{"start", "--weight", "BUILD"},
		{"start", "extra"},
		{"start", "--no-such-flag"},
		{"start", "--timeout", "0s"},
		{"start", "--events-url", "127.0.0.1:4320"},
		{"nonsense"},
		{},
	} {
		code, _, stderr := runCLI(env, args...)
		assert.Equal(t, exitUsage, code, "%q: %s", args, stderr)
		assert.NotEmpty(t, stderr)
	}
	assert.Empty(t, f.received(), "nothing is sent after a usage error")
}

func TestPhasePassesExitCodeThrough(t *testing.T) {
	f := newFakeCollector(t)
	env := baseEnv(f.URL, f.URL, "BUILDMON_BUILD_ID=b-1")
	code, stdout, stderr := runCLI(env, "phase", "BUILD", "--", "sh", "-c", "echo building; exit 3")
	assert.Equal(t, 3, code, stderr)
	assert.Equal(t, "building\n", stdout)
	evs := f.received()
	require.Len(t, evs, 2, stderr)
	assert.Equal(t, []string{"phase_started", "phase_failed"}, []string{evs[0].Type, evs[1].Type})
	assert.Equal(t, "BUILD", evs[0].Phase)
	assert.Equal(t, "b-1", evs[1].BuildID)
	assert.Equal(t, "exit code 3", evs[1].Message)
	assert.NotEqual(t, evs[0].ID, evs[1].ID)

	code, _, stderr = runCLI(env, "phase", "TEST", "--", "true")
	assert.Equal(t, 0, code, stderr)
	assert.Equal(t, []string{"phase_started", "phase_failed", "phase_started", "phase_completed"}, f.types())
}

func TestPhaseArguments(t *testing.T) {
	f := newFakeCollector(t)
	env := baseEnv(f.URL, f.URL, "BUILDMON_BUILD_ID=b-1")
	// Without "--" the command starts at the first non-flag argument after PHASE, and its own
	// flags stay its own.
	code, stdout, stderr := runCLI(env, "phase", "BUILD", "--timeout", "1s", "sh", "-c", "echo $0 -x", "arg0")
	assert.Equal(t, 0, code, stderr)
	assert.Equal(t, "arg0 -x\n", stdout)
	// Flags may also come before the phase.
	code, _, stderr = runCLI(env, "phase", "--strict", "BUILD", "--", "sh", "-c", "exit 4")
	assert.Equal(t, 4, code, stderr)

	// A command that cannot be started fails the phase as a shell would.
	code, _, stderr = runCLI(env, "phase", "BUILD", "--", filepath.Join(t.TempDir(), "missing"))
	assert.Equal(t, 127, code)
	assert.Contains(t, stderr, "buildmon: cannot run")
	evs := f.received()
	last := evs[len(evs)-1]
	assert.Equal(t, "phase_failed", last.Type)
	assert.True(t, strings.HasPrefix(last.Message, "exit code 127 (cannot run"), last.Message)

	n := len(f.received())
	// A mistake in buildmon's own flags still runs the command after "--".
	code, stdout, stderr = runCLI(env, "phase", "BUILD", "--bogus", "--", "sh", "-c", "echo ran; exit 6")
	assert.Equal(t, 6, code)
	assert.Equal(t, "ran\n", stdout)
	assert.Contains(t, stderr, "running the command without monitoring")
	assert.Len(t, f.received(), n, "nothing is reported for an unmonitored run")

	for _, args := range [][]string{{"phase"}, {"phase", "BUILD"}, {"phase", "BUILD", "--"}, {"phase", "BUILD", "x", "--", "true"}} {
		code, _, stderr := runCLI(env, args...)
		assert.Equal(t, exitUsage, code, "%q: %s", args, stderr)
	}
}

func TestPhaseSteps(t *testing.T) {
	f := newFakeCollector(t)
	env := baseEnv(f.URL, f.URL, "BUILDMON_BUILD_ID=b-1")
	code, _, stderr := runCLI(env, "phase", "BUILD", "--steps", "3", "--", "true")
	assert.Equal(t, 0, code, stderr)
	assert.Equal(t, []string{"phase_started", "step_completed", "phase_completed"}, f.types())
	evs := f.received()
	assert.Equal(t, "BUILD", evs[1].Phase)
	assert.Equal(t, collector.StepCount(3), evs[1].Count)

	// A failed command's steps are not done.
	code, _, stderr = runCLI(env, "phase", "TEST", "--steps", "2", "--", "sh", "-c", "exit 1")
	assert.Equal(t, 1, code, stderr)
	assert.Equal(t, []string{"phase_started", "step_completed", "phase_completed", "phase_started", "phase_failed"}, f.types())

	// A negative count is dropped with a warning; the phase is still monitored.
	code, _, stderr = runCLI(env, "phase", "CLEANUP", "--steps", "-1", "--", "true")
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "--steps must not be negative")
	assert.Equal(t, []string{"phase_started", "phase_completed"}, f.types()[5:])
}

func TestNestedCommandsUseThePhaseEnvironment(t *testing.T) {
	f := newFakeCollector(t)
	self, mode := selfCLI(t)
	env := baseEnv(f.URL, f.URL, mode)
	// The build id comes from a flag only; the nested commands find it, the URLs and the phase
	// in the environment buildmon gives the wrapped command.
	script := `"$0" step --count 2 && "$0" milestone unit && "$0" step BUILD --name compile`
	code, _, stderr := runCLI(env, "--build-id", "b-9", "phase", "TEST", "--", "sh", "-c", script, self)
	require.Equal(t, 0, code, stderr)
	evs := f.received()
	require.Len(t, evs, 5, stderr)
	assert.Equal(t, []string{"phase_started", "step_completed", "milestone_reached", "step_completed", "phase_completed"}, f.types())
	for _, ev := range evs {
		assert.Equal(t, "b-9", ev.BuildID)
	}
	assert.Equal(t, wire.Event{Type: "step_completed", BuildID: "b-9", Phase: "TEST", Count: collector.StepCount(2)}, strip(evs[1]))
	assert.Equal(t, wire.Event{Type: "milestone_reached", BuildID: "b-9", Phase: "TEST", Step: "unit"}, strip(evs[2]))
	assert.Equal(t, wire.Event{Type: "step_completed", BuildID: "b-9", Phase: "BUILD", Step: "compile", Count: collector.StepCount(1)}, strip(evs[3]))
}

// strip drops the fields a nested process fills in from its own clock and randomness.
func strip(ev wire.Event) wire.Event {
	ev.ID, ev.Time = "", ""
	return ev
}

func TestReportingCommands(t *testing.T) {
	f := newFakeCollector(t)
	env := baseEnv(f.URL, f.URL, "CI_PIPELINE_ID=31", "CI_PROJECT_PATH=g/app")
	for _, args := range [][]string{
		{"step", "BUILD"},
		{"step", "BUILD", "--name", "link", "--count", "3"},
		{"milestone", "TEST", "e2e"},
		{"skip", "CLEANUP"},
		{"finish"},
		{"finish", "--result", "canceled", "--message", "superseded"},
		{"finish", "--result", "FAILED"},
	} {
		code, stdout, stderr := runCLI(env, args...)
		assert.Equal(t, 0, code, "%q: %s", args, stderr)
		assert.Empty(t, stdout+stderr, "%q", args)
	}
	var got []wire.Event
	for _, ev := range f.received() {
		assert.Len(t, ev.ID, 32)
		assert.Equal(t, "2025-06-01T10:00:00Z", ev.Time)
		got = append(got, strip(ev))
	}
	id := "gitlab-31"
	assert.Equal(t, []wire.Event{
		{Type: "step_completed", BuildID: id, Phase: "BUILD", Count: collector.StepCount(1)},
		{Type: "step_completed", BuildID: id, Phase: "BUILD", Step: "link", Count: collector.StepCount(3)},
		{Type: "milestone_reached", BuildID: id, Phase: "TEST", Step: "e2e"},
		{Type: "phase_skipped", BuildID: id, Phase: "CLEANUP"},
		{Type: "build_finished", BuildID: id, Result: "success"},
		{Type: "build_finished", BuildID: id, Result: "cancellation", Message: "superseded"},
		{Type: "build_finished", BuildID: id, Result: "failure"},
	}, got)

	for _, args := range [][]string{
		{"step"}, // no phase and not inside `buildmon phase`
		{"step", "BUILD", "--count", "0"},
		{"step", "A", "B"},
		{"milestone"},
		{"skip"},
		{"finish", "--result", "maybe"},
	} {
		code, _, stderr := runCLI(env, args...)
		assert.Equal(t, exitUsage, code, "%q: %s", args, stderr)
	}
}

func TestNoBuildID(t *testing.T) {
	f := newFakeCollector(t)
	env := baseEnv(f.URL, f.URL, "GITHUB_RUN_ID=", "CI_PIPELINE_ID=")
	code, _, stderr := runCLI(env, "step", "BUILD")
	assert.Equal(t, 0, code)
	assert.Contains(t, stderr, "buildmon: no build id")
	code, _, _ = runCLI(env, "--strict", "step", "BUILD")
	assert.Equal(t, exitCollector, code)
	code, stdout, stderr := runCLI(env, "phase", "BUILD", "--", "sh", "-c", "echo ran; exit 2")
	assert.Equal(t, 2, code)
	assert.Equal(t, "ran\n", stdout)
	assert.Equal(t, 1, strings.Count(stderr, "no build id"), stderr)
	assert.Empty(t, f.received())
}

func TestUnreachableCollector(t *testing.T) {
	url := closedURL(t)
	env := baseEnv(url, url, "BUILDMON_BUILD_ID=b-1", "BUILDMON_TIMEOUT=500ms")
	counterFile := filepath.Join(t.TempDir(), "ran")
	code, stdout, stderr := runCLI(env, "phase", "BUILD", "--", "sh", "-c", `echo ran > "$0"; sleep 0.2; echo out; exit 7`, counterFile)
	assert.Equal(t, 7, code, "the exit code is the command's")
	assert.Equal(t, "out\n", stdout)
	assert.FileExists(t, counterFile, "the command ran")
	assert.Equal(t, 1, strings.Count(stderr, "buildmon:"), "one warning, no more:\n%s", stderr)
	assert.Contains(t, stderr, "buildmon: collector unreachable at "+url+"; continuing without monitoring")

	for _, args := range [][]string{{"start"}, {"step", "BUILD"}, {"milestone", "TEST", "unit"}, {"skip", "TEST"}, {"finish"}} {
		code, _, stderr := runCLI(env, args...)
		assert.Equal(t, 0, code, "%q", args)
		assert.Equal(t, 1, strings.Count(stderr, "collector unreachable at"), "%q: %s", args, stderr)
		code, _, _ = runCLI(env, append([]string{"--strict"}, args...)...)
		assert.Equal(t, exitCollector, code, "--strict %q", args)
	}
	code, _, _ = runCLI(env, "start")
	assert.Equal(t, 0, code)
	code, stdout, _ = runCLI(env, "start")
	assert.Equal(t, 0, code)
	assert.Equal(t, "b-1\n", stdout, "start prints the build id even when the collector is down")

	code, _, stderr = runCLI(env, "status")
	assert.Equal(t, 0, code)
	assert.Contains(t, stderr, "buildmon: status API unreachable at "+url)
}

func TestRejectedEvents(t *testing.T) {
	f := newFakeCollector(t)
	env := baseEnv(f.URL, f.URL, "BUILDMON_BUILD_ID=b-1")
	f.setReject("build_started", 400, `{"error":"steps must not be negative","field":"phases[0].steps"}`)
	code, stdout, stderr := runCLI(env, "start")
	assert.Equal(t, 0, code)
	assert.Equal(t, "b-1\n", stdout)
	assert.Equal(t, "buildmon: collector rejected build_started for build b-1: 400 Bad Request: steps must not be negative (field phases[0].steps)\n", stderr)
	code, _, _ = runCLI(env, "--strict", "start")
	assert.Equal(t, exitCollector, code)

	// After phase_started is refused, the end of the phase is not sent to be refused again.
	f.setReject("phase_started", 404, `{"error":"unknown build \"b-1\""}`)
	code, _, stderr = runCLI(env, "phase", "BUILD", "--", "true")
	assert.Equal(t, 0, code)
	assert.Equal(t, 1, strings.Count(stderr, "buildmon:"), stderr)
	assert.Contains(t, stderr, `404 Not Found: unknown build "b-1"`)
	assert.Empty(t, f.received())

	f.setReject("step_completed", 401, `{"error":"unauthorized"}`)
	code, _, stderr = runCLI(env, "step", "BUILD")
	assert.Equal(t, 0, code)
	assert.Contains(t, stderr, "check --token / BUILDMON_TOKEN")
}

// A 403 of the collector's access rules says which permission the client lacks, as whom, on
// which pipeline, and that the token is not the problem.
func TestForbiddenNamesThePermission(t *testing.T) {
	f := newFakeCollector(t)
	env := baseEnv(f.URL, f.URL, "BUILDMON_BUILD_ID=b-1")
	f.setReject("build_started", 403, `{"error":"forbidden: cn:runner-a lacks events:write on pipeline \"team-b/app\" on host \"h1\"","permission":"events:write","subject":"cn:runner-a","pipeline":"team-b/app","host":"h1"}`)
	code, _, stderr := runCLI(env, "start")
	assert.Equal(t, 0, code)
	assert.Equal(t, "buildmon: collector rejected build_started for build b-1: 403 Forbidden: subject cn:runner-a lacks permission events:write on pipeline team-b/app (host h1)\n"+
		"buildmon: the collector knows this client but its access rules do not grant events:write here; ask its operator for a rule (events.access.rules)\n", stderr)
	code, _, _ = runCLI(env, "--strict", "start")
	assert.Equal(t, exitCollector, code)

	// A 403 without the access fields (a proxy in front, say) still points at the token.
	f.setReject("build_started", 403, `{"error":"forbidden"}`)
	_, _, stderr = runCLI(env, "start")
	assert.Contains(t, stderr, "403 Forbidden: forbidden\n")
	assert.Contains(t, stderr, "check --token / BUILDMON_TOKEN")
}

func TestEnvironmentMistakesAreIgnored(t *testing.T) {
	f := newFakeCollector(t)
	env := baseEnv(f.URL, f.URL, "BUILDMON_BUILD_ID=b/1 x", "BUILDMON_TIMEOUT=soon", "BUILDMON_STRICT=perhaps")
	code, _, stderr := runCLI(env, "step", "BUILD")
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, `ignoring BUILDMON_TIMEOUT="soon"`)
	assert.Contains(t, stderr, `ignoring BUILDMON_STRICT="perhaps"`)
	assert.Contains(t, stderr, `using "b-1-x"`)
	require.Len(t, f.received(), 1)
	assert.Equal(t, "b-1-x", f.received()[0].BuildID)
}

func TestStatusCommand(t *testing.T) {
	f := newFakeCollector(t)
	f.setStatus("b-1", `{"id":"b-1","pipeline":"octo/app/CI","host":"build-host-1","state":"running","phase":"BUILD",
		"progress":0.63,"eta_seconds":95,"paused":true,
		"alerts":[{"rule":"cpu_saturated","level":"CRITICAL","state":"firing","value":98.6}],
		"phases":[{"name":"SETUP","state":"completed","steps_total":2,"steps_completed":2,"progress":1,"duration_seconds":12},
		          {"name":"BUILD","state":"running","steps_total":10,"steps_completed":5,"progress":0.5,"duration_seconds":61}],
		"updated_at":"2025-06-01T09:59:58Z"}`)
	env := baseEnv(f.URL, f.URL, "BUILDMON_BUILD_ID=b-1")
	code, stdout, stderr := runCLI(env, "status")
	require.Equal(t, 0, code, stderr)
	golden := filepath.Join("testdata", "status.golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(stdout), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), stdout)

	code, stdout, _ = runCLI(env, "status", "--json")
	require.Equal(t, 0, code)
	assert.True(t, strings.HasPrefix(stdout, `{"id":"b-1","pipeline":"octo/app/CI"`), stdout)
	assert.Equal(t, 1, strings.Count(stdout, "\n"))

	code, _, stderr = runCLI(env, "status", "other")
	assert.Equal(t, 0, code)
	assert.Contains(t, stderr, "build other is not known to the status API")
	code, _, _ = runCLI(env, "--strict", "status", "other")
	assert.Equal(t, exitCollector, code)
}

func TestStatusWatchEndsWhenTheBuildFinishes(t *testing.T) {
	f := newFakeCollector(t)
	env := baseEnv(f.URL, f.URL, "BUILDMON_BUILD_ID=b-w")
	cli := newCLI(env)
	done := make(chan int, 1)
	go func() { done <- cli.run("status", "--watch") }()
	sigs := <-cli.sigs
	testcounter.Eventually(t, "the not-known message", func() bool { return strings.Contains(cli.stderr.String(), "not known") })
	f.setStatus("b-w", statusJSON("b-w", false, ""))
	testcounter.Eventually(t, "a frame", func() bool { return strings.Contains(cli.stdout.String(), "state running") })
	f.setStatus("b-w", `{"id":"b-w","state":"finished","result":"success","progress":1}`)
	select {
	case code := <-done:
		assert.Equal(t, 0, code)
	case <-time.After(20 * time.Second):
		sigs <- os.Interrupt
		t.Fatal("status --watch did not end with the build")
	}
	assert.Contains(t, cli.stdout.String(), "state finished (success)")
	assert.Equal(t, 1, strings.Count(cli.stderr.String(), "not known"), "a repeated failure is reported once")
	assert.NotContains(t, cli.stdout.String(), clearScreen, "no terminal control codes into a pipe")

	// An interrupt ends watching a build that does not finish.
	cli = newCLI(env)
	f.setStatus("b-w", statusJSON("b-w", false, ""))
	go func() { done <- cli.run("status", "--watch") }()
	sigs = <-cli.sigs
	testcounter.Eventually(t, "a frame", func() bool { return strings.Contains(cli.stdout.String(), "state running") })
	sigs <- os.Interrupt
	assert.Equal(t, 0, <-done)
}

func TestHelpAndVersion(t *testing.T) {
	code, stdout, _ := runCLI(nil, "help")
	assert.Equal(t, 0, code)
	for _, c := range commands {
		assert.Contains(t, stdout, "  "+c.name+" ")
	}
	code, stdout, _ = runCLI(nil, "help", "step")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "usage: buildmon step [PHASE]")
	assert.Contains(t, stdout, "-count int")
	code, stdout, _ = runCLI(nil, "version")
	assert.Equal(t, 0, code)
	assert.Equal(t, "buildmon dev\n", stdout)
	code, _, _ = runCLI(nil, "step", "-h")
	assert.Equal(t, 0, code)
}

func TestTruncate(t *testing.T) {
	assert.Equal(t, "abc", truncate("abc", 5))
	assert.Equal(t, "ab", truncate("abc", 2))
	assert.Equal(t, "a", truncate("aé", 2), "a character is not split")
	f := newFakeCollector(t)
	code, _, stderr := runCLI(baseEnv(f.URL, f.URL, "BUILDMON_BUILD_ID=b-1"), "finish", "--message", strings.Repeat("x", 5000))
	require.Equal(t, 0, code, stderr)
	assert.Len(t, f.received()[0].Message, maxMessageLen)
}

// TestStatusAsksTheGateways: with --gateways (or BUILDMON_GATEWAY_URLS) status asks each
// gateway of a fleet and shows the build from the one that has it, saying which; a build no
// gateway has, or gateways that cannot be reached, are reported.
func TestStatusAsksTheGateways(t *testing.T) {
	gw1, gw2 := newFakeCollector(t), newFakeCollector(t)
	gw2.setStatus("b-1", statusJSON("b-1", false, "[]"))
	local := newFakeCollector(t) // the agent: does not know the build
	env := baseEnv(local.URL, local.URL, "BUILDMON_BUILD_ID=b-1")

	code, stdout, stderr := runCLI(env, "status", "--json", "--gateways", gw1.URL+", "+gw2.URL+"/")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "build b-1 is at gateway "+gw2.URL)
	assert.True(t, strings.HasPrefix(stdout, `{"id":"b-1"`), stdout)

	code, stdout, stderr = runCLI(append(env, "BUILDMON_GATEWAY_URLS="+gw1.URL+","+gw2.URL), "status", "--json")
	require.Equal(t, 0, code, stderr)
	assert.True(t, strings.HasPrefix(stdout, `{"id":"b-1"`), stdout)

	code, _, stderr = runCLI(env, "--strict", "status", "other", "--gateways", gw1.URL+","+gw2.URL)
	assert.Equal(t, exitCollector, code)
	assert.Contains(t, stderr, "build other is not known to any gateway of "+gw1.URL+", "+gw2.URL)

	code, _, stderr = runCLI(env, "status", "other", "--gateways", "http://127.0.0.1:1,"+gw1.URL)
	assert.Equal(t, 0, code)
	assert.Contains(t, stderr, "unreachable: http://127.0.0.1:1")

	code, _, stderr = runCLI(env, "status", "--gateways", "ftp://x")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, `--gateways: "ftp://x" must start with http:// or https://`)
}
