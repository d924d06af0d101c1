package state

import (
	"slices"
	"strings"
)

// Issues: the bounded record of alerts that fired and phases that failed.

// Bounds on what one build or phase remembers of issues.
const (
	maxBuildIssues = 64
	maxPhaseIssues = 32
)

// recordBuildIssues notes the build's firing alerts and its host's as issues of the build
// and of its running phases.
func (s *Store) recordBuildIssues(b *Build) {
	if b.finished() {
		return
	}
	for _, a := range b.Alerts {
		s.recordIssue(b, ScopeBuild, a)
	}
	if h := s.hosts[b.Host]; h != nil && b.Host != "" {
		for _, a := range h.Alerts {
			s.recordIssue(b, ScopeHost, a)
		}
	}
}

func (s *Store) recordIssue(b *Build, scope string, a *Alert) {
	if a.State != AlertFiring {
		return
	}
	is := Issue{Kind: IssueAlert, Scope: scope, Rule: a.Rule, Level: a.Level, MaxValue: a.Value, FirstSeen: a.UpdatedAt, LastSeen: a.UpdatedAt}
	b.issueLog().add(is)
	for _, p := range b.Phases {
		if p.State.V == PhaseRunning {
			ip := is
			ip.Phase = p.Name
			p.issueLog().add(ip)
		}
	}
}

// maxDroppedKeys bounds the keys remembered of issues dropped for want of room.
const maxDroppedKeys = 256

// issueLog is a bounded list of issues and what did not fit.
type issueLog struct {
	issues  *[]Issue
	dropped *int
	keys    *[]string
	limit   int
}

func (b *Build) issueLog() issueLog {
	return issueLog{&b.Issues, &b.IssuesDropped, &b.DroppedIssueKeys, maxBuildIssues}
}

func (p *Phase) issueLog() issueLog {
	return issueLog{&p.Issues, &p.IssuesDropped, &p.DroppedIssueKeys, maxPhaseIssues}
}

func (is Issue) key() string {
	return strings.Join([]string{is.Kind, is.Scope, is.Rule, is.Level, is.Phase}, "\x00")
}

// add merges is into the log (same kind, scope, rule, level and phase) or appends it; past
// the limit it counts each distinct issue dropped once.
func (l issueLog) add(is Issue) {
	for i := range *l.issues {
		e := &(*l.issues)[i]
		if e.Kind == is.Kind && e.Scope == is.Scope && e.Rule == is.Rule && e.Level == is.Level && e.Phase == is.Phase {
			e.MaxValue = max(e.MaxValue, is.MaxValue)
			if is.FirstSeen != 0 && (e.FirstSeen == 0 || is.FirstSeen < e.FirstSeen) {
				e.FirstSeen = is.FirstSeen
			}
			e.LastSeen = max(e.LastSeen, is.LastSeen)
			return
		}
	}
	if len(*l.issues) < l.limit {
		*l.issues = append(*l.issues, is)
		return
	}
	k := is.key()
	if slices.Contains(*l.keys, k) {
		return
	}
	if len(*l.keys) < maxDroppedKeys {
		*l.keys = append(*l.keys, k)
	}
	*l.dropped++
}
