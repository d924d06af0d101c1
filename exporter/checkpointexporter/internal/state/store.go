package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
)

// FormatVersion is the version of the checkpoint payload written by Snapshot.
const FormatVersion = 1

// Bounds on what one build or phase remembers of issues.
const (
	maxBuildIssues = 64
	maxPhaseIssues = 32
)

// Limits bound the state.
type Limits struct {
	// MaxBuilds bounds the builds (and hosts) held; past it the oldest finished build, else
	// the least recently updated one, is evicted.
	MaxBuilds int
	// FinishedRetention is how long a finished build is kept after it finished.
	FinishedRetention time.Duration
	// MaxReportsBytes bounds the bytes of report files; past it the oldest finished builds
	// are removed with their reports. 0 means no bound.
	MaxReportsBytes int64
	// AlertStaleAfter is how long a host alert (or an alert of a finished build) stays
	// active without being reported again.
	AlertStaleAfter time.Duration
}

// Namer names report files: the folder of a build and the file of each report in it.
type Namer interface {
	BuildDir(id string) string
	BuildFile() string
	PhaseFile(phase string) string
}

// ApplyResult is what Apply did that the exporter acts on.
type ApplyResult struct {
	// Changes are the firing alerts that started, changed level or stopped.
	Changes []AlertChange
	// Urgent is set when a phase or build ended: a checkpoint and reports are due now.
	Urgent bool
	// Evicted counts builds removed to stay within MaxBuilds.
	Evicted int
	// Ignored counts builds, hosts, phases, alerts and attributes left out because they
	// exceed the bounds of bounds.go (names too long, too many phases or alerts).
	Ignored int
}

// Removed is a build that Expire removed.
type Removed struct {
	ID        string
	ReportDir string
	// Evicted is set when the build went before its retention age (max_reports_bytes).
	Evicted bool
}

// ExpireResult is what Expire did.
type ExpireResult struct {
	Changes []AlertChange
	Removed []Removed
}

// ReportJob is a report that is due: a copy of its build (and the phase's name for a phase
// report), and where to write it.
type ReportJob struct {
	BuildID string
	// Phase is empty for the build report.
	Phase   string
	Dir     string
	File    string
	Version uint64
	Build   *Build
}

type tombstone struct {
	UpdatedAt int64 `json:"updated_at"`
	RemovedAt int64 `json:"removed_at"`
}

// Store is the monitoring state. It is safe for concurrent use: mu guards every field below it.
type Store struct {
	clock  clock.Clock
	limits Limits
	namer  Namer

	mu     sync.Mutex
	builds map[string]*Build
	hosts  map[string]*Host
	// tombstones remember removed builds so that late data does not bring them back.
	tombstones map[string]tombstone
	// running indexes the builds that are not finished by host name.
	running map[string]map[string]*Build
	// due holds the ids of builds with a report due.
	due map[string]struct{}
	// version counts changes; written is the version of the last checkpoint written.
	// touches and touchesWritten do the same for changes that make no checkpoint due.
	version, written        uint64
	touches, touchesWritten uint64
	// snapshotTouches is touches at the last Snapshot (one writer takes snapshots).
	snapshotTouches uint64
	reportBytes     int64
	// trimmed counts what the last Load left out to stay within MaxBuilds.
	trimmed int
}

// New returns an empty Store.
func New(c clock.Clock, limits Limits, namer Namer) *Store {
	return &Store{
		clock:      c,
		limits:     limits,
		namer:      namer,
		builds:     map[string]*Build{},
		hosts:      map[string]*Host{},
		tombstones: map[string]tombstone{},
		running:    map[string]map[string]*Build{},
		due:        map[string]struct{}{},
	}
}

// Len returns the number of builds held.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.builds)
}

// Dirty reports whether the state changed since the last checkpoint written.
func (s *Store) Dirty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version != s.written
}

// Touched reports whether anything changed since the last checkpoint written, also changes
// that make no checkpoint due (newer timestamps, utilization samples); the final checkpoint
// at shutdown takes them along.
func (s *Store) Touched() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version != s.written || s.touches != s.touchesWritten
}

// Apply reduces a batch of observations into the state.
func (s *Store) Apply(batch Batch) ApplyResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now().UnixNano()
	var res ApplyResult
	for i := range batch.Builds {
		s.applyBuild(&batch.Builds[i], now, &res)
	}
	for i := range batch.Hosts {
		s.applyHost(&batch.Hosts[i], now, &res)
	}
	return res
}

