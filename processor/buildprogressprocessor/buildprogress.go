package buildprogressprocessor // import "github.com/buildmon/buildmon/processor/buildprogressprocessor"

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.uber.org/zap"

	"github.com/buildmon/buildmon/internal/alerting"
	"github.com/buildmon/buildmon/internal/pdatacontract"
	"github.com/buildmon/buildmon/internal/progress"
	"github.com/buildmon/buildmon/internal/schema"
	"github.com/buildmon/buildmon/processor/buildprogressprocessor/internal/metadata"
)

// Field names used in logs.
const (
	attrBuildID  = schema.AttrRunID
	attrHostName = schema.AttrHostName
)

// buildProgressProcessor derives progress, ETA, per-phase resource usage and alert states
// from build and host metrics and appends them to the batch it passes on.
//
// processMetrics may be called concurrently by the pipeline; mu serializes it, so the state
// below is only ever touched by one batch at a time.
type buildProgressProcessor struct {
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	clock     alerting.Clock

	// Read-only after construction.
	weights        *progress.WeightTable
	engine         *alerting.Engine         // its scratch space is guarded by mu
	aliasRules     []*alerting.CompiledRule // the engine's rules that name an alias
	phaseResources bool
	expiry         time.Duration
	sweepInterval  time.Duration
	maxBuilds      int
	id             component.ID  // the processor's id (names its storage client)
	storageID      *component.ID // eta history storage extension, nil without

	mu        sync.Mutex
	builds    map[string]*buildState // by cicd.pipeline.run.id; guarded by mu
	lruHead   *buildState            // most recently seen build; guarded by mu
	lruTail   *buildState            // least recently seen build; guarded by mu
	hosts     map[string]*hostState  // by host.name; guarded by mu
	eta       etaHistory             // the pipelines' phase-duration history; guarded by mu
	lastSweep time.Time              // guarded by mu
	batch     uint64                 // counts processed batches; guarded by mu
	evicting  bool                   // max_builds reached and logged; guarded by mu

	// Per-batch state and scratch space, guarded by mu.
	now          time.Time // the clock's time when the batch arrived
	touched      []touchedResource
	pauseNotices []*buildState
	attrBuf      []byte // a data point's attributes as a series key (appendAttrs)
	attrKeys     []string
	expired      []alerting.Expired
}

// touchedResource is a ResourceMetrics of the batch the processor recognized.
type touchedResource struct {
	index    int
	build    *buildState
	host     *hostState
	upstream bool // it carries the scope of an upstream buildprogress processor
}

func newBuildProgressProcessor(set processor.Settings, cfg *Config, clock alerting.Clock) (*buildProgressProcessor, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	global := make(map[string]float64, len(cfg.Weights))
	for k, v := range cfg.Weights {
		global[k] = float64(v)
	}
	perPipeline := make(map[string]map[string]float64, len(cfg.Pipelines))
	for _, pc := range cfg.Pipelines {
		w := make(map[string]float64, len(pc.Weights))
		for k, v := range pc.Weights {
			w[k] = float64(v)
		}
		perPipeline[pc.Name] = w
	}
	p := &buildProgressProcessor{
		logger:         set.Logger,
		telemetry:      tb,
		clock:          clock,
		weights:        progress.NewWeightTable(global, perPipeline),
		phaseResources: cfg.PhaseResources.Enabled,
		expiry:         cfg.Expiry,
		sweepInterval:  min(max(cfg.Expiry/10, time.Second), time.Minute),
		maxBuilds:      cfg.MaxBuilds,
		id:             set.ID,
		storageID:      cfg.Storage,
		builds:         map[string]*buildState{},
		hosts:          map[string]*hostState{},
		eta:            newETAHistory(&cfg.ETA),
	}
	specs := make([]alerting.RuleSpec, len(cfg.Rules))
	for i := range cfg.Rules {
		specs[i] = cfg.Rules[i].spec()
	}
	if p.engine, err = alerting.NewEngine(specs); err != nil {
		tb.Shutdown()
		return nil, err
	}
	for _, r := range p.engine.Rules() {
		if r.Alias != "" {
			p.aliasRules = append(p.aliasRules, r)
		}
	}
	return p, nil
}

func (p *buildProgressProcessor) shutdown(ctx context.Context) error {
	err := p.stopHistoryStore(ctx)
	p.telemetry.Shutdown()
	return err
}

// processMetrics runs in three passes over the batch: it reads every build and host
// resource (updating progress and feeding alert windows), then appends the derived metrics
// to each recognized resource, then appends a resource for every build whose pause state
// changed without the build being in the batch.
func (p *buildProgressProcessor) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batch++
	p.now = now
	if now.Sub(p.lastSweep) >= p.sweepInterval {
		p.sweep(ctx, now)
	}

	rms := md.ResourceMetrics()
	p.touched = p.touched[:0]
	p.markUpstream(ctx, rms, now)
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		switch kind, key := pdatacontract.Classify(rm.Resource().Attributes()); kind {
		case pdatacontract.Build:
			b := p.ingestBuild(ctx, key, rm, now)
			b.batch, b.lastRM = p.batch, int32(i)
			p.touched = append(p.touched, touchedResource{index: i, build: b, upstream: upstreamScope(rm) >= 0})
		case pdatacontract.Host:
			if h := p.hosts[key]; upstreamScope(rm) >= 0 || (h != nil && h.upstream) {
				continue // host alerts stay with the processor next to the host (fleet.go)
			}
			h := p.ingestHost(ctx, key, rm, now)
			p.touched = append(p.touched, touchedResource{index: i, host: h})
		}
	}

	for _, t := range p.touched {
		rm := rms.At(t.index)
		switch {
		case t.build != nil && t.build.upstream:
			if t.upstream {
				p.emitUpstreamETA(rm, t.build, now)
			}
		case t.build != nil && t.build.lastRM == int32(t.index):
			p.emitBuild(rm, t.build, now)
		case t.host != nil:
			p.emitHost(rm, t.host, now)
		}
	}

	for _, b := range p.pauseNotices {
		if b.batch == p.batch || p.builds[b.id] != b || b.resource.Len() == 0 {
			continue // in the batch already, or forgotten meanwhile
		}
		p.emitPauseNotice(rms.AppendEmpty(), b, now)
	}
	clear(p.pauseNotices)
	p.pauseNotices = p.pauseNotices[:0]
	return md, nil
}

// notifyPause queues a pause notice for b (once per batch): its build.paused changed.
func (p *buildProgressProcessor) notifyPause(b *buildState) {
	if b.notified == p.batch+1 {
		return
	}
	// notified holds batch+1 so that the zero value never matches a batch.
	b.notified = p.batch + 1
	p.pauseNotices = append(p.pauseNotices, b)
}

// hostPauseChanged queues a pause notice for every running build on h: a CRITICAL alert of
// the host started or stopped firing.
func (p *buildProgressProcessor) hostPauseChanged(h *hostState) {
	for b := range h.builds {
		if b.running() {
			p.notifyPause(b)
		}
	}
}
