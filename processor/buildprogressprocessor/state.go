package buildprogressprocessor // import "github.com/buildmon/buildmon/processor/buildprogressprocessor"

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/zap"

	"github.com/buildmon/buildmon/internal/alerting"
	"github.com/buildmon/buildmon/internal/progress"
)

// series is one rule's window and alert for one resource and attribute set.
type series struct {
	rule     *compiledRule
	attrs    string // its data point attributes, "k=v" joined by commas (part of its key; logged)
	win      alerting.Window
	alert    alerting.Alert
	lastSeen time.Time // clock time of the newest value
}

// shownAlert is what build.alert.active last reported as 1 for one rule on one resource.
type shownAlert struct {
	level alerting.Level // None: nothing shown
	state alerting.State
}

// indexedSeries is the number of series from which an alertSet indexes them by key; below
// it a linear search over the few series of a build or a host is faster than a map.
const indexedSeries = 16

// alertSet holds the alert series of one resource (a build or a host).
type alertSet struct {
	// series in creation order, created on a rule's first value. Pointers into it are valid
	// until the next series is added or removed.
	series []series
	// index maps series keys (seriesKey) to positions in series; nil while there are fewer
	// than indexedSeries.
	index map[string]int
	// shown is indexed by rule; nil until an alert of this resource has been shown.
	shown []shownAlert
	// critical counts the series firing at CRITICAL.
	critical int32
	// notifying counts the series that emitAlerts shows (pending or firing at WARNING or
	// above), so that a resource without any skips the walk over its series.
	notifying int32
}

// find returns the series of rule r with key (seriesKey), or nil.
func (set *alertSet) find(r *compiledRule, key []byte) *series {
	if set.index != nil {
		if i, ok := set.index[string(key)]; ok {
			return &set.series[i]
		}
		return nil
	}
	attrs := key[2:]
	for i := range set.series {
		if s := &set.series[i]; s.rule == r && s.attrs == string(attrs) {
			return s
		}
	}
	return nil
}

// add adds a series of rule r with key (seriesKey) and returns it.
func (set *alertSet) add(r *compiledRule, key []byte) *series {
	set.series = append(set.series, series{rule: r, attrs: string(key[2:]), win: r.NewWindow()})
	n := len(set.series)
	switch {
	case set.index != nil:
		set.index[string(key)] = n - 1
	case n >= indexedSeries:
		set.reindex()
	}
	return &set.series[n-1]
}

// reindex rebuilds the index after series were added or removed.
func (set *alertSet) reindex() {
	if len(set.series) < indexedSeries {
		set.index = nil
		return
	}
	set.index = make(map[string]int, len(set.series))
	var key []byte
	for i := range set.series {
		key = appendSeriesKey(key[:0], set.series[i].rule, set.series[i].attrs)
		set.index[string(key)] = i
	}
}

// notifies reports whether an alert in that state and level is shown in telemetry.
func notifies(state alerting.State, level alerting.Level) bool {
	return (state == alerting.Pending || state == alerting.Firing) && level.Notifies()
}

// phaseUsage accumulates a host's resource use while one phase runs.
type phaseUsage struct {
	cpuSum, cpuMax float64
	cpuN           int
	memMax         int64
	memSeen        bool
	start          hostTotals // the host's totals when the phase started
	samples        uint64     // the host's sample count when the phase started
}

// phaseReport is a finished phase's resource use, emitted with the build's next metrics.
type phaseReport struct {
	phase                   string
	cpuAvg, cpuMax          float64
	memMax                  int64
	disk, net, ops          [2]int64
	hasCPU, hasMem          bool
	hasDisk, hasNet, hasOps bool
}

// buildState is what the processor knows about one build.
type buildState struct {
	alertSet
	id       string
	pipeline string
	resource pcommon.Map // the build's last seen resource attributes
	host     *hostState

	progress progress.Build
	usage    []*phaseUsage // per phase (index as in progress.Phases) while it runs
	reports  []phaseReport

	// Results of the newest computation.
	overall       float64
	phaseProgress []float64
	eta           time.Duration
	etaKnown      bool

	// The booleans and lastRM sit together to keep the struct within its size class.
	hasElapsed bool
	recorded   bool  // its duration went into the pipeline history
	lastRM     int32 // index of its last ResourceMetrics in the batch it was last seen in

	elapsed   time.Duration // from build.duration
	firstSeen time.Time
	lastSeen  time.Time
	result    string

	batch    uint64 // the batch in which the build was last seen
	notified uint64 // the batch in which a pause notice was added for it

	prev, next *buildState // LRU list, most recently seen first
}

func (b *buildState) running() bool { return !b.progress.Finished }

// paused reports whether a CRITICAL alert on the build or its host pauses the build.
func (b *buildState) paused() bool {
	return b.running() && (b.critical > 0 || (b.host != nil && b.host.critical > 0))
}

// hostTotals are a host's cumulative byte and operation counts summed from the increments
// of its per-device counters, so counter resets and new devices do not distort deltas.
type hostTotals struct {
	disk, net, ops [2]int64 // [read|transmit, write|receive]
}

// counterKey identifies one cumulative counter of a host.
type counterKey struct {
	metric uint8 // 0 disk.io, 1 network.io, 2 disk.operations
	dir    uint8
	device string
}

// hostState is what the processor knows about one host.
type hostState struct {
	alertSet
	name     string
	builds   map[*buildState]struct{} // builds whose resource names this host
	lastSeen time.Time

	// Phase resource attribution (only with phase_resources.enabled).
	counters map[counterKey]int64
	totals   hostTotals
	samples  uint64
	hasDisk  bool
	hasNet   bool
	hasOps   bool
}

// pipelineHistory holds the durations of a pipeline's earlier successful runs.
type pipelineHistory struct {
	runs     *progress.History
	lastUsed time.Time
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
		if p.expireSeries(&b.alertSet, cutoff, zap.String(attrBuildID, b.id)) {
			p.notifyPause(b)
		}
	}
	for name, h := range p.hosts {
		if p.expireSeries(&h.alertSet, cutoff, zap.String(attrHostName, h.name)) {
			p.hostPauseChanged(h)
		}
		if len(h.builds) == 0 && len(h.series) == 0 && h.lastSeen.Before(cutoff) {
			delete(p.hosts, name)
		}
	}
	p.lastSweep = now
}

// expireSeries drops the series of set that saw no value since cutoff; it reports whether
// the set stopped having a CRITICAL alert firing.
func (p *buildProgressProcessor) expireSeries(set *alertSet, cutoff time.Time, owner zap.Field) bool {
	hadCritical := set.critical > 0
	kept := set.series[:0]
	for i := range set.series {
		s := &set.series[i]
		if !s.lastSeen.Before(cutoff) {
			kept = append(kept, *s)
			continue
		}
		if s.alert.State == alerting.Firing || s.alert.State == alerting.Pending {
			p.logger.Info("alert series expired without data", owner,
				zap.String("rule", s.rule.Name), zap.String("attributes", s.attrs),
				zap.String("state", s.alert.State.String()), zap.String("level", s.alert.Level.String()))
		}
		if s.alert.State == alerting.Firing && s.alert.Level == alerting.Critical {
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
	return hadCritical && set.critical == 0
}
