// Command buildmon is the build client of buildmon: it reports a build's phases and steps to
// the collector's events API, wraps build commands as phases, shows a build's status, and
// honors CRITICAL pauses by stopping the wrapped command's process group until they clear.
//
// It never breaks the build it wraps: when the collector cannot be reached it warns once and
// carries on, and `buildmon phase` always exits with the wrapped command's exit code.
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/printable"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes of buildmon's own commands (`phase` exits with the wrapped command's code).
const (
	exitOK        = 0
	exitCollector = 1 // the collector was unreachable or refused an event, with --strict
	exitUsage     = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr))
}

// run is buildmon with its environment passed in; it returns the exit code.
func run(args, env []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return newApp(env, stdin, stdout, stderr).run(args)
}

// app holds what a command needs from the outside world, so that tests can replace it.
type app struct {
	env      []string
	getenv   func(string) string
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
	now      func() time.Time
	hostname func() (string, error)
	getwd    func() (string, error)
	// notify relays the given signals to c until the returned stop is called.
	notify func(c chan<- os.Signal, sigs ...os.Signal) (stop func())
	// helpToStdout sends a command's usage to stdout, for `buildmon help COMMAND`.
	helpToStdout bool
}

func newApp(env []string, stdin io.Reader, stdout, stderr io.Writer) *app {
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	return &app{
		env:      env,
		getenv:   func(k string) string { return vars[k] },
		stdin:    stdin,
		stdout:   syncWriter(stdout),
		stderr:   syncWriter(stderr),
		now:      time.Now,
		hostname: os.Hostname,
		getwd:    os.Getwd,
		notify: func(c chan<- os.Signal, sigs ...os.Signal) func() {
			signal.Notify(c, sigs...)
			return func() { signal.Stop(c) }
		},
	}
}

// warnf writes one "buildmon: …" line to stderr. The line is made printable as a whole: its
// arguments quote the collector's answers, the environment and the command line, and a
// control character in them must neither reach the terminal nor start a line of its own.
func (a *app) warnf(format string, args ...any) {
	fmt.Fprintf(a.stderr, "buildmon: %s\n", printable.String(fmt.Sprintf(format, args...)))
}

// syncWriter serializes writes to w, which the wrapped command's output copier and buildmon's
// own messages share. Files are left as they are, so that the command writes to them directly.
func syncWriter(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	if _, ok := w.(*os.File); ok {
		return w
	}
	return &lockedWriter{w: w}
}

type lockedWriter struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
