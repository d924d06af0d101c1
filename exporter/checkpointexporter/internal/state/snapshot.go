package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// Checkpoints: the state encoded as a payload and loaded back.

// FormatVersion is the version of the checkpoint payload written by Snapshot.
const FormatVersion = 1

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
		pc.usage = nil // the store's, still accumulating
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
	s.rebuildEvictionQueue()
	s.rebuildTombQueue()
	s.version, s.written = 0, 0
	return nil
}
