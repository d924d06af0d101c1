package state

import "container/heap"

// Retention: the running index, eviction within MaxBuilds, tombstones and expiry.

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

type tombstone struct {
	UpdatedAt int64 `json:"updated_at"`
	RemovedAt int64 `json:"removed_at"`
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
	for len(s.builds) >= s.limits.MaxBuilds && len(s.evict) > 0 {
		s.remove(s.nextToEvict(), now, res.addChanges)
		evicted++
	}
	return evicted
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
	if b.evictIndex >= 0 && b.evictIndex < len(s.evict) && s.evict[b.evictIndex] == b {
		heap.Remove(&s.evict, b.evictIndex)
	}
	s.addTombstone(b.ID, tombstone{UpdatedAt: b.UpdatedAt, RemovedAt: now})
	s.version++
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
