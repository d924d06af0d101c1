// Package supervise runs the command that `buildmon phase` wraps: in a process group of its
// own, with the build client's signals forwarded to that group, and stopped (SIGSTOP) while the
// build is paused by a CRITICAL alert, continued (SIGCONT) when the pause clears.
//
// Monitoring must never hold a build: when the status cannot be read the group is continued,
// and a termination signal always reaches a running (continued) group.
package supervise

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"time"
)

// Pause is the pause state of the build as the status API reports it.
type Pause struct {
	Paused bool
	// Reason says why, e.g. "CRITICAL alert cpu_usage (97.5)"; empty when unknown.
	Reason string
}

// PollFunc reads the pause state of the build. It should return within its own timeout, and
// it tells the user about its failures itself: Run only acts on them.
type PollFunc func(ctx context.Context) (Pause, error)

// Options configure Run.
type Options struct {
	// Poll reads the pause state every Interval (and once at start). Nil disables pausing.
	Poll     PollFunc
	Interval time.Duration
	// MaxPause continues a paused command after this long even if the pause has not cleared;
	// zero waits for the pause to clear.
	MaxPause time.Duration
	// Signals delivers the signals to forward to the command's process group.
	Signals <-chan os.Signal
	// Logf writes a message for the user (one line, without the "buildmon: " prefix).
	Logf func(format string, args ...any)
}

// Exit codes for a command that could not be started, as a POSIX shell reports them.
const (
	ExitNotFound      = 127
	ExitCannotExecute = 126
)

// StartFailureCode is the exit code for a command that failed to start with err.
func StartFailureCode(err error) int {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return ExitNotFound
	}
	return ExitCannotExecute
}

func (o *Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

type pollResult struct {
	pause Pause
	err   error
}