func (o *BuildObservation) newest() int64 {
	ts := max(o.State.TS, o.Result.TS, o.Duration.TS, o.Progress.TS, o.ETA.TS, o.Paused.TS, o.Start.TS, o.AlertsAt)
	for i := range o.Phases {
		p := &o.Phases[i]
		ts = max(ts, p.State.TS, p.StepsTotal.TS, p.StepsCompleted.TS, p.Duration.TS, p.Weight.TS, p.Progress.TS,
			p.Start.TS, p.CPUAvg.TS, p.CPUMax.TS, p.MemoryMax.TS, p.DiskRead.TS, p.DiskWrite.TS, p.NetTransmit.TS,
			p.NetReceive.TS, p.DiskOpsRead.TS, p.DiskOpsWrite.TS)
	}
	for _, a := range o.Alerts {
		ts = max(ts, a.TS)
	}
	return ts
}

func (b *Build) finished() bool { return b.State.V == BuildFinished }

// phase returns the build's phase with that name, adding it at the end of the plan; nil when
// the name is too long or the build has MaxPhases phases.
func (b *Build) phase(name string) *Phase {
	for _, p := range b.Phases {
		if p.Name == name {
			return p
		}
	}
	if len(name) > MaxNameBytes || len(b.Phases) >= MaxPhases {
		return nil
	}
	p := &Phase{Name: name}
	b.Phases = append(b.Phases, p)
	return p
}

// change tracks what applying an observation changed: anything (the checkpoint is due) and
// values (a report of an ended phase or a finished build is due again).
type change struct{ any, value bool }

// noteField applies p to f and tracks the change. The comparison happens before apply in
// its own statement: Go leaves the order of an operand read and a call in one expression
// unspecified.
func noteField[T comparable](c *change, f *Stamped[T], p Point[T]) {
	differs := f.V != p.V
	c.track(differs, f.apply(p))
}

func (c *change) track(valueDiffers, applied bool) {
	if applied {
		c.any = true
		c.value = c.value || valueDiffers
	}
}

func (s *Store) applyBuild(o *BuildObservation, now int64, res *ApplyResult) {
	if o.ID == "" {
		return
	}
	if len(o.ID) > MaxNameBytes {
		res.Ignored++
		return
	}
	newest := o.newest()
	if t, ok := s.tombstones[o.ID]; ok {
		if newest <= t.UpdatedAt {
			return
		}
		delete(s.tombstones, o.ID)
	}
	b := s.builds[o.ID]
	var c change
	if b == nil {
		res.Evicted += s.makeRoomForBuild(now, res)
		b = &Build{ID: o.ID}
		s.builds[o.ID] = b
		c.any, c.value = true, true
	}
	oldHost, wasRunning := b.Host, !b.finished()
	changed, ignored := mergeResource(&b.Resource, o.Resource)
	res.Ignored += ignored
	c.track(true, changed)

	wasFinished := b.finished()
	noteField(&c, &b.State, o.State)
	justFinished := !wasFinished && b.finished()
	switch {
	case justFinished:
		b.FinishedObservedAt = now
		res.Urgent = true
	case !b.finished():
		b.FinishedObservedAt = 0
	}
	noteField(&c, &b.Result, o.Result)
	noteField(&c, &b.Duration, o.Duration)
	noteField(&c, &b.Progress, o.Progress)
	noteField(&c, &b.ETA, o.ETA)
	noteField(&c, &b.Paused, o.Paused)
	noteField(&c, &b.Start, o.Start)

	for i := range o.Phases {
		po := &o.Phases[i]
		if po.Name == "" {
			continue
		}
		p := b.phase(po.Name)
		if p == nil {
			res.Ignored++
			continue
		}
		pc := s.applyPhase(b, p, po, res)
		c.any = c.any || pc.any
		c.value = c.value || pc.value
	}

	tmpl := AlertChange{Scope: ScopeBuild, BuildID: b.ID, Pipeline: b.Pipeline, Host: b.Host}
	ac := s.applyAlerts(&b.Alerts, o.Alerts, o.AlertsComplete, o.AlertsAt, now, tmpl, res)
	alertsChanged := ac.value
	c.any = c.any || ac.any
	if c.any {
		s.recordBuildIssues(b)
	}

	if c.any {
		b.UpdatedAt = max(b.UpdatedAt, newest)
		if b.FirstSeen == 0 || (newest != 0 && newest < b.FirstSeen) {
			b.FirstSeen = newest
		}
		b.ObservedAt = now
		// Newer timestamps alone (upstream re-reporting unchanged values) ride along with
		// the next checkpoint but do not make one due.
		if c.value || alertsChanged {
			s.markChanged(b)
		} else {
			s.touch(b)
		}
	}
	if b.finished() && (justFinished || c.value) {
		b.Report.Version++
		s.due[b.ID] = struct{}{}
	}
	s.reindex(b, oldHost, wasRunning)
}

