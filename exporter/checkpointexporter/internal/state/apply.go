package state

// Reducing observations of builds and their phases into the state.

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
		s.enqueue(b)
		c.any, c.value = true, true
	}
	oldHost, wasRunning := b.Host, !b.finished()
	oldKey := b.evictKey()
	changed, ignored := mergeResource(&b.Resource, o.Resource)
	res.Ignored += ignored
	c.track(true, changed)
	if oldHost != "" && b.Host != oldHost {
		// What the old host spent is no measure of the phases on the new one.
		stopUsage(b)
	}

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
	noteField(&c, &b.ETASource, o.ETASource)
	noteField(&c, &b.Paused, o.Paused)
	noteField(&c, &b.Start, o.Start)
	if b.notePredictions() {
		c.any = true
	}

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
	if justFinished {
		// After its phases, so that a phase that ended with the build is attributed.
		stopUsage(b)
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
	s.requeue(b, oldKey)
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
		case p.State.V == PhaseRunning:
			p.EndedAt = 0
			s.startUsage(b, p)
		case phaseEnded(p.State.V):
			p.EndedAt = p.State.T
			endedNow = true
			res.Urgent = true
			if s.endUsage(b, p) {
				c.any, c.value = true, true
			}
			if p.State.V == PhaseFailed {
				failure := Issue{Kind: IssueFailure, Phase: p.Name, FirstSeen: p.State.T, LastSeen: p.State.T}
				p.issueLog().add(failure)
				b.issueLog().add(failure)
			}
		default:
			p.EndedAt = 0
			p.usage = nil
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

func (r *ApplyResult) addChanges(c ...AlertChange) { r.Changes = append(r.Changes, c...) }
