package buildprogressprocessor // import "github.com/buildmon/buildmon/processor/buildprogressprocessor"

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/zap"

	"github.com/buildmon/buildmon/internal/alerting"
	"github.com/buildmon/buildmon/internal/hostusage"
	"github.com/buildmon/buildmon/internal/phaseusage"
	"github.com/buildmon/buildmon/internal/progress"
)

// phaseReport is a finished phase's resource use, emitted with the build's next metrics.
type phaseReport struct {
	phase string
	phaseusage.Usage
}

// buildState is what the processor knows about one build.
type buildState struct {
	alerts   alerting.Set
	id       string
	pipeline string
	resource pcommon.Map // the build's last seen resource attributes
	host     *hostState

	progress progress.Build
	usage    []*phaseusage.Phase // per phase (index as in progress.Phases) while it runs
	timing   []phaseTiming       // per phase (index as in progress.Phases): its durations
	hist     buildETA            // what the history estimate keeps per build (eta.go)
	reports  []phaseReport

	// Results of the newest computation.
	overall       float64
	phaseProgress []float64
	eta           time.Duration
	etaKnown      bool

	// The booleans and lastRM sit together to keep the struct within its size class.
	hasElapsed bool
	upstream   bool  // an upstream buildprogress processor derives its alerts, pause and phase resources
	lastRM     int32 // index of its last ResourceMetrics in the batch it was last seen in

	elapsed   time.Duration // from build.duration
	firstSeen time.Time
	lastSeen  time.Time
	result    string

	batch    uint64 // the batch in which the build was last seen
	notified uint64 // the batch in which a pause notice was added for it
	stamp    stamp  // the time of its last derived points

	prev, next *buildState // LRU list, most recently seen first
}

func (b *buildState) running() bool { return !b.progress.Finished }

// paused reports whether a CRITICAL alert on the build or its host pauses the build.
func (b *buildState) paused() bool {
	return b.running() && (b.alerts.Pausing() || (b.host != nil && b.host.alerts.Pausing()))
}

// hostState is what the processor knows about one host.
type hostState struct {
	alerts   alerting.Set
	name     string
	builds   map[*buildState]struct{} // builds whose resource names this host
	lastSeen time.Time
	stamp    stamp // the time of its last derived points
	upstream bool  // processed by an upstream buildprogress processor: its alerts are that one's

	// usage reads the host's metrics (alert aliases, phase resource attribution); samples
	// counts the host resources read, so that a phase knows whether any arrived while it ran.
	usage   hostusage.Host
	samples uint64
}

// lruPushFront makes b the most recently seen build.
func (p *buildProgressProcessor) lruPushFront(b *buildState) {
	if p.lruHead == b {
		return
	}
	p.lruUnlink(b)
	b.next = p.lruHead
	if p.lruHead != nil {
		p.lruHead.prev = b
	}
	p.lruHead = b
	if p.lruTail == nil {
		p.lruTail = b
	}
}

func (p *buildProgressProcessor) lruUnlink(b *buildState) {
	if b.prev != nil {
		b.prev.next = b.next
	}
	if b.next != nil {
		b.next.prev = b.prev
	}
	if p.lruHead == b {
		p.lruHead = b.next
	}
	if p.lruTail == b {
		p.lruTail = b.prev
	}
	b.prev, b.next = nil, nil
}

// buildFor returns the state of build id, creating it (and dropping the least recently seen
// build when max_builds is reached).
func (p *buildProgressProcessor) buildFor(ctx context.Context, id string, now time.Time) *buildState {
	if b, ok := p.builds[id]; ok {
		return b
	}
	if len(p.builds) >= p.maxBuilds && p.lruTail != nil {
		victim := p.lruTail
		if !p.evicting {
			p.logger.Warn("max_builds reached: forgetting the least recently seen builds",
				zap.Int("max_builds", p.maxBuilds), zap.String("build", victim.id))
			p.evicting = true
		}
		p.telemetry.ProcessorBuildprogressBuildsEvicted.Add(ctx, 1)
		p.removeBuild(ctx, victim)
	} else if len(p.builds) < p.maxBuilds*9/10 {
		p.evicting = false
	}
	b := &buildState{id: strings.Clone(id), resource: pcommon.NewMap(), firstSeen: now}
	p.builds[b.id] = b
	p.telemetry.ProcessorBuildprogressBuildsTracked.Add(ctx, 1)
	return b
}

