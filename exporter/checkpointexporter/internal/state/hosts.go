package state

// Hosts: their latest utilization and alerts.

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
	s.attributeHost(h, o)
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
