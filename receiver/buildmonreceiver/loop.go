package buildmonreceiver // import "github.com/buildmon/buildmon/receiver/buildmonreceiver"

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"
)

// minEmitGap spaces the emissions that requests trigger: the first change is emitted at once,
// changes during the following minEmitGap together after it. Under load this turns hundreds of
// emissions of the same builds per second into a few, at a latency far below report_interval.
const minEmitGap = 50 * time.Millisecond

// emitChunk is the most builds one ConsumeMetrics call carries (about 20 data points each).
const emitChunk = 500

// loop emits changed builds soon after a request changes them and every build each
// report_interval, when it also expires finished builds.
func (r *buildmonReceiver) loop() {
	defer close(r.loopDone)
	ticker := time.NewTicker(r.cfg.ReportInterval)
	defer ticker.Stop()
	ctx := context.Background()
	var gap <-chan time.Time // set while the loop waits out minEmitGap after an emission
	pending := false         // a change arrived during the gap
	ticks := 0               // report ticks since every build was emitted
	emitChanged := func() {
		r.emit(ctx, r.registry.TakeDirty())
		gap, pending = time.After(minEmitGap), false
	}
	for {
		select {
		case <-r.done:
			r.persist(ctx)
			r.emit(ctx, r.registry.TakeDirty())
			return
		case <-r.wake:
			if gap != nil {
				pending = true
				continue
			}
			emitChanged()
		case <-gap:
			gap = nil
			if pending {
				emitChanged()
			}
		case <-ticker.C:
			if n := r.registry.Expire(r.now()); n > 0 {
				r.set.Logger.Debug("finished builds expired", zap.Int("builds", n))
			}
			r.persist(ctx)
			// While self-protection slows the re-emission, every build is emitted only every
			// report_interval_stretch ticks; changed builds still go at once (wake).
			ticks++
			if ticks < r.reportStretch() {
				r.emit(ctx, r.registry.TakeDirty())
				continue
			}
			ticks = 0
			r.emit(ctx, r.registry.All())
			r.emitProtection(ctx, time.Now())
		}
	}
}

// persist writes what the registry marked unsaved (expired builds, restored builds to
// rewrite) outside of requests; a failed write is retried with the next one.
func (r *buildmonReceiver) persist(ctx context.Context) {
	if !r.persistent {
		return
	}
	if err := r.write(ctx, nil); err != nil && !errors.Is(err, errStoreClosed) {
		r.set.Logger.Error("persisting the build registry failed; retried with the next write", zap.Error(err))
	}
}

// emit sends the builds' metrics and the finished spans to the pipelines. A consumer error is
// logged; the registry is the source of truth and the next emission carries the state again.
func (r *buildmonReceiver) emit(ctx context.Context, changes []events.Change) {
	spans := r.sampleSpans(ctx, r.registry.TakeSpans())
	// Builds go down the pipeline in chunks, so the data in flight (and what every consumer
	// copies of it) stays bounded when thousands of builds are reported at once.
	for len(changes) > 0 && r.metrics != nil {
		chunk := changes[:min(len(changes), emitChunk)]
		changes = changes[len(chunk):]
		if md := r.emitter.metrics(chunk, r.now()); md.ResourceMetrics().Len() > 0 {
			obsCtx := r.obsrecv.StartMetricsOp(ctx)
			err := r.metrics.ConsumeMetrics(ctx, md)
			r.obsrecv.EndMetricsOp(obsCtx, "buildmon", md.DataPointCount(), err)
			if err != nil {
				r.set.Logger.Warn("build metrics not consumed", zap.Int("builds", len(chunk)), zap.Error(err))
			}
		}
	}
	if r.traces != nil && len(spans) > 0 {
		td := r.emitter.traces(spans)
		obsCtx := r.obsrecv.StartTracesOp(ctx)
		err := r.traces.ConsumeTraces(ctx, td)
		r.obsrecv.EndTracesOp(obsCtx, "buildmon", td.SpanCount(), err)
		if err != nil {
			r.set.Logger.Warn("build spans not consumed", zap.Int("spans", td.SpanCount()), zap.Error(err))
		}
	}
}

// notify wakes the loop after a request changed the registry.
func (r *buildmonReceiver) notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}
