package state

import (
	"slices"
	"strings"
)

// Alerts: the processor's alert series reduced into each build's and host's alert list, and
// the changes notifiers act on.

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

func (h *Host) alert(rule string) *Alert {
	for _, a := range h.Alerts {
		if a.Rule == rule {
			return a
		}
	}
	return nil
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