// mergeResource takes the attributes src sets; it reports whether dst changed and how many
// attributes it left out for being longer than MaxTextBytes.
func mergeResource(dst *Resource, src Resource) (changed bool, ignored int) {
	set := func(d *string, v string) {
		switch {
		case len(v) > MaxTextBytes:
			ignored++
		case v != "" && *d != v:
			*d, changed = v, true
		}
	}
	set(&dst.Pipeline, src.Pipeline)
	set(&dst.Host, src.Host)
	set(&dst.Worker, src.Worker)
	set(&dst.Repository, src.Repository)
	set(&dst.Branch, src.Branch)
	set(&dst.Revision, src.Revision)
	return changed, ignored
}

func phaseEnded(state string) bool {
	return state == PhaseCompleted || state == PhaseFailed || state == PhaseSkipped
}

func (s *Store) applyPhase(b *Build, p *Phase, o *PhaseObservation, res *ApplyResult) change {
	var c change
	prev := p.State.V
	noteField(&c, &p.State, o.State)
	endedNow := false
	if p.State.V != prev {
		switch {
		case phaseEnded(p.State.V):
			p.EndedAt = p.State.T
			endedNow = true
			res.Urgent = true
			if p.State.V == PhaseFailed {
				failure := Issue{Kind: IssueFailure, Phase: p.Name, FirstSeen: p.State.T, LastSeen: p.State.T}
				p.issueLog().add(failure)
				b.issueLog().add(failure)
			}
		default:
			p.EndedAt = 0
		}
	}
	noteField(&c, &p.StepsTotal, o.StepsTotal)
	noteField(&c, &p.StepsCompleted, o.StepsCompleted)
	noteField(&c, &p.Duration, o.Duration)
	noteField(&c, &p.Weight, o.Weight)
	noteField(&c, &p.Progress, o.Progress)
	noteField(&c, &p.Start, o.Start)
	r := &p.Resources
	noteField(&c, &r.CPUAvg, o.CPUAvg)
	noteField(&c, &r.CPUMax, o.CPUMax)
	noteField(&c, &r.MemoryMax, o.MemoryMax)
	noteField(&c, &r.DiskRead, o.DiskRead)
	noteField(&c, &r.DiskWrite, o.DiskWrite)
	noteField(&c, &r.NetTransmit, o.NetTransmit)
	noteField(&c, &r.NetReceive, o.NetReceive)
	noteField(&c, &r.DiskOpsRead, o.DiskOpsRead)
	noteField(&c, &r.DiskOpsWrite, o.DiskOpsWrite)
	if phaseEnded(p.State.V) && (endedNow || c.value) {
		p.Report.Version++
		s.due[b.ID] = struct{}{}
	}
	return c
}

