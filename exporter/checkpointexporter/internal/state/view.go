package state

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/buildmon/buildmon/internal/wire"
)

// The views below are the JSON documents of the status API. They are the wire contract's
// types (internal/wire, shared with the build client), so the API and its clients cannot drift.
type (
	// BuildStatus is the real-time status of one build (seed §5.1 "Real-time Status").
	BuildStatus = wire.BuildStatus
	// PhaseStatus is one phase of a build's status.
	PhaseStatus = wire.PhaseStatus
	// AlertStatus is an alert of a build or host.
	AlertStatus = wire.AlertStatus
	// HostResources is the latest resource utilization of a host.
	HostResources = wire.HostResources
	// ReportLinks are the paths of a build's reports.
	ReportLinks = wire.ReportLinks
	// BuildSummary is one build in the list.
	BuildSummary = wire.BuildSummary
	// HostStatus is one host in the status API.
	HostStatus = wire.HostStatus
)

// BuildFilter selects builds for the list; empty fields match everything.
type BuildFilter struct {
	State, Host, Pipeline string
}

// FormatTime formats a Unix-nanosecond timestamp as RFC 3339 in UTC; "" for 0.
func FormatTime(ts int64) string {
	if ts == 0 {
		return ""
	}
	return time.Unix(0, ts).UTC().Format(time.RFC3339Nano)
}

// BuildStatus returns the status of a build.
func (s *Store) BuildStatus(id string) (BuildStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.builds[id]
	if b == nil {
		return BuildStatus{}, false
	}
	return s.buildStatus(b), true
}

func (s *Store) buildStatus(b *Build) BuildStatus {
	st := BuildStatus{
		ID: b.ID, Pipeline: b.Pipeline, Host: b.Host, Worker: b.Worker, Repository: b.Repository,
		Branch: b.Branch, Revision: b.Revision,
		State:            buildState(b),
		Result:           b.Result.V,
		Phase:            CurrentPhase(b),
		Progress:         b.Progress.V,
		Derived:          Derived(b),
		Paused:           b.Paused.V,
		Alerts:           []AlertStatus{},
		ActiveOperations: []string{},
		Phases:           make([]PhaseStatus, 0, len(b.Phases)),
		DurationSeconds:  b.Duration.V,
		StartedAt:        FormatTime(BuildStartedAt(b)),
		UpdatedAt:        FormatTime(b.UpdatedAt),
	}
	if !b.finished() {
		st.Result = ""
	} else {
		st.FinishedAt = FormatTime(b.State.T)
	}
	st.ProgressPercent = math.Round(st.Progress*1000) / 10
	if b.ETA.Set() {
		eta := b.ETA.V
		st.ETASeconds = &eta
		st.ETASource = b.ETASource.V
	}
	if !st.Derived {
		st.Note = NoProcessorNote
	}
	for _, a := range b.Alerts {
		st.Alerts = append(st.Alerts, alertStatus(a, ScopeBuild))
	}
	h := s.hosts[b.Host]
	if h != nil && b.Host != "" {
		for _, a := range h.Alerts {
			st.Alerts = append(st.Alerts, alertStatus(a, ScopeHost))
		}
		r := hostResources(h)
		st.HostResources = &r
	}
	for _, p := range b.Phases {
		ps := phaseStatus(p)
		ps.Resources = s.phaseResourcesView(b, p)
		st.Phases = append(st.Phases, ps)
		if p.State.V == PhaseRunning {
			st.ActiveOperations = append(st.ActiveOperations, p.Name)
		}
		if phaseEnded(p.State.V) {
			if st.Reports.Phases == nil {
				st.Reports.Phases = map[string]string{}
			}
			st.Reports.Phases[p.Name] = "/v1/builds/" + b.ID + "/phases/" + p.Name + "/report"
		}
	}
	if b.finished() {
		st.Reports.Build = "/v1/builds/" + b.ID + "/report"
	}
	return st
}

func buildState(b *Build) string {
	if b.State.V == "" {
		return BuildRunning
	}
	return b.State.V
}

func phaseStatus(p *Phase) PhaseStatus {
	ps := PhaseStatus{
		Name: p.Name, State: PhaseState(p), StepsTotal: p.StepsTotal.V, StepsCompleted: p.StepsCompleted.V,
		Progress: p.Progress.V, DurationSeconds: p.Duration.V,
		StartedAt: FormatTime(PhaseStartedAt(p)), EndedAt: FormatTime(p.EndedAt),
	}
	if p.Weight.Set() {
		w := p.Weight.V
		ps.Weight = &w
	}
	return ps
}