// removeBuild forgets a build.
func (p *buildProgressProcessor) removeBuild(ctx context.Context, b *buildState) {
	p.lruUnlink(b)
	delete(p.builds, b.id)
	if b.host != nil {
		delete(b.host.builds, b)
		b.host = nil
	}
	p.telemetry.ProcessorBuildprogressBuildsTracked.Add(ctx, -1)
}

// hostFor returns the state of host name, creating it.
func (p *buildProgressProcessor) hostFor(name string) *hostState {
	if h, ok := p.hosts[name]; ok {
		return h
	}
	h := &hostState{name: strings.Clone(name), builds: map[*buildState]struct{}{}}
	p.hosts[h.name] = h
	return h
}

// attachHost records that build b runs on host name.
func (p *buildProgressProcessor) attachHost(b *buildState, name string, now time.Time) {
	if b.host != nil && b.host.name == name {
		b.host.lastSeen = now
		return
	}
	if b.host != nil {
		delete(b.host.builds, b)
		b.host = nil
	}
	if name == "" {
		return
	}
	h := p.hostFor(name)
	h.builds[b] = struct{}{}
	h.lastSeen = now
	b.host = h
}

// sweep forgets builds and hosts that sent nothing for expiry and alert series that saw no
// value for expiry. It runs from processMetrics at most every sweepInterval.
func (p *buildProgressProcessor) sweep(ctx context.Context, now time.Time) {
	cutoff := now.Add(-p.expiry)
	for b := p.lruTail; b != nil && b.lastSeen.Before(cutoff); b = p.lruTail {
		p.removeBuild(ctx, b)
	}
	for _, b := range p.builds {
		if p.expireSeries(&b.alerts, cutoff, zap.String(attrBuildID, b.id)) {
			p.notifyPause(b)
		}
	}
	for name, h := range p.hosts {
		if p.expireSeries(&h.alerts, cutoff, zap.String(attrHostName, h.name)) {
			p.hostPauseChanged(h)
		}
		if len(h.builds) == 0 && h.alerts.Len() == 0 && h.lastSeen.Before(cutoff) {
			delete(p.hosts, name)
		}
	}
	p.lastSweep = now
}

// expireSeries drops the series of set that saw no value since cutoff, logging those that
// were pending or firing; it reports whether the set stopped having a CRITICAL alert firing.
func (p *buildProgressProcessor) expireSeries(set *alerting.Set, cutoff time.Time, owner zap.Field) bool {
	var pause alerting.PauseChange
	p.expired, pause = set.Expire(cutoff, p.expired[:0])
	for i := range p.expired {
		e := &p.expired[i]
		if e.Alert.State == alerting.Firing || e.Alert.State == alerting.Pending {
			p.logger.Info("alert series expired without data", owner,
				zap.String("rule", e.Rule.Name), zap.String("attributes", e.Attrs),
				zap.String("state", e.Alert.State.String()), zap.String("level", e.Alert.Level.String()))
		}
	}
	clear(p.expired)
	return pause == alerting.PauseStopped
}

// stamp is the time of a resource's derived points: the batch's time, but at least a
// millisecond after the resource's previous points. Prometheus keeps milliseconds and refuses
// a second value of a series at a time it already has (remote write then drops the whole
// request), and two batches naming one build or host can be handled within a millisecond.
// Per resource, the points run ahead of the clock only while that resource arrives more
// often than once a millisecond.
type stamp pcommon.Timestamp

// next returns the time of the resource's points in a batch handled at now.
func (s *stamp) next(now time.Time) pcommon.Timestamp {
	ts := pcommon.NewTimestampFromTime(now)
	if least := pcommon.Timestamp(*s) + pcommon.Timestamp(time.Millisecond); *s != 0 && ts < least {
		ts = least
	}
	*s = stamp(ts)
	return ts
}