// applyAlerts reduces alert observations into list; it reports what changed: c.value for
// alerts that started, ended or changed level, state or value, c.any also for newer
// timestamps alone.
func (s *Store) applyAlerts(list *[]*Alert, obs []AlertObservation, complete bool, snapshotTS, now int64, tmpl AlertChange, res *ApplyResult) change {
	var c change
	for _, o := range obs {
		if o.Rule == "" {
			continue
		}
		if len(o.Rule) > MaxNameBytes || len(o.Level) > MaxNameBytes || len(o.State) > MaxNameBytes {
			res.Ignored++
			continue
		}
		i := slices.IndexFunc(*list, func(a *Alert) bool { return a.Rule == o.Rule })
		if !o.Active {
			// A 0 ends the series it names: it clears the alert only while the alert is that
			// series (the processor reports the previous level or state with 0 next to the
			// new one with 1).
			if i >= 0 && o.TS >= (*list)[i].UpdatedAt && sameSeries((*list)[i], o) {
				a := (*list)[i]
				*list = slices.Delete(*list, i, i+1)
				if a.State == AlertFiring {
					res.Changes = append(res.Changes, resolved(tmpl, a, now))
				}
				c.track(true, true)
			}
			continue
		}
		if i < 0 && len(*list) >= MaxAlerts {
			res.Ignored++
			continue
		}
		if i < 0 {
			a := &Alert{Rule: o.Rule, Level: o.Level, State: o.State, Value: o.Value, HasValue: o.HasValue, Since: o.TS, LevelSince: o.TS, UpdatedAt: o.TS, SeenAt: now}
			*list = append(*list, a)
			slices.SortFunc(*list, func(x, y *Alert) int { return strings.Compare(x.Rule, y.Rule) })
			if a.State == AlertFiring {
				res.Changes = append(res.Changes, fired(tmpl, a))
			}
			c.track(true, true)
			continue
		}
		a := (*list)[i]
		if o.TS < a.UpdatedAt {
			continue
		}
		a.SeenAt = now
		if o.TS == a.UpdatedAt && o.Level == a.Level && o.State == a.State && (!o.HasValue || o.Value == a.Value) {
			continue
		}
		old := *a
		c.track(o.Level != a.Level || o.State != a.State || (o.HasValue && o.Value != a.Value), true)
		if o.Level != a.Level {
			a.LevelSince = o.TS
		}
		a.Level, a.State, a.UpdatedAt = o.Level, o.State, o.TS
		if o.HasValue {
			a.Value, a.HasValue = o.Value, true
		}
		switch {
		case a.State == AlertFiring && old.State != AlertFiring:
			res.Changes = append(res.Changes, fired(tmpl, a))
		case a.State == AlertFiring && old.Level != a.Level:
			res.Changes = append(res.Changes, resolved(tmpl, &old, now), fired(tmpl, a))
		case a.State != AlertFiring && old.State == AlertFiring:
			res.Changes = append(res.Changes, resolved(tmpl, &old, now))
		}
	}
	if complete {
		kept := (*list)[:0]
		for _, a := range *list {
			seen := slices.ContainsFunc(obs, func(o AlertObservation) bool { return o.Rule == a.Rule })
			if seen || a.UpdatedAt > snapshotTS {
				kept = append(kept, a)
				continue
			}
			if a.State == AlertFiring {
				res.Changes = append(res.Changes, resolved(tmpl, a, now))
			}
			c.track(true, true)
		}
		clear((*list)[len(kept):])
		*list = kept
	}
	return c
}

// sameSeries reports whether an observation of 0 names the alert's current series; a 0
// without a level or state names any.
func sameSeries(a *Alert, o AlertObservation) bool {
	return (o.Level == "" || o.Level == a.Level) && (o.State == "" || o.State == a.State)
}

func fired(tmpl AlertChange, a *Alert) AlertChange {
	c := tmpl
	c.Rule, c.Level, c.Value, c.Since, c.At = a.Rule, a.Level, a.Value, a.LevelSince, a.UpdatedAt
	if c.Since == 0 {
		c.Since = a.Since
	}
	return c
}

func resolved(tmpl AlertChange, a *Alert, now int64) AlertChange {
	c := fired(tmpl, a)
	c.At, c.Resolved = now, true
	return c
}

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

func (s *Store) applyHost(o *HostObservation, now int64, res *ApplyResult) {
	if o.Name == "" {
		return
	}
	if len(o.Name) > MaxNameBytes {
		res.Ignored++
		return
	}
	if len(o.FSMount) > MaxTextBytes {
		o.FSMount = ""
		res.Ignored++
	}
	h := s.hosts[o.Name]
	created := false
	if h == nil {
		s.makeRoomForHost()
		h = &Host{Name: o.Name}
		s.hosts[o.Name] = h
		created = true
	}
	var c change
	noteField(&c, &h.CPU, o.CPU)
	noteField(&c, &h.MemUtil, o.MemUtil)
	noteField(&c, &h.MemUsed, o.MemUsed)
	noteField(&c, &h.MemTotal, o.MemTotal)
	if o.FSUtil.OK && o.FSUtil.TS >= h.FSUtil.T {
		h.FSMount = o.FSMount
	}
	noteField(&c, &h.FSUtil, o.FSUtil)
	noteField(&c, &h.NetTransmit, o.NetTransmit)
	noteField(&c, &h.NetReceive, o.NetReceive)
	noteField(&c, &h.DiskOpsRead, o.DiskOpsRead)
	noteField(&c, &h.DiskOpsWrite, o.DiskOpsWrite)
	tmpl := AlertChange{Scope: ScopeHost, Host: h.Name}
	ac := s.applyAlerts(&h.Alerts, o.Alerts, false, 0, now, tmpl, res)
	alertsChanged := ac.value
	for _, a := range o.Alerts {
		if hs := h.alert(a.Rule); hs != nil && a.TS >= hs.UpdatedAt {
			hs.SeenAt = now
		}
	}
	if !(c.any || alertsChanged || created) {
		return
	}
	ts := max(o.CPU.TS, o.MemUtil.TS, o.MemUsed.TS, o.MemTotal.TS, o.FSUtil.TS, o.NetTransmit.TS, o.NetReceive.TS, o.DiskOpsRead.TS, o.DiskOpsWrite.TS)
	for _, a := range o.Alerts {
		ts = max(ts, a.TS)
	}
	h.UpdatedAt = max(h.UpdatedAt, ts)
	h.ObservedAt = now
	// Utilization is refreshed within seconds after a restart: it rides along with the next
	// checkpoint but does not make one due, so an idle host causes no writes. Alerts do.
	if alertsChanged || created {
		s.version++
	}

	// Utilization rides along with the next checkpoint; host alerts are issues of the builds
	// running on the host.
	s.touches++
	if len(h.Alerts) == 0 {
		return
	}
	for _, b := range s.running[h.Name] {
		for _, a := range h.Alerts {
			s.recordIssue(b, ScopeHost, a)
		}
		s.touch(b)
	}
}

