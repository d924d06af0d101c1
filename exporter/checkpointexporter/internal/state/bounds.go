package state

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// Bounds on what one build or host holds. Apply ignores what goes beyond them, and Load
// rejects a checkpoint that holds more, so that the state a checkpoint restores is one Apply
// could have built, and its size follows from MaxBuilds (PayloadLimit).
const (
	// MaxNameBytes bounds build ids, host names, phase names, alert rules and levels (the
	// buildmon receiver accepts build ids of up to 128 and phase names of up to 64 bytes).
	MaxNameBytes = 256
	// MaxTextBytes bounds the resource attributes (pipeline, worker, repository, branch,
	// revision) and a host's mount point.
	MaxTextBytes = 1024
	// MaxPhases bounds the phases of a build (the buildmon receiver's bound).
	MaxPhases = 64
	// MaxAlerts bounds the pending and firing alerts of a build or host.
	MaxAlerts = 256
)

// Budget of a checkpoint payload per MaxBuilds: a running build with five phases encodes to
// about 1.8 KiB, one with per-phase resources and a few issues to about 5 KiB, a finished one
// whose five phases each have every figure of both sources (the processor's and the
// exporter's own) to 7.4 KiB (TestPayloadPerBuildWithBothResources).
const (
	payloadBase         = 4 << 20
	payloadPerBuild     = 8 << 10
	payloadPerHost      = 1 << 10
	payloadPerTombstone = 512
)

// PayloadLimit is the largest checkpoint payload of a state of at most maxBuilds builds,
// hosts and tombstones: 4 MiB + maxBuilds × 9.5 KiB (about 97 MiB for 10,000 builds). A
// checkpoint that decodes to more is corrupt; a state that encodes to more is not written.
// 0 for maxBuilds < 1 (no bound from the state).
func PayloadLimit(maxBuilds int) int64 {
	if maxBuilds < 1 {
		return 0
	}
	return payloadBase + int64(maxBuilds)*(payloadPerBuild+payloadPerHost+payloadPerTombstone)
}

