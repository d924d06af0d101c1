//go:build unix

package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/testcounter"
)

func TestPauseStopsAndContinuesTheCommand(t *testing.T) {
	f := newFakeCollector(t)
	self, mode := selfCLI(t)
	counterFile := filepath.Join(t.TempDir(), "counter")
	cli := newCLI(baseEnv(f.URL, f.URL, "BUILDMON_BUILD_ID=b-p", mode))
	f.setStatus("b-p", statusJSON("b-p", false, ""))

	done := make(chan int, 1)
	go func() { done <- cli.run("phase", "BUILD", "--", self, "__counter", counterFile) }()
	sigs := <-cli.sigs
	testcounter.Eventually(t, "the command to run", func() bool { return testcounter.Lines(counterFile) > 0 })
	require.True(t, testcounter.Grows(counterFile))

	f.setStatus("b-p", statusJSON("b-p", true, `{"rule":"cpu_saturated","level":"CRITICAL","state":"firing","value":99}`))
	testcounter.Eventually(t, "the pause message", func() bool { return strings.Contains(cli.stderr.String(), "stopping process group") })
	assert.Regexp(t, `buildmon: build paused by CRITICAL alert cpu_saturated \(99\); stopping process group \d+`, cli.stderr.String())
	assert.True(t, testcounter.Stalls(counterFile), "the command keeps running while the build is paused")

	f.setStatus("b-p", statusJSON("b-p", false, ""))
	testcounter.Eventually(t, "the resume message", func() bool { return strings.Contains(cli.stderr.String(), "pause cleared after") })
	assert.True(t, testcounter.Grows(counterFile), "the command was not continued")

	// The status API going away while paused continues the command too.
	f.setStatus("b-p", statusJSON("b-p", true, ""))
	testcounter.Eventually(t, "the second pause", func() bool { return strings.Count(cli.stderr.String(), "stopping process group") == 2 })
	assert.Contains(t, cli.stderr.String(), "build paused by the collector;")
	f.Close()
	testcounter.Eventually(t, "the outage message", func() bool { return strings.Contains(cli.stderr.String(), "the build status cannot be read") })
	assert.True(t, testcounter.Grows(counterFile), "a status API outage must not hold the build")
	assert.Equal(t, 1, strings.Count(cli.stderr.String(), "cannot read the build status at"), cli.stderr.String())

	sigs <- syscall.SIGTERM
	select {
	case code := <-done:
		assert.Equal(t, 128+int(syscall.SIGTERM), code)
	case <-time.After(20 * time.Second):
		t.Fatal("buildmon phase did not end after SIGTERM")
	}
}

// TestSignalToPausedBuildmon runs buildmon as its own process: a SIGTERM to it while the
// build is paused continues the stopped command so that it can terminate, and buildmon exits
// with the command's status.
func TestSignalToPausedBuildmon(t *testing.T) {
	f := newFakeCollector(t)
	self, mode := selfCLI(t)
	counterFile := filepath.Join(t.TempDir(), "counter")
	f.setStatus("b-s", statusJSON("b-s", true, `{"rule":"disk_full","level":"CRITICAL","state":"firing","value":99.5}`))

	cmd := exec.Command(self, "phase", "BUILD", "--", "sh", "-c", `"$0" __counter "$1"`, self, counterFile)
	cmd.Env = baseEnv(f.URL, f.URL, "BUILDMON_BUILD_ID=b-s", mode)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	testcounter.Eventually(t, "the pause message", func() bool { return strings.Contains(stderr.String(), "stopping process group") })
	m := regexp.MustCompile(`stopping process group (\d+)`).FindStringSubmatch(stderr.String())
	require.Len(t, m, 2)
	pgid, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	assert.True(t, testcounter.Stalls(counterFile))

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-waited:
		t.Logf("buildmon exited after SIGTERM: %v", err)
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
		t.Fatalf("buildmon did not exit after SIGTERM:\n%s", stderr.String())
	}
	assert.Equal(t, 128+int(syscall.SIGTERM), cmd.ProcessState.ExitCode(), stderr.String())
	assert.Contains(t, stderr.String(), "continuing process group "+m[1]+" so that it can handle terminated")
	// The whole group, the counting grandchild included, is gone.
	testcounter.Eventually(t, "the process group to be gone", func() bool { return syscall.Kill(-pgid, 0) == syscall.ESRCH })
	assert.Equal(t, []string{"phase_started", "phase_failed"}, f.types())
	assert.Equal(t, "exit code 143", f.received()[1].Message)
}
