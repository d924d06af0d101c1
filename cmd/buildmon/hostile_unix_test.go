//go:build unix

package main

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/testcounter"
)

func TestPauseReasonFromTheServerIsEscaped(t *testing.T) {
	f := newFakeCollector(t)
	self, mode := selfCLI(t)
	counterFile := filepath.Join(t.TempDir(), "counter")
	f.setStatus("b-p", statusJSON("b-p", true, `{"rule":"cpu\u001b]0;pwned\u0007","level":"CRITICAL","state":"firing","value":97.5}`))
	cli := newCLI(baseEnv(f.URL, f.URL, "BUILDMON_BUILD_ID=b-p", mode))
	done := make(chan int, 1)
	go func() { done <- cli.run("phase", "BUILD", "--", self, "__counter", counterFile) }()
	sigs := <-cli.sigs
	testcounter.Eventually(t, "the pause message", func() bool { return strings.Contains(cli.stderr.String(), "stopping process group") })
	sigs <- syscall.SIGTERM
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("buildmon phase did not end after SIGTERM")
	}
	stderr := cli.stderr.String()
	assert.Empty(t, unsafeInOutput(stderr), "%q", stderr)
	assert.Contains(t, stderr, `build paused by CRITICAL alert cpu\x1b]0;pwned\a (97.5)`)
}
