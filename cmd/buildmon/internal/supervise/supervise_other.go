//go:build !unix && !windows

package supervise

import (
	"context"
	"os/exec"
	"runtime"
)

// Run starts cmd and waits for it. Without POSIX process groups there is no pausing: the build
// status is not polled, and a forwarded signal kills the command.
func Run(_ context.Context, cmd *exec.Cmd, opts Options) (int, error) {
	if err := cmd.Start(); err != nil {
		return StartFailureCode(err), err
	}
	if opts.Poll != nil {
		opts.logf("pausing a build is not supported on %s; the command runs unpaused", runtime.GOOS)
	}
	waited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(waited)
	}()
	for {
		select {
		case <-waited:
			return cmd.ProcessState.ExitCode(), nil
		case <-opts.Signals:
			_ = cmd.Process.Kill()
		}
	}
}
