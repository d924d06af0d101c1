package alerting

import "time"

// Series is one rule's window and alert for one resource and attribute set.
type Series struct {
	rule     *CompiledRule
	attrs    string // its data point attributes, "k=v" joined by commas (part of its key)
	win      Window
	alert    Alert
	lastSeen time.Time // clock time of the newest value
}

// Rule returns the rule the series belongs to.
func (s *Series) Rule() *CompiledRule { return s.rule }

// Attrs returns the series' data point attributes as the caller gave them to Observe.
func (s *Series) Attrs() string { return s.attrs }

// Alert returns the series' alert.
func (s *Series) Alert() Alert { return s.alert }

// LastSeen returns the clock time of the series' newest value.
func (s *Series) LastSeen() time.Time { return s.lastSeen }

// indexedSeries is the number of series from which a Set indexes them by key; below it a
// linear search over the few series of a build or a host is faster than a map.
const indexedSeries = 16

// Set holds the alert series of one resource (a build or a host). The zero Set is empty and
// ready to use. A Set belongs to one Engine, whose rules its series refer to.
type Set struct {
	// series in creation order, created on a rule's first value. Pointers into it are valid
	// until the next series is added or removed.
	series []Series
	// index maps series keys (appendSeriesKey) to positions in series; nil while there are
	// fewer than indexedSeries.
	index map[string]int
	// shown is indexed by rule: what the last Display showed; nil while it showed nothing.
	shown []Shown
	// critical counts the series firing at CRITICAL.
	critical int32
	// notifying counts the series that Display shows (pending or firing at WARNING or
	// above), so that a resource without any skips the walk over its series.
	notifying int32
}

// Len returns the number of series in the set.
func (set *Set) Len() int { return len(set.series) }

// Pausing reports whether a CRITICAL alert of the set is firing: the builds it applies to
// are asked to pause.
func (set *Set) Pausing() bool { return set.critical > 0 }

// appendSeriesKey appends the key of rule index's series with attributes attrs to key: two
// bytes of rule index, then attrs.
func appendSeriesKey[T string | []byte](key []byte, index int, attrs T) []byte {
	key = append(key, byte(index>>8), byte(index))
	return append(key, attrs...)
}

// find returns the series of rule r with attributes attrs, or nil. keyBuf is scratch space
// for the index key.
func (set *Set) find(r *CompiledRule, attrs []byte, keyBuf *[]byte) *Series {
	if set.index != nil {
		*keyBuf = appendSeriesKey((*keyBuf)[:0], r.Index, attrs)
		if i, ok := set.index[string(*keyBuf)]; ok {
			return &set.series[i]
		}
		return nil
	}
	for i := range set.series {
		if s := &set.series[i]; s.rule == r && s.attrs == string(attrs) {
			return s
		}
	}
	return nil
}

// add adds a series of rule r with attributes attrs and returns it.
func (set *Set) add(r *CompiledRule, attrs []byte, keyBuf *[]byte) *Series {
	set.series = append(set.series, Series{rule: r, attrs: string(attrs), win: r.NewWindow()})
	n := len(set.series)
	switch {
	case set.index != nil:
		*keyBuf = appendSeriesKey((*keyBuf)[:0], r.Index, attrs)
		set.index[string(*keyBuf)] = n - 1
	case n >= indexedSeries:
		set.reindex()
	}
	return &set.series[n-1]
}

// reindex rebuilds the index after series were added or removed.
func (set *Set) reindex() {
	if len(set.series) < indexedSeries {
		set.index = nil
		return
	}
	set.index = make(map[string]int, len(set.series))
	var key []byte
	for i := range set.series {
		key = appendSeriesKey(key[:0], set.series[i].rule.Index, set.series[i].attrs)
		set.index[string(key)] = i
	}
}

// notifies reports whether an alert in that state and level is shown by Display.
func notifies(state State, level Level) bool {
	return (state == Pending || state == Firing) && level.Notifies()
}

// critical reports whether an alert in that state and level pauses builds.
func critical(state State, level Level) bool {
	return state == Firing && level.Pauses()
}

// PauseChange says whether an operation on a Set changed whether it pauses builds.
type PauseChange uint8

// Pause changes.
const (
	PauseUnchanged PauseChange = iota
	// PauseStarted: the set's first CRITICAL alert started firing (0 → 1).
	PauseStarted
	// PauseStopped: the set's last CRITICAL alert stopped firing or expired (1 → 0).
	PauseStopped
)

var pauseChangeNames = [...]string{"unchanged", "started", "stopped"}

// String returns unchanged, started or stopped.
func (p PauseChange) String() string {
	if int(p) < len(pauseChangeNames) {
		return pauseChangeNames[p]
	}
	return "unknown"
}

// Changed reports whether the pause state changed.
func (p PauseChange) Changed() bool { return p != PauseUnchanged }

// Expired is a series that Expire dropped, as it was.
type Expired struct {
	Rule  *CompiledRule
	Attrs string
	Alert Alert
}

// Expire drops the series that saw no value since cutoff, appending each to dst, and
// reports PauseStopped when the set no longer has a CRITICAL alert firing because of it.
// An expired alert is forgotten, not resolved: the series starts inactive if values come
// back.
func (set *Set) Expire(cutoff time.Time, dst []Expired) ([]Expired, PauseChange) {
	hadCritical := set.critical > 0
	kept := set.series[:0]
	for i := range set.series {
		s := &set.series[i]
		if !s.lastSeen.Before(cutoff) {
			kept = append(kept, *s)
			continue
		}
		dst = append(dst, Expired{Rule: s.rule, Attrs: s.attrs, Alert: s.alert})
		if critical(s.alert.State, s.alert.Level) {
			set.critical--
		}
		if notifies(s.alert.State, s.alert.Level) {
			set.notifying--
		}
	}
	if len(kept) < len(set.series) {
		clear(set.series[len(kept):])
		set.series = kept
		if len(kept) == 0 {
			set.series = nil
		}
		set.reindex()
	}
	if hadCritical && set.critical == 0 {
		return dst, PauseStopped
	}
	return dst, PauseUnchanged
}

// worse reports whether series a outranks b for display: firing over pending, then the
// higher level, then the value further past the thresholds.
func worse(a, b *Series) bool {
	if b == nil {
		return true
	}
	if a.alert.State != b.alert.State {
		return a.alert.State == Firing
	}
	if a.alert.Level != b.alert.Level {
		return a.alert.Level > b.alert.Level
	}
	if a.rule.Direction == Below {
		return a.alert.Value < b.alert.Value
	}
	return a.alert.Value > b.alert.Value
}