func alertStatus(a *Alert, scope string) AlertStatus {
	return AlertStatus{Rule: a.Rule, Level: a.Level, State: a.State, Value: a.Value, Scope: scope, Since: FormatTime(a.Since)}
}

func hostResources(h *Host) HostResources {
	r := HostResources{
		CPUUtilization: h.CPU.Ptr(), MemoryUtilization: h.MemUtil.Ptr(), MemoryUsedBytes: h.MemUsed.Ptr(),
		MemoryTotalBytes: h.MemTotal.Ptr(), FilesystemUtilization: h.FSUtil.Ptr(),
		NetworkTransmitBytesPS: h.NetTransmit.Ptr(), NetworkReceiveBytesPS: h.NetReceive.Ptr(),
		DiskReadOpsPS: h.DiskOpsRead.Ptr(), DiskWriteOpsPS: h.DiskOpsWrite.Ptr(),
		UpdatedAt: FormatTime(h.UpdatedAt),
	}
	if h.FSUtil.Set() {
		r.FilesystemMountpoint = h.FSMount
	}
	return r
}

// Builds lists the builds that match f, sorted by id.
func (s *Store) Builds(f BuildFilter) []BuildSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]BuildSummary, 0, len(s.builds))
	for _, b := range s.builds {
		state := buildState(b)
		if (f.State != "" && f.State != state) || (f.Host != "" && f.Host != b.Host) || (f.Pipeline != "" && f.Pipeline != b.Pipeline) {
			continue
		}
		sum := BuildSummary{
			ID: b.ID, Pipeline: b.Pipeline, Host: b.Host, State: state, Phase: CurrentPhase(b),
			Progress: b.Progress.V, Derived: Derived(b), Paused: b.Paused.V, UpdatedAt: FormatTime(b.UpdatedAt),
		}
		if b.finished() {
			sum.Result = b.Result.V
		}
		out = append(out, sum)
	}
	slices.SortFunc(out, func(a, b BuildSummary) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Hosts lists the hosts, sorted by name.
func (s *Store) Hosts() []HostStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]HostStatus, 0, len(s.hosts))
	for _, h := range s.hosts {
		out = append(out, s.hostStatus(h))
	}
	slices.SortFunc(out, func(a, b HostStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Host returns the status of one host.
func (s *Store) Host(name string) (HostStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hosts[name]
	if h == nil {
		return HostStatus{}, false
	}
	return s.hostStatus(h), true
}

func (s *Store) hostStatus(h *Host) HostStatus {
	hs := HostStatus{Name: h.Name, Resources: hostResources(h), Alerts: []AlertStatus{}, Builds: []string{}, UpdatedAt: FormatTime(h.UpdatedAt)}
	for _, a := range h.Alerts {
		hs.Alerts = append(hs.Alerts, alertStatus(a, ScopeHost))
	}
	for id := range s.running[h.Name] {
		hs.Builds = append(hs.Builds, id)
	}
	slices.Sort(hs.Builds)
	return hs
}

// PhaseState returns a phase's state, pending if none was reported.
func PhaseState(p *Phase) string {
	if p.State.V == "" {
		return PhasePending
	}
	return p.State.V
}

// PhaseStartedAt returns the receiver's build.phase.start_time of the phase (Unix ns), 0
// while none arrived.
func PhaseStartedAt(p *Phase) int64 { return unixNanos(p.Start) }

// BuildStartedAt returns the receiver's build.start_time of the build (Unix ns), 0 while
// none arrived.
func BuildStartedAt(b *Build) int64 { return unixNanos(b.Start) }

// unixNanos converts a time in Unix seconds to Unix nanoseconds, rounded to the microsecond
// (a float64 of today's Unix seconds holds about that much); 0 when unset, not positive or
// beyond the year 2262.
func unixNanos(s Stamped[float64]) int64 {
	if !s.Set() || s.V <= 0 || s.V >= math.MaxInt64/float64(time.Second) {
		return 0
	}
	return int64(math.Round(s.V*1e6)) * int64(time.Microsecond)
}

// CurrentPhase returns the running phase (the first in plan order), else the last phase in
// plan order that ended, else "".
func CurrentPhase(b *Build) string {
	last := ""
	for _, p := range b.Phases {
		switch {
		case p.State.V == PhaseRunning:
			return p.Name
		case phaseEnded(p.State.V):
			last = p.Name
		}
	}
	return last
}

// NoProcessorNote is the note of a status or report of a build for which no build.progress
// arrived.
const NoProcessorNote = "progress and ETA come from the buildprogress processor, which is not in this pipeline"

// Derived reports whether the buildprogress processor's build.progress arrived for the
// build: progress, phase progress and ETA are known only then (the exporter does not
// compute them).
func Derived(b *Build) bool { return b.Progress.Set() }
