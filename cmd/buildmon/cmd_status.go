package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
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
	fs.BoolVar(&watch, "watch", false, "refresh every --poll-interval until the build finishes")
	fs.BoolVar(&asJSON, "json", false, "print the status API's JSON instead (one line per refresh)")
	positional, code, ok := a.parse(fs, o, args)
	if !ok {
		return code
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
