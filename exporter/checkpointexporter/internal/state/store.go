package state

import (
	"sync"
	"time"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
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
	// evict orders the builds for eviction; tombQueue the tombstones by removal time
	// (eviction.go).
	evict     evictionQueue
	tombQueue tombQueue
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
