//go:build unix

package supervise

import (
	"context"
	"errors"
	"fmt"
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
	s := &supervisor{g: processGroup(cmd.Process.Pid), opts: &opts, now: time.Now}

	waited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit status is read from cmd.ProcessState
		close(waited)
	}()
	s.loop(ctx, waited)
	return exitCode(cmd.ProcessState), nil
}

// processGroup is a POSIX process group, by its id.
type processGroup int

func (g processGroup) stop() error { return syscall.Kill(-int(g), syscall.SIGSTOP) }
func (g processGroup) cont() error { return syscall.Kill(-int(g), syscall.SIGCONT) }

func (g processGroup) signal(sig os.Signal) error {
	ssig, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("%v is no POSIX signal", sig)
	}
	if err := syscall.Kill(-int(g), ssig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

func (g processGroup) String() string { return fmt.Sprintf("process group %d", int(g)) }

// forwardable: every POSIX signal that reaches buildmon goes on to the group.
func forwardable(sig os.Signal) bool {
	_, ok := sig.(syscall.Signal)
	return ok
}

// isTermination tells the signals after which the group is never stopped again.
func isTermination(sig os.Signal) bool {
	switch sig {
	case syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT:
		return true
	}
	return false
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
