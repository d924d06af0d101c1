package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/ci"
	"github.com/buildmon/buildmon/cmd/buildmon/internal/collector"
	"github.com/buildmon/buildmon/cmd/buildmon/internal/printable"
	"github.com/buildmon/buildmon/internal/wire"
)

// command is one subcommand of buildmon.
type command struct {
	name     string
	synopsis string
	summary  string
	run      func(a *app, o *options, args []string) int
}

// commands lists the subcommands in the order `buildmon help` shows them.
var commands []*command

func init() {
	// Set here rather than in the declaration: the run functions refer to commands for usage.
	commands = []*command{
		{"start", "start [--pipeline P] [--phases LIST] [--weight PHASE=W]…", "report that the build started, with its phase plan; prints the build id", cmdStart},
		{"phase", "phase PHASE [flags] -- COMMAND [ARG…]", "run COMMAND as phase PHASE: report it started, run it, report completed or failed; exits with its exit code", cmdPhase},
		{"step", "step [PHASE] [--name S] [--count N]", "report N completed steps of PHASE (default $" + envPhase + ")", cmdStep},
		{"milestone", "milestone [PHASE] NAME", "report that milestone NAME of PHASE (default $" + envPhase + ") was reached", cmdMilestone},
		{"skip", "skip PHASE", "report that PHASE is skipped", cmdSkip},
		{"finish", "finish [--result R] [--message M]", "report that the build finished (result success, failure, error, timeout or cancellation)", cmdFinish},
		{"status", "status [BUILD_ID] [--watch] [--json] [--gateways URL,...]", "show the build's progress, phase, ETA, pause and alerts", cmdStatus},
		{"version", "version", "print the version", cmdVersion},
	}
}

func lookupCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run parses the global flags and runs the subcommand.
func (a *app) run(args []string) int {
	o := a.loadOptions()
	global := flag.NewFlagSet("buildmon", flag.ContinueOnError)
	global.SetOutput(printable.Writer{W: a.stderr})
	global.Usage = func() { a.usage(global) }
	o.register(global)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	rest := global.Args()
	if len(rest) == 0 {
		a.usage(global)
		return exitUsage
	}
	if rest[0] == "help" {
		if len(rest) > 1 {
			if c := lookupCommand(rest[1]); c != nil {
				a.helpToStdout = true
				return c.run(a, &o, []string{"-h"})
			}
		}
		global.SetOutput(printable.Writer{W: a.stdout})
		a.usage(global)
		return exitOK
	}
	c := lookupCommand(rest[0])
	if c == nil {
		a.warnf("unknown command %q; run `buildmon help`", rest[0])
		return exitUsage
	}
	return c.run(a, &o, rest[1:])
}

func (a *app) usage(global *flag.FlagSet) {
	w := global.Output()
	fmt.Fprint(w, "usage: buildmon [flags] COMMAND [ARG…]\n\nbuildmon reports a build's progress to the buildmon collector.\n\ncommands:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	_ = tw.Flush()
	fmt.Fprint(w, "\nRun `buildmon help COMMAND` for a command's flags. Flags common to every command:\n")
	global.PrintDefaults()
}

// flagSet returns the flag set of c with the common flags.
func (a *app) flagSet(c *command, o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("buildmon "+c.name, flag.ContinueOnError)
	// The flag package quotes unknown flags as typed; printable keeps them visible.
	fs.SetOutput(printable.Writer{W: a.stderr})
	if a.helpToStdout {
		fs.SetOutput(printable.Writer{W: a.stdout})
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: buildmon %s\n\n%s.\n\nflags:\n", c.synopsis, c.summary)
		fs.PrintDefaults()
	}
	o.register(fs)
	return fs
}

// parse parses args for c and checks the common options. ok is false when the command should
// exit with code.
func (a *app) parse(fs *flag.FlagSet, o *options, args []string) (positional []string, code int, ok bool) {
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK, false
		}
		return nil, exitUsage, false
	}
	if err := o.validate(); err != nil {
		a.warnf("%v", strings.ReplaceAll(err.Error(), "\n", "; "))
		return nil, exitUsage, false
	}
	return positional, 0, true
}

// parseUntilCommand parses flags before and after the first argument (PHASE) and stops at the
// next argument that is not a flag: that is where a command given without "--" starts.
func (a *app) parseUntilCommand(fs *flag.FlagSet, o *options, args []string) ([]string, int, bool) {
	var positional []string
	for range 2 {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		args = fs.Args()
		if len(positional) == 0 && len(args) > 0 {
			positional = append(positional, args[0])
			args = args[1:]
		}
	}
	positional = append(positional, args...)
	if err := o.validate(); err != nil {
		a.warnf("%v", strings.ReplaceAll(err.Error(), "\n", "; "))
		return nil, exitUsage, false
	}
	return positional, 0, true
}

