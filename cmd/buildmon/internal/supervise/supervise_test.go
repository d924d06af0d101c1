//go:build unix

package supervise

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/testcounter"
)

// pauseSwitch is a PollFunc the test flips.
type pauseSwitch struct {
	mu     sync.Mutex
	paused bool
	err    error
	polls  int
}

func (p *pauseSwitch) set(paused bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused, p.err = paused, err
}

func (p *pauseSwitch) poll(context.Context) (Pause, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.polls++
	return Pause{Paused: p.paused, Reason: "CRITICAL alert cpu_usage (99.5)"}, p.err
}

type runResult struct {
	code int
	err  error
}

func start(t *testing.T, ctx context.Context, mode string, args []string, opts Options) <-chan runResult {
	t.Helper()
	done := make(chan runResult, 1)
	go func() {
		code, err := Run(ctx, helperCommand(mode, args...), opts)
		done <- runResult{code, err}
	}()
	return done
}

func wait(t *testing.T, done <-chan runResult) runResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("supervised command did not exit")
		return runResult{}
	}
}

func TestRunPassesExitCode(t *testing.T) {
	code, err := Run(context.Background(), helperCommand("exit", "3"), Options{})
	require.NoError(t, err)
	assert.Equal(t, 3, code)
	code, err = Run(context.Background(), helperCommand("exit", "0"), Options{})
	require.NoError(t, err)
	assert.Equal(t, 0, code)
}

func TestRunStartFailure(t *testing.T) {
	cmd := helperCommand("exit", "0")
	cmd.Path = filepath.Join(t.TempDir(), "no-such-command")
	code, err := Run(context.Background(), cmd, Options{})
	require.Error(t, err)
	assert.Equal(t, ExitNotFound, code)

	notExec := filepath.Join(t.TempDir(), "not-executable")
	require.NoError(t, os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o600))
	cmd = helperCommand("exit", "0")
	cmd.Path = notExec
	code, err = Run(context.Background(), cmd, Options{})
	require.Error(t, err)
	assert.Equal(t, ExitCannotExecute, code)
}

func TestRunForwardsSignals(t *testing.T) {
	counter := filepath.Join(t.TempDir(), "counter")
	sigs := make(chan os.Signal, 1)
	log := &logRecorder{}
	done := start(t, context.Background(), "spawn-counter", []string{counter}, Options{Signals: sigs, Logf: log.logf})
	testcounter.Eventually(t, "the counter to start", func() bool { return testcounter.Lines(counter) > 0 })
	sigs <- syscall.SIGTERM
	r := wait(t, done)
	require.NoError(t, r.err)
	assert.Equal(t, 128+int(syscall.SIGTERM), r.code)
	// The grandchild got the signal too: the counter stops for good.
	assert.True(t, testcounter.Stalls(counter), "grandchild still counting after SIGTERM to the group")
	assert.Contains(t, log.String(), "received terminated; forwarding it to process group")
}

func TestPauseStopsAndContinuesTheGroup(t *testing.T) {
	counter := filepath.Join(t.TempDir(), "counter")
	sw := &pauseSwitch{}
	sigs := make(chan os.Signal, 1)
	log := &logRecorder{}
	done := start(t, context.Background(), "spawn-counter", []string{counter}, Options{
		Poll: sw.poll, Interval: 20 * time.Millisecond, Signals: sigs, Logf: log.logf,
	})
	testcounter.Eventually(t, "the counter to start", func() bool { return testcounter.Lines(counter) > 0 })
	require.True(t, testcounter.Grows(counter))

	sw.set(true, nil)
	testcounter.Eventually(t, "the pause message", func() bool { return strings.Contains(log.String(), "stopping process group") })
	assert.Contains(t, log.String(), "build paused by CRITICAL alert cpu_usage (99.5); stopping process group")
	assert.True(t, testcounter.Stalls(counter), "the counting grandchild keeps running while the build is paused")

	sw.set(false, nil)
	testcounter.Eventually(t, "the resume message", func() bool { return strings.Contains(log.String(), "pause cleared after") })
	assert.True(t, testcounter.Grows(counter), "the command was not continued after the pause cleared")

	sigs <- syscall.SIGINT
	r := wait(t, done)
	assert.Equal(t, 128+int(syscall.SIGINT), r.code)
}

func TestSignalWhilePausedContinuesTheGroup(t *testing.T) {
	counter := filepath.Join(t.TempDir(), "counter")
	sw := &pauseSwitch{paused: true}
	sigs := make(chan os.Signal, 1)
	log := &logRecorder{}
	done := start(t, context.Background(), "spawn-counter", []string{counter}, Options{
		Poll: sw.poll, Interval: 20 * time.Millisecond, Signals: sigs, Logf: log.logf,
	})
	testcounter.Eventually(t, "the pause message", func() bool { return strings.Contains(log.String(), "stopping process group") })
	// A stopped process keeps SIGTERM pending until continued; without SIGCONT this would hang.
	sigs <- syscall.SIGTERM
	r := wait(t, done)
	assert.Equal(t, 128+int(syscall.SIGTERM), r.code)
	assert.Contains(t, log.String(), "so that it can handle terminated")
	assert.True(t, testcounter.Stalls(counter))
}

func TestStatusFailureContinuesAPausedGroup(t *testing.T) {
	counter := filepath.Join(t.TempDir(), "counter")
	sw := &pauseSwitch{}
	sigs := make(chan os.Signal, 1)
	log := &logRecorder{}
	done := start(t, context.Background(), "spawn-counter", []string{counter}, Options{
		Poll: sw.poll, Interval: 20 * time.Millisecond, Signals: sigs, Logf: log.logf,
	})
	testcounter.Eventually(t, "the counter to start", func() bool { return testcounter.Lines(counter) > 0 })
	sw.set(true, nil)
	testcounter.Eventually(t, "the pause message", func() bool { return strings.Contains(log.String(), "stopping process group") })
	assert.True(t, testcounter.Stalls(counter))

	sw.set(true, fmt.Errorf("status API unreachable"))
	testcounter.Eventually(t, "the continue message", func() bool { return strings.Contains(log.String(), "the build status cannot be read") })
	assert.True(t, testcounter.Grows(counter), "a status API outage must not hold the build")

	sigs <- syscall.SIGTERM
	wait(t, done)
}

func TestMaxPause(t *testing.T) {
	counter := filepath.Join(t.TempDir(), "counter")
	sw := &pauseSwitch{paused: true}
	sigs := make(chan os.Signal, 1)
	log := &logRecorder{}
	done := start(t, context.Background(), "spawn-counter", []string{counter}, Options{
		Poll: sw.poll, Interval: 20 * time.Millisecond, MaxPause: 100 * time.Millisecond, Signals: sigs, Logf: log.logf,
	})
	testcounter.Eventually(t, "the max pause message", func() bool { return strings.Contains(log.String(), "(max pause); continuing") })
	assert.True(t, testcounter.Grows(counter), "the command was not continued after the max pause")
	assert.Equal(t, 1, strings.Count(log.String(), "stopping process group"), "a pause let pass stays let pass:\n%s", log)
	sigs <- syscall.SIGTERM
	wait(t, done)
}

// helperCommand returns the test binary as the helper in mode.
func helperCommand(mode string, args ...string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		panic(err)
	}
	c := exec.Command(self, args...)
	c.Env = append(os.Environ(), helperEnv+"="+mode)
	return c
}
