package hostscraper // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper"

import (
	"fmt"
	"regexp"
)

// nameFilter is a compiled MatchConfig.
type nameFilter struct{ include, exclude []*regexp.Regexp }

func newNameFilter(key string, m MatchConfig) (nameFilter, error) {
	var f nameFilter
	var err error
	if f.include, err = compileAll(key+".include", m.Include); err != nil {
		return f, err
	}
	f.exclude, err = compileAll(key+".exclude", m.Exclude)
	return f, err
}

func compileAll(key string, exprs []string) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(exprs))
	for i, e := range exprs {
		r, err := regexp.Compile(e)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: invalid regexp: %w", key, i, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// match reports whether name is selected: not excluded, and included when there is an
// include list.
func (f nameFilter) match(name string) bool {
	for _, r := range f.exclude {
		if r.MatchString(name) {
			return false
		}
	}
	if len(f.include) == 0 {
		return true
	}
	for _, r := range f.include {
		if r.MatchString(name) {
			return true
		}
	}
	return false
}

// typeFilter selects filesystem types by exact name.
type typeFilter struct{ include, exclude map[string]bool }

func newTypeFilter(include, exclude []string) typeFilter {
	f := typeFilter{include: map[string]bool{}, exclude: map[string]bool{}}
	for _, t := range include {
		f.include[t] = true
	}
	for _, t := range exclude {
		f.exclude[t] = true
	}
	return f
}

func (f typeFilter) match(fstype string) bool {
	if f.exclude[fstype] {
		return false
	}
	return len(f.include) == 0 || f.include[fstype]
}

// counterSet keeps, for the disks or interfaces of one reading, the names, whether each passed
// the filter (so each regexp runs once per name, not once per scrape) and the counters of the
// previous read (for rates). It holds the names of the last two reads only: a name that
// disappears is forgotten.
type counterSet struct {
	filter nameFilter
	// cur holds the names of the read in progress, prev those of the previous read.
	cur, prev map[string]counterEntry
}

// counterEntry is one device or interface.
type counterEntry struct {
	name string
	keep bool
	// last holds the counters of the previous read when hasLast is set.
	last    ioCounters
	hasLast bool
}

// ioCounters are cumulative counters: bytes and operations read and written (received and
// transmitted for interfaces, which have no operations).
type ioCounters struct {
	readBytes, writeBytes uint64
	readOps, writeOps     uint64
}

func newCounterSet(f nameFilter) *counterSet {
	return &counterSet{filter: f, cur: map[string]counterEntry{}, prev: map[string]counterEntry{}}
}

// lookup returns the entry of name as the previous read left it; a new name is matched
// against the filter once.
func (s *counterSet) lookup(name string) counterEntry {
	if e, ok := s.cur[name]; ok {
		return e
	}
	if e, ok := s.prev[name]; ok {
		return e
	}
	return counterEntry{name: name, keep: s.filter.match(name)}
}

// store records the entry as read now.
func (s *counterSet) store(e counterEntry) { s.cur[e.name] = e }

// rotate ends a complete read: its entries become the previous ones.
func (s *counterSet) rotate() {
	s.prev, s.cur = s.cur, s.prev
	clear(s.cur)
}

// discard ends a failed read: the previous entries stay for the next one.
func (s *counterSet) discard() { clear(s.cur) }