func (a *app) usageErrorf(fs *flag.FlagSet, format string, args ...any) int {
	a.warnf(format, args...)
	fmt.Fprintf(a.stderr, "run `buildmon help %s` for usage\n", strings.TrimPrefix(fs.Name(), "buildmon "))
	return exitUsage
}

// session reports events of one invocation and keeps track of failures, so that an
// unreachable collector is reported once.
type session struct {
	a                 *app
	o                 *options
	client            *collector.Client
	warnedUnreachable bool
	failed            bool
}

func (a *app) newSession(o *options) *session {
	return &session{a: a, o: o, client: o.client()}
}

// post sends ev and reports a failure on stderr. It returns the error for callers that care.
func (s *session) post(ev wire.Event) error {
	if ev.Time == "" {
		ev.Time = s.a.now().UTC().Format(time.RFC3339Nano)
	}
	// Over-long text or a control character would get the whole event refused; a cut message,
	// with its control characters written as visible escapes, still says what happened.
	ev.Message = truncate(printable.String(ev.Message), maxMessageLen)
	ev.Pipeline = truncate(ev.Pipeline, maxPipelineLen)
	_, err := s.client.Post(context.Background(), ev)
	if err != nil {
		s.failed = true
		s.report(ev, err)
	}
	return err
}

func (s *session) report(ev wire.Event, err error) {
	var ue *collector.UnreachableError
	var he *collector.HTTPError
	var ie *collector.InvalidEventError
	switch {
	case errors.As(err, &ie):
		s.a.warnf("not sending %s for build %s: %v", ev.Type, ev.BuildID, ie)
	case errors.As(err, &ue):
		if !s.warnedUnreachable {
			s.warnedUnreachable = true
			s.a.warnf("collector unreachable at %s; continuing without monitoring (%v)", ue.URL, ue.Err)
		}
	case errors.As(err, &he):
		what := "rejected"
		if he.StatusCode >= 500 || he.StatusCode == http.StatusTooManyRequests {
			what = "could not take"
		}
		s.a.warnf("collector %s %s for build %s: %d %s: %s", what, ev.Type, ev.BuildID, he.StatusCode, http.StatusText(he.StatusCode), he.Detail())
		switch {
		case he.StatusCode == http.StatusForbidden && he.Body.Permission != "":
			s.a.warnf("the collector knows this client but its access rules do not grant %s here; ask its operator for a rule (events.access.rules)", he.Body.Permission)
		case he.StatusCode == http.StatusUnauthorized || he.StatusCode == http.StatusForbidden:
			s.a.warnf("check --token / %s", envToken)
		}
	default:
		s.a.warnf("sending %s for build %s: %v", ev.Type, ev.BuildID, err)
	}
}

// exitCode is the exit code of a command that only reports events.
func (s *session) exitCode() int {
	if s.failed && s.o.strict {
		return exitCollector
	}
	return exitOK
}

// noBuildID reports that no build id is known; it returns the exit code for commands that
// have nothing else to do.
func (s *session) noBuildID() int {
	s.failed = true
	s.a.warnf("no build id: set --build-id or %s, or run in GitHub Actions, GitLab CI, Jenkins or Buildkite; continuing without monitoring", envBuildID)
	return s.exitCode()
}

// buildID is the build id from --build-id / BUILDMON_BUILD_ID, else from the CI environment;
// "" when neither gives one.
func (a *app) buildID(o *options, info ci.Info) string {
	if o.buildID != "" {
		id := ci.SanitizeID(o.buildID)
		if id != o.buildID {
			a.warnf("build id %q is not valid (letters, digits, . _ : - up to 128); using %q", o.buildID, id)
		}
		return id
	}
	return info.BuildID
}

// newLocalBuildID makes a build id for a build outside CI.
func (a *app) newLocalBuildID(host string) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return ci.SanitizeID(fmt.Sprintf("local-%s-%s-%s", host, a.now().UTC().Format("20060102T150405"), hex.EncodeToString(b[:])))
}

func (a *app) host(o *options) string {
	if o.host != "" {
		return o.host
	}
	h, err := a.hostname()
	if err != nil {
		return ""
	}
	return h
}

// defaultPipeline names a pipeline that neither a flag nor CI names: the working directory.
func (a *app) defaultPipeline() string {
	if wd, err := a.getwd(); err == nil {
		if base := filepath.Base(wd); base != "" && base != "/" && base != "." {
			return base
		}
	}
	return "local"
}

// Lengths the events API accepts.
const (
	maxMessageLen  = 4096
	maxPipelineLen = 256
)

// truncate cuts s to at most n bytes without splitting a UTF-8 character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