// fileNameRE is what a report folder or file name recorded in a checkpoint must match: one
// path element that is no dot file (so no "." or "..").
var fileNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$`)

// errInvalid wraps every reason Load rejects a checkpoint's content for.
var errInvalid = errors.New("invalid checkpoint content")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInvalid, fmt.Sprintf(format, args...))
}

func checkName(what, s string) error {
	switch {
	case s == "":
		return invalid("%s is empty", what)
	case len(s) > MaxNameBytes:
		return invalid("%s of %d bytes, more than %d", what, len(s), MaxNameBytes)
	}
	return nil
}

func checkText(what, s string) error {
	if len(s) > MaxTextBytes {
		return invalid("%s of %d bytes, more than %d", what, len(s), MaxTextBytes)
	}
	return nil
}

func checkFileName(what, s string) error {
	if s != "" && !fileNameRE.MatchString(s) {
		return invalid("%s %q is no plain file name", what, s)
	}
	return nil
}

func checkAlerts(what string, alerts []*Alert) error {
	if len(alerts) > MaxAlerts {
		return invalid("%s: %d alerts, more than %d", what, len(alerts), MaxAlerts)
	}
	for i, a := range alerts {
		if a == nil {
			continue
		}
		if err := checkName(fmt.Sprintf("%s.alerts[%d].rule", what, i), a.Rule); err != nil {
			return err
		}
		if len(a.Level) > MaxNameBytes || len(a.State) > MaxNameBytes {
			return invalid("%s.alerts[%d]: level or state longer than %d bytes", what, i, MaxNameBytes)
		}
	}
	return nil
}

func checkIssues(what string, issues []Issue, limit, dropped int, keys []string) error {
	if len(issues) > limit {
		return invalid("%s: %d issues, more than %d", what, len(issues), limit)
	}
	if len(keys) > maxDroppedKeys || dropped < 0 {
		return invalid("%s: %d dropped issue keys, more than %d", what, len(keys), maxDroppedKeys)
	}
	for i, is := range issues {
		for _, f := range []string{is.Kind, is.Scope, is.Rule, is.Level, is.Phase} {
			if len(f) > MaxNameBytes {
				return invalid("%s.issues[%d]: a field longer than %d bytes", what, i, MaxNameBytes)
			}
		}
	}
	for i, k := range keys {
		if len(k) > 5*(MaxNameBytes+1) {
			return invalid("%s.dropped_issue_keys[%d] of %d bytes", what, i, len(k))
		}
	}
	return nil
}

// validate checks what a checkpoint holds against the bounds Apply keeps.
func (snap *snapshot) validate() error {
	seen := make(map[string]bool, len(snap.Builds))
	for i, b := range snap.Builds {
		if b == nil {
			continue
		}
		what := fmt.Sprintf("builds[%d]", i)
		if err := checkName(what+".id", b.ID); err != nil {
			return err
		}
		if seen[b.ID] {
			return invalid("%s: build %q appears twice", what, b.ID)
		}
		seen[b.ID] = true
		r := b.Resource
		for _, f := range []struct{ name, v string }{
			{"pipeline", r.Pipeline}, {"host", r.Host}, {"worker", r.Worker},
			{"repository", r.Repository}, {"branch", r.Branch}, {"revision", r.Revision},
		} {
			if err := checkText(what+"."+f.name, f.v); err != nil {
				return err
			}
		}
		if len(b.Phases) > MaxPhases {
			return invalid("%s: %d phases, more than %d", what, len(b.Phases), MaxPhases)
		}
		phases := map[string]bool{}
		for j, p := range b.Phases {
			if p == nil {
				continue
			}
			pw := fmt.Sprintf("%s.phases[%d]", what, j)
			if err := checkName(pw+".name", p.Name); err != nil {
				return err
			}
			if phases[p.Name] {
				return invalid("%s: phase %q appears twice", pw, p.Name)
			}
			phases[p.Name] = true
			if err := checkIssues(pw, p.Issues, maxPhaseIssues, p.IssuesDropped, p.DroppedIssueKeys); err != nil {
				return err
			}
			if err := checkFileName(pw+".report.file", p.Report.File); err != nil {
				return err
			}
		}
		if err := checkAlerts(what, b.Alerts); err != nil {
			return err
		}
		if err := checkPredictions(what, b.ETAPredictions); err != nil {
			return err
		}
		if len(b.ETASource.V) > MaxNameBytes {
			return invalid("%s.eta_source longer than %d bytes", what, MaxNameBytes)
		}
		if err := checkIssues(what, b.Issues, maxBuildIssues, b.IssuesDropped, b.DroppedIssueKeys); err != nil {
			return err
		}
		if err := checkFileName(what+".report_dir", b.ReportDir); err != nil {
			return err
		}
		if err := checkFileName(what+".report.file", b.Report.File); err != nil {
			return err
		}
		if b.Report.Bytes < 0 {
			return invalid("%s.report.bytes is negative", what)
		}
	}
	hosts := make(map[string]bool, len(snap.Hosts))
	for i, h := range snap.Hosts {
		if h == nil {
			continue
		}
		what := fmt.Sprintf("hosts[%d]", i)
		if err := checkName(what+".name", h.Name); err != nil {
			return err
		}
		if hosts[h.Name] {
			return invalid("%s: host %q appears twice", what, h.Name)
		}
		hosts[h.Name] = true
		if err := checkText(what+".fs_mount", h.FSMount); err != nil {
			return err
		}
		if err := checkAlerts(what, h.Alerts); err != nil {
			return err
		}
	}
	for id := range snap.Tombstones {
		if err := checkName("tombstones key", id); err != nil {
			return err
		}
	}
	return nil
}

// trim keeps at most maxBuilds builds, hosts and tombstones of a checkpoint written with a
// larger max_builds: the builds Apply would evict first go first. It returns how many
// entries went.
func (snap *snapshot) trim(maxBuilds int) int {
	if maxBuilds < 1 {
		return 0
	}
	n := 0
	snap.Builds = slices.DeleteFunc(snap.Builds, func(b *Build) bool { return b == nil || b.ID == "" })
	if extra := len(snap.Builds) - maxBuilds; extra > 0 {
		slices.SortStableFunc(snap.Builds, func(a, b *Build) int {
			switch {
			case evictBefore(a, b):
				return -1
			case evictBefore(b, a):
				return 1
			}
			return 0
		})
		snap.Builds = snap.Builds[extra:]
		n += extra
	}
	snap.Hosts = slices.DeleteFunc(snap.Hosts, func(h *Host) bool { return h == nil || h.Name == "" })
	if extra := len(snap.Hosts) - maxBuilds; extra > 0 {
		slices.SortStableFunc(snap.Hosts, func(a, b *Host) int { return cmp.Compare(a.ObservedAt, b.ObservedAt) })
		snap.Hosts = snap.Hosts[extra:]
		n += extra
	}
	if extra := len(snap.Tombstones) - maxBuilds; extra > 0 {
		ids := make([]string, 0, len(snap.Tombstones))
		for id := range snap.Tombstones {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, func(a, b string) int {
			return cmp.Compare(snap.Tombstones[a].RemovedAt, snap.Tombstones[b].RemovedAt)
		})
		for _, id := range ids[:extra] {
			delete(snap.Tombstones, id)
		}
		n += extra
	}
	return n
}