func (h *Host) alert(rule string) *Alert {
	for _, a := range h.Alerts {
		if a.Rule == rule {
			return a
		}
	}
	return nil
}

// markChanged invalidates the build's cached encoding and makes a checkpoint due.
func (s *Store) markChanged(b *Build) {
	s.touch(b)
	s.version++
}

// touch invalidates the build's cached encoding without making a checkpoint due: the change
// goes into the next checkpoint written for another reason.
func (s *Store) touch(b *Build) {
	b.encoded = nil
	b.rev++
	s.touches++
}

// reindex keeps the running index in step with the build's host and state.
func (s *Store) reindex(b *Build, oldHost string, wasRunning bool) {
	isRunning := !b.finished()
	if oldHost == b.Host && wasRunning == isRunning {
		return
	}
	if wasRunning {
		s.unindex(b.ID, oldHost)
	}
	if isRunning {
		m := s.running[b.Host]
		if m == nil {
			m = map[string]*Build{}
			s.running[b.Host] = m
		}
		m[b.ID] = b
	}
}

func (s *Store) unindex(id, host string) {
	if m := s.running[host]; m != nil {
		delete(m, id)
		if len(m) == 0 {
			delete(s.running, host)
		}
	}
}

// makeRoomForBuild evicts builds until one more fits within MaxBuilds: the oldest finished
// build first, else the least recently changed running build.
func (s *Store) makeRoomForBuild(now int64, res *ApplyResult) int {
	if s.limits.MaxBuilds <= 0 {
		return 0
	}
	evicted := 0
	for len(s.builds) >= s.limits.MaxBuilds {
		var victim *Build
		for _, b := range s.builds {
			if victim == nil || evictBefore(b, victim) {
				victim = b
			}
		}
		s.remove(victim, now, res.addChanges)
		evicted++
	}
	return evicted
}

func (r *ApplyResult) addChanges(c ...AlertChange) { r.Changes = append(r.Changes, c...) }

// evictBefore orders eviction candidates: finished before running, then oldest first.
func evictBefore(a, b *Build) bool {
	if a.finished() != b.finished() {
		return a.finished()
	}
	if a.finished() {
		return a.FinishedObservedAt < b.FinishedObservedAt
	}
	return a.ObservedAt < b.ObservedAt
}

func (s *Store) makeRoomForHost() {
	if s.limits.MaxBuilds <= 0 {
		return
	}
	for len(s.hosts) >= s.limits.MaxBuilds {
		var victim *Host
		for _, h := range s.hosts {
			if len(s.running[h.Name]) == 0 && (victim == nil || h.ObservedAt < victim.ObservedAt) {
				victim = h
			}
		}
		if victim == nil {
			return
		}
		delete(s.hosts, victim.Name)
		s.version++
	}
}

