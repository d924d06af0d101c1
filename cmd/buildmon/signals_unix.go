//go:build unix

package main

import (
	"os"
	"syscall"
)

// forwardedSignals reach the wrapped command's process group through buildmon, which keeps
// running until the command exits, so that it can report how the phase ended.
var forwardedSignals = []os.Signal{
	syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
}
