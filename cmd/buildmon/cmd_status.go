package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/ci"
	"github.com/buildmon/buildmon/cmd/buildmon/internal/collector"
	"github.com/buildmon/buildmon/cmd/buildmon/internal/printable"
	"github.com/buildmon/buildmon/cmd/buildmon/internal/statusview"
	"github.com/buildmon/buildmon/internal/wire"
)

// clearScreen moves the cursor home and clears a terminal for the next frame of --watch.
const clearScreen = "\x1b[H\x1b[2J"

func cmdStatus(a *app, o *options, args []string) int {
	fs := a.flagSet(lookupCommand("status"), o)
	var watch, asJSON bool
	gateways := a.getenv(envGateways)
	fs.BoolVar(&watch, "watch", false, "refresh every --poll-interval until the build finishes")
	fs.BoolVar(&asJSON, "json", false, "print the status API's JSON instead (one line per refresh)")
	fs.StringVar(&gateways, "gateways", gateways, "comma-separated status API base URLs of a fleet's gateways: ask them instead of --status-url (env "+envGateways+")")
	positional, code, ok := a.parse(fs, o, args)
	if !ok {
		return code
	}
	urls, err := splitURLs(gateways)
	if err != nil {
		return a.usageErrorf(fs, "--gateways: %v", err)
	}
	s := a.newSession(o)
	var id string
	switch len(positional) {
	case 0:
		if id = a.buildID(o, ci.Detect(a.getenv)); id == "" {
			return s.noBuildID()
		}
	case 1:
		id = positional[0]
	default:
		return a.usageErrorf(fs, "status takes at most one build id, got %q", positional)
	}
	if len(urls) > 0 {
		if s = a.gatewayOf(o, id, urls); s == nil {
			return exitCollectorOr(o)
		}
	}

	if !watch {
		if _, err := a.showStatus(s, id, asJSON, false); err != nil {
			a.statusError(s, id, err)
			return s.exitCode()
		}
		return exitOK
	}

	sigs := make(chan os.Signal, 1)
	stop := a.notify(sigs, os.Interrupt)
	defer stop()
	ticker := time.NewTicker(o.pollInterval)
	defer ticker.Stop()
	tty := isTerminal(a.stdout) && !asJSON
	var lastErr string
	for {
		st, err := a.showStatus(s, id, asJSON, tty)
		switch {
		case err != nil:
			// Repeat a failure only when it changes; the screen keeps the last good frame.
			if err.Error() != lastErr {
				lastErr = err.Error()
				a.statusError(s, id, err)
			}
		case st.State == "finished":
			return exitOK
		default:
			lastErr = ""
		}
		select {
		case <-ticker.C:
		case <-sigs:
			return exitOK
		}
	}
}

// showStatus reads the build's status and prints it.
func (a *app) showStatus(s *session, id string, asJSON, clearFirst bool) (wire.BuildStatus, error) {
	ctx := context.Background()
	if asJSON {
		raw, err := s.client.GetStatusRaw(ctx, id)
		if err != nil {
			return wire.BuildStatus{}, err
		}
		st, err := collector.DecodeStatus(raw)
		if err != nil {
			return st, fmt.Errorf("decoding status of build %q: %w", id, err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return st, fmt.Errorf("decoding status of build %q: %w", id, err)
		}
		// The same document, with what a terminal would act on written as \u escapes.
		line := append(printable.JSON(compact.Bytes()), '\n')
		_, err = a.stdout.Write(line)
		return st, err
	}
	st, err := s.client.GetStatus(ctx, id)
	if err != nil {
		return st, err
	}
	if clearFirst {
		fmt.Fprint(a.stdout, clearScreen)
	}
	return st, statusview.Render(a.stdout, st, a.now())
}

func (a *app) statusError(s *session, id string, err error) {
	s.failed = true
	var ue *collector.UnreachableError
	switch {
	case errors.Is(err, collector.ErrNotFound):
		a.warnf("build %s is not known to the status API at %s (yet)", id, s.client.StatusURL())
	case errors.As(err, &ue):
		a.warnf("status API unreachable at %s (%v)", ue.URL, ue.Err)
	default:
		a.warnf("reading the status of build %s: %v", id, err)
	}
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func cmdVersion(a *app, o *options, args []string) int {
	fs := a.flagSet(lookupCommand("version"), o)
	if _, code, ok := a.parse(fs, o, args); !ok {
		return code
	}
	fmt.Fprintln(a.stdout, "buildmon", version)
	return exitOK
}

// splitURLs splits a comma-separated list of status API base URLs ("" is none).
func splitURLs(list string) ([]string, error) {
	var urls []string
	for _, u := range strings.Split(list, ",") {
		u = strings.TrimRight(strings.TrimSpace(u), "/")
		if u == "" {
			continue
		}
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("%q must start with http:// or https://", u)
		}
		urls = append(urls, u)
	}
	return urls, nil
}

// gatewayOf asks each gateway's status API for the build, in order, and returns a session on
// the first that has it (a build is at one gateway of a fleet), after saying which on stderr.
// It returns nil, after reporting why, when none has it.
func (a *app) gatewayOf(o *options, id string, urls []string) *session {
	var unreachable []string
	for _, u := range urls {
		og := *o
		og.statusURL = u
		s := a.newSession(&og)
		_, err := s.client.GetStatusRaw(context.Background(), id)
		var ue *collector.UnreachableError
		switch {
		case err == nil:
			a.warnf("build %s is at gateway %s", id, u)
			return s
		case errors.Is(err, collector.ErrNotFound):
		case errors.As(err, &ue):
			unreachable = append(unreachable, u)
		default:
			a.warnf("gateway %s: %v", u, err)
		}
	}
	if len(unreachable) > 0 {
		a.warnf("build %s is not known to the reachable gateways; unreachable: %s", id, strings.Join(unreachable, ", "))
	} else {
		a.warnf("build %s is not known to any gateway of %s", id, strings.Join(urls, ", "))
	}
	return nil
}

// exitCollectorOr is the exit code of a status that could not be found: 1 with --strict, else 0.
func exitCollectorOr(o *options) int {
	if o.strict {
		return exitCollector
	}
	return exitOK
}