// remove drops a build, leaving a tombstone; resolutions of its firing alerts go to emit.
func (s *Store) remove(b *Build, now int64, emit func(...AlertChange)) {
	tmpl := AlertChange{Scope: ScopeBuild, BuildID: b.ID, Pipeline: b.Pipeline, Host: b.Host}
	for _, a := range b.Alerts {
		if a.State == AlertFiring {
			emit(resolved(tmpl, a, now))
		}
	}
	delete(s.builds, b.ID)
	delete(s.due, b.ID)
	if !b.finished() {
		s.unindex(b.ID, b.Host)
	}
	s.reportBytes -= b.reportBytes()
	s.tombstones[b.ID] = tombstone{UpdatedAt: b.UpdatedAt, RemovedAt: now}
	if s.limits.MaxBuilds > 0 && len(s.tombstones) > s.limits.MaxBuilds {
		oldest, oldestAt := "", int64(0)
		for id, t := range s.tombstones {
			if oldest == "" || t.RemovedAt < oldestAt {
				oldest, oldestAt = id, t.RemovedAt
			}
		}
		delete(s.tombstones, oldest)
	}
	s.version++
}

func (b *Build) reportBytes() int64 {
	n := b.Report.Bytes
	for _, p := range b.Phases {
		n += p.Report.Bytes
	}
	return n
}

// Expire resolves stale alerts and applies retention: it removes finished builds older than
// FinishedRetention, old tombstones and idle hosts, and the oldest finished builds while the
// reports exceed MaxReportsBytes.
func (s *Store) Expire() ExpireResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now().UnixNano()
	var res ExpireResult
	emit := func(c ...AlertChange) { res.Changes = append(res.Changes, c...) }

	if stale := s.limits.AlertStaleAfter; stale > 0 {
		cutoff := now - int64(stale)
		for _, h := range s.hosts {
			if expireAlerts(&h.Alerts, cutoff, now, AlertChange{Scope: ScopeHost, Host: h.Name}, emit) {
				s.version++
			}
		}
		for _, b := range s.builds {
			if b.finished() && expireAlerts(&b.Alerts, cutoff, now, AlertChange{Scope: ScopeBuild, BuildID: b.ID, Pipeline: b.Pipeline, Host: b.Host}, emit) {
				s.markChanged(b)
			}
		}
	}

	if keep := s.limits.FinishedRetention; keep > 0 {
		cutoff := now - int64(keep)
		for _, b := range s.builds {
			if b.finished() && b.FinishedObservedAt != 0 && b.FinishedObservedAt < cutoff {
				res.Removed = append(res.Removed, Removed{ID: b.ID, ReportDir: b.ReportDir})
				s.remove(b, now, emit)
			}
		}
		for id, t := range s.tombstones {
			if t.RemovedAt < cutoff {
				delete(s.tombstones, id)
				s.version++
			}
		}
		for name, h := range s.hosts {
			if h.ObservedAt < cutoff && len(s.running[name]) == 0 {
				delete(s.hosts, name)
				s.version++
			}
		}
	}

	if limit := s.limits.MaxReportsBytes; limit > 0 {
		for s.reportBytes > limit {
			var victim *Build
			for _, b := range s.builds {
				if b.finished() && b.reportBytes() > 0 && (victim == nil || b.FinishedObservedAt < victim.FinishedObservedAt) {
					victim = b
				}
			}
			if victim == nil {
				break
			}
			res.Removed = append(res.Removed, Removed{ID: victim.ID, ReportDir: victim.ReportDir, Evicted: true})
			s.remove(victim, now, emit)
		}
	}
	return res
}

func expireAlerts(list *[]*Alert, cutoff, now int64, tmpl AlertChange, emit func(...AlertChange)) bool {
	kept := (*list)[:0]
	for _, a := range *list {
		if a.SeenAt >= cutoff {
			kept = append(kept, a)
			continue
		}
		if a.State == AlertFiring {
			emit(resolved(tmpl, a, now))
		}
	}
	changed := len(kept) != len(*list)
	clear((*list)[len(kept):])
	*list = kept
	return changed
}

// FiringAlerts returns every firing alert as a change that started it, so that notifiers
// know them after a restore.
func (s *Store) FiringAlerts() []AlertChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AlertChange
	for _, b := range s.builds {
		for _, a := range b.Alerts {
			if a.State == AlertFiring {
				out = append(out, fired(AlertChange{Scope: ScopeBuild, BuildID: b.ID, Pipeline: b.Pipeline, Host: b.Host}, a))
			}
		}
	}
	for _, h := range s.hosts {
		for _, a := range h.Alerts {
			if a.State == AlertFiring {
				out = append(out, fired(AlertChange{Scope: ScopeHost, Host: h.Name}, a))
			}
		}
	}
	return out
}

