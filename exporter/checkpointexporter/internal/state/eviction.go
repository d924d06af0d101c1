package state

import "container/heap"

// Ordered structures for eviction, so that a new build arriving at MaxBuilds costs
// O(log n) instead of a scan of every build and every tombstone.

// evictionQueue is a binary heap of the builds held, ordered by the key each build was queued
// with (queuedKey, then id). Each build knows its position (Build.evictIndex).
//
// Keys mostly grow (a running build's ObservedAt is the exporter's clock at its last
// change), and a build changes far more often than one is evicted, so a key that grows is
// not re-sorted at once: the queue keeps the old, smaller key, and nextToEvict re-sorts a
// build when it comes up with a stale key. A key that shrinks (a build finishes: finished
// builds go first; a clock that went back) is re-sorted at once. So every queued key is at
// most the build's real key, and a build that comes up with its real key is the one the
// scan over all builds (evictBefore) would choose.
type evictionQueue []*Build

func (q evictionQueue) Len() int { return len(q) }
func (q evictionQueue) Less(i, j int) bool {
	if q[i].queuedKey != q[j].queuedKey {
		return keyLess(q[i].queuedKey, q[j].queuedKey)
	}
	return q[i].ID < q[j].ID
}
func (q evictionQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].evictIndex, q[j].evictIndex = i, j
}

func (q *evictionQueue) Push(x any) {
	b := x.(*Build)
	b.evictIndex = len(*q)
	*q = append(*q, b)
}

func (q *evictionQueue) Pop() any {
	old := *q
	b := old[len(old)-1]
	old[len(old)-1] = nil
	b.evictIndex = -1
	*q = old[:len(old)-1]
	return b
}

// evictBefore orders eviction candidates: finished before running, then oldest first
// (finished: when the exporter saw it finish; running: when it last changed), then by id so
// that equal times evict in a fixed order.
func evictBefore(a, b *Build) bool {
	ka, kb := a.evictKey(), b.evictKey()
	if ka != kb {
		return keyLess(ka, kb)
	}
	return a.ID < b.ID
}

func keyLess(a, b [2]int64) bool { return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1]) }

// enqueue adds a new build to the eviction queue.
func (s *Store) enqueue(b *Build) {
	b.queuedKey = b.evictKey()
	heap.Push(&s.evict, b)
}

// requeue keeps the queue in step after a build changed from oldKey: a smaller key is
// re-sorted now, a larger one when the build comes up (nextToEvict).
func (s *Store) requeue(b *Build, oldKey [2]int64) {
	if k := b.evictKey(); k != oldKey && keyLess(k, b.queuedKey) {
		b.queuedKey = k
		heap.Fix(&s.evict, b.evictIndex)
	}
}

// nextToEvict returns the build to evict next; the queue must not be empty.
func (s *Store) nextToEvict() *Build {
	for {
		top := s.evict[0]
		k := top.evictKey()
		if k == top.queuedKey {
			return top
		}
		top.queuedKey = k
		heap.Fix(&s.evict, 0)
	}
}

// evictKey is what evictBefore orders on, apart from the id.
func (b *Build) evictKey() [2]int64 {
	if b.finished() {
		return [2]int64{0, b.FinishedObservedAt}
	}
	return [2]int64{1, b.ObservedAt}
}

// tombEntry is a tombstone in the tombstone queue.
type tombEntry struct {
	id        string
	removedAt int64
}

// tombQueue is a binary heap of tombstones, the oldest removal first. Entries are not
// removed when their tombstone goes another way (a build comes back, expiry): an entry whose
// tombstone is gone or newer is skipped when it comes up, and the queue is rebuilt when such
// entries outnumber the live ones.
type tombQueue []tombEntry

func (q tombQueue) Len() int { return len(q) }
func (q tombQueue) Less(i, j int) bool {
	if q[i].removedAt != q[j].removedAt {
		return q[i].removedAt < q[j].removedAt
	}
	return q[i].id < q[j].id
}
func (q tombQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *tombQueue) Push(x any)   { *q = append(*q, x.(tombEntry)) }
func (q *tombQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// addTombstone records that a build was removed, and drops the oldest tombstone past
// MaxBuilds.
func (s *Store) addTombstone(id string, t tombstone) {
	s.tombstones[id] = t
	heap.Push(&s.tombQueue, tombEntry{id: id, removedAt: t.RemovedAt})
	if s.limits.MaxBuilds > 0 && len(s.tombstones) > s.limits.MaxBuilds {
		for s.tombQueue.Len() > 0 {
			e := heap.Pop(&s.tombQueue).(tombEntry)
			if live, ok := s.tombstones[e.id]; ok && live.RemovedAt == e.removedAt {
				delete(s.tombstones, e.id)
				break
			}
		}
	}
	if s.tombQueue.Len() > 2*len(s.tombstones)+64 {
		s.rebuildTombQueue()
	}
}

// rebuildTombQueue makes the tombstone queue hold exactly the live tombstones.
func (s *Store) rebuildTombQueue() {
	q := make(tombQueue, 0, len(s.tombstones))
	for id, t := range s.tombstones {
		q = append(q, tombEntry{id: id, removedAt: t.RemovedAt})
	}
	heap.Init(&q)
	s.tombQueue = q
}

// rebuildEvictionQueue makes the eviction queue hold exactly the builds (after Load).
func (s *Store) rebuildEvictionQueue() {
	q := make(evictionQueue, 0, len(s.builds))
	for _, b := range s.builds {
		q = append(q, b)
	}
	for i, b := range q {
		b.evictIndex, b.queuedKey = i, b.evictKey()
	}
	heap.Init(&q)
	s.evict = q
}