// DueReports returns the reports that must be written, each with a copy of its build.
func (s *Store) DueReports() []ReportJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	var jobs []ReportJob
	for id := range s.due {
		b := s.builds[id]
		if b == nil {
			delete(s.due, id)
			continue
		}
		if b.ReportDir == "" {
			b.ReportDir = s.namer.BuildDir(b.ID)
			s.markChanged(b)
		}
		var cp *Build
		for _, p := range b.Phases {
			if !p.Report.Due() {
				continue
			}
			if p.Report.File == "" {
				p.Report.File = s.namer.PhaseFile(p.Name)
				s.markChanged(b)
			}
			if cp == nil {
				cp = b.clone()
			}
			jobs = append(jobs, ReportJob{BuildID: b.ID, Phase: p.Name, Dir: b.ReportDir, File: p.Report.File, Version: p.Report.Version, Build: cp})
		}
		if b.Report.Due() {
			if b.Report.File == "" {
				b.Report.File = s.namer.BuildFile()
				s.markChanged(b)
			}
			if cp == nil {
				cp = b.clone()
			}
			jobs = append(jobs, ReportJob{BuildID: b.ID, Dir: b.ReportDir, File: b.Report.File, Version: b.Report.Version, Build: cp})
		}
	}
	slices.SortFunc(jobs, func(a, b ReportJob) int {
		if c := strings.Compare(a.BuildID, b.BuildID); c != 0 {
			return c
		}
		return strings.Compare(a.Phase, b.Phase)
	})
	return jobs
}

// ReportWritten records that a job's report was written with n bytes.
func (s *Store) ReportWritten(job ReportJob, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.builds[job.BuildID]
	if b == nil {
		return
	}
	mark := &b.Report
	if job.Phase != "" {
		mark = nil
		for _, p := range b.Phases {
			if p.Name == job.Phase {
				mark = &p.Report
			}
		}
		if mark == nil {
			return
		}
	}
	mark.Written = max(mark.Written, job.Version)
	s.reportBytes += n - mark.Bytes
	mark.Bytes = n
	s.markChanged(b)
	if !b.reportsDue() {
		delete(s.due, b.ID)
	}
}

func (b *Build) reportsDue() bool {
	if b.Report.Due() {
		return true
	}
	for _, p := range b.Phases {
		if p.Report.Due() {
			return true
		}
	}
	return false
}

// ReportLocation returns the folder and file of a written report of a build (phase "" for
// the build report); ok is false when the build is unknown, due is set when the report is
// due but not yet written.
func (s *Store) ReportLocation(id, phase string) (dir, file string, written, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.builds[id]
	if b == nil {
		return "", "", false, false
	}
	mark := &b.Report
	if phase != "" {
		mark = nil
		for _, p := range b.Phases {
			if p.Name == phase {
				mark = &p.Report
			}
		}
		if mark == nil {
			return "", "", false, false
		}
	}
	return b.ReportDir, mark.File, mark.Written > 0 && mark.File != "", true
}

// BuildCopy returns a deep copy of a build.
func (s *Store) BuildCopy(id string) (*Build, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.builds[id]
	if b == nil {
		return nil, false
	}
	return b.clone(), true
}

func (b *Build) clone() *Build {
	c := *b
	c.encoded = nil
	c.Phases = make([]*Phase, len(b.Phases))
	for i, p := range b.Phases {
		pc := *p
		pc.Issues = slices.Clone(p.Issues)
		pc.DroppedIssueKeys = slices.Clone(p.DroppedIssueKeys)
		c.Phases[i] = &pc
	}
	c.Alerts = make([]*Alert, len(b.Alerts))
	for i, a := range b.Alerts {
		ac := *a
		c.Alerts[i] = &ac
	}
	c.Issues = slices.Clone(b.Issues)
	c.DroppedIssueKeys = slices.Clone(b.DroppedIssueKeys)
	return &c
}

// snapshot is the checkpoint payload: JSON, see README.md.
type snapshot struct {
	Format     int                  `json:"format"`
	WrittenAt  int64                `json:"written_at"`
	Builds     []*Build             `json:"builds"`
	Hosts      []*Host              `json:"hosts"`
	Tombstones map[string]tombstone `json:"tombstones,omitempty"`
}

// Snapshot returns the state as a checkpoint payload (JSON) and the version it reflects, to
// pass to MarkWritten once the checkpoint is durable. Builds that did not change since the
// previous snapshot reuse their cached encoding; changed builds are copied under the lock
// and encoded outside it, so that the consume path waits only for the copies.
func (s *Store) Snapshot() ([]byte, uint64, error) {
	type pending struct {
		copy *Build
		rev  uint64
		enc  []byte
	}
	s.mu.Lock()
	version := s.version
	s.snapshotTouches = s.touches
	parts := make([][]byte, 0, len(s.builds))
	var todo []pending
	for _, b := range s.builds {
		if b.encoded != nil {
			parts = append(parts, b.encoded)
			continue
		}
		todo = append(todo, pending{copy: b.clone(), rev: b.rev})
	}
	hosts := make([]*Host, 0, len(s.hosts))
	for _, h := range s.hosts {
		hosts = append(hosts, h)
	}
	hostsJSON, err := json.Marshal(hosts)
	if err == nil {
		var tombs []byte
		tombs, err = json.Marshal(s.tombstones)
		hostsJSON = append(append(hostsJSON, `,"tombstones":`...), tombs...)
	}
	writtenAt := s.clock.Now().UnixNano()
	s.mu.Unlock()
	if err != nil {
		return nil, 0, fmt.Errorf("encoding hosts: %w", err)
	}

	for i := range todo {
		enc, err := json.Marshal(todo[i].copy)
		if err != nil {
			return nil, 0, fmt.Errorf("encoding build %q: %w", todo[i].copy.ID, err)
		}
		todo[i].enc = enc
		parts = append(parts, enc)
	}

	// Keep the encodings of builds that did not change meanwhile.
	s.mu.Lock()
	for _, t := range todo {
		if b := s.builds[t.copy.ID]; b != nil && b.rev == t.rev {
			b.encoded = t.enc
		}
	}
	s.mu.Unlock()

	size := 64 + len(hostsJSON)
	for _, p := range parts {
		size += len(p) + 1
	}
	var buf bytes.Buffer
	buf.Grow(size)
	buf.WriteString(`{"format":`)
	buf.WriteString(strconv.Itoa(FormatVersion))
	buf.WriteString(`,"written_at":`)
	buf.WriteString(strconv.FormatInt(writtenAt, 10))
	buf.WriteString(`,"builds":[`)
	for i, p := range parts {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(p)
	}
	buf.WriteString(`],"hosts":`)
	buf.Write(hostsJSON)
	buf.WriteByte('}')
	return buf.Bytes(), version, nil
}

// MarkWritten records that the checkpoint of a Snapshot at version is durable.
func (s *Store) MarkWritten(version uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if version > s.written {
		s.written = version
	}
	s.touchesWritten = max(s.touchesWritten, s.snapshotTouches)
}

// LoadTrimmed returns how many builds, hosts and tombstones the last Load left out because
// the checkpoint held more than MaxBuilds (it was written with a larger max_builds).
func (s *Store) LoadTrimmed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.trimmed
}

// Load replaces the state with a checkpoint payload after checking it against the bounds
// Apply keeps (bounds.go); a checkpoint that holds more is rejected.
func (s *Store) Load(payload []byte) error {
	var snap snapshot
	if err := json.Unmarshal(payload, &snap); err != nil {
		return fmt.Errorf("decoding checkpoint payload: %w", err)
	}
	if snap.Format != FormatVersion {
		return fmt.Errorf("checkpoint payload format %d, this version reads %d", snap.Format, FormatVersion)
	}
	if err := snap.validate(); err != nil {
		return err
	}
	trimmed := snap.trim(s.limits.MaxBuilds)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trimmed = trimmed
	s.builds = make(map[string]*Build, len(snap.Builds))
	s.hosts = make(map[string]*Host, len(snap.Hosts))
	s.running = map[string]map[string]*Build{}
	s.due = map[string]struct{}{}
	s.tombstones = snap.Tombstones
	if s.tombstones == nil {
		s.tombstones = map[string]tombstone{}
	}
	s.reportBytes = 0
	for _, b := range snap.Builds {
		if b == nil || b.ID == "" {
			continue
		}
		b.Phases = slices.DeleteFunc(b.Phases, func(p *Phase) bool { return p == nil })
		b.Alerts = slices.DeleteFunc(b.Alerts, func(a *Alert) bool { return a == nil })
		s.builds[b.ID] = b
		s.reindex(b, "", false)
		if b.reportsDue() {
			s.due[b.ID] = struct{}{}
		}
		s.reportBytes += b.reportBytes()
	}
	for _, h := range snap.Hosts {
		if h == nil || h.Name == "" {
			continue
		}
		h.Alerts = slices.DeleteFunc(h.Alerts, func(a *Alert) bool { return a == nil })
		s.hosts[h.Name] = h
	}
	s.version, s.written = 0, 0
	return nil
}
