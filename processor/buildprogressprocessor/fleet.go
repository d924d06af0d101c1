package buildprogressprocessor // import "github.com/buildmon/buildmon/processor/buildprogressprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/internal/pdatacontract"
	"github.com/buildmon/buildmon/internal/schema"
	"github.com/buildmon/buildmon/processor/buildprogressprocessor/internal/metadata"
)

// In a fleet, an agent's processor (next to the host metrics) and a gateway's processor both
// see a build. The agent's output carries this processor's scope on every build resource and
// on every host resource that shows an alert; that scope is the marker. A processor that finds
// it on a resource treats the resource, and from then on its build or host, as processed
// upstream:
//
//   - the upstream scope passes on unchanged: progress, build.paused, alert series and
//     per-phase resources are the upstream processor's (the pause decision needs the host's
//     metrics, which are where the agent is), so nothing derived is doubled;
//   - for builds it still reads the raw build metrics, so it knows their progress and records
//     finished runs in its pipeline history, but it evaluates no rules and attributes no
//     host resources to them;
//   - build.eta, the one derived value that a gateway knows better (its history holds the
//     runs of the whole fleet), is replaced by its own estimate when it has one;
//   - host resources, and hosts that run builds processed upstream, feed no rules.
//
// So processing an agent's output again gives the agent's output, except for build.eta. A
// host that never showed an alert and runs no build yet carries no marker; its metrics feed
// the rules here, which with the agent's rules and data show nothing either (a gateway of the
// fleet configs has no host rules at all).

// upstreamScope returns the index of the ScopeMetrics that a buildprogress processor upstream
// appended to rm, or -1.
func upstreamScope(rm pmetric.ResourceMetrics) int {
	sms := rm.ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		if sms.At(i).Scope().Name() == metadata.ScopeName {
			return i
		}
	}
	return -1
}

// markUpstream marks the builds of the batch that arrive processed upstream, and their hosts,
// before any resource of the batch is read: the marker is on the build's last resource of the
// upstream batch, and an earlier resource of the same build must not feed the rules either.
func (p *buildProgressProcessor) markUpstream(ctx context.Context, rms pmetric.ResourceMetricsSlice, now time.Time) {
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		if upstreamScope(rm) < 0 {
			continue
		}
		res := rm.Resource().Attributes()
		kind, key := pdatacontract.Classify(res)
		if kind != pdatacontract.Build {
			continue
		}
		b := p.buildFor(ctx, key, now)
		b.upstream = true
		if name := pdatacontract.Str(res, schema.AttrHostName); name != "" {
			p.hostFor(name).upstream = true
		}
	}
}

// emitUpstreamETA replaces build.eta in the upstream scope of rm with this processor's
// estimate, or adds it where upstream had none (only to a full report, one with
// build.progress; not to a pause notice). Without an estimate of its own it keeps upstream's.
func (p *buildProgressProcessor) emitUpstreamETA(rm pmetric.ResourceMetrics, b *buildState, now time.Time) {
	if !b.etaKnown {
		return
	}
	i := upstreamScope(rm)
	if i < 0 {
		return
	}
	ms := rm.ScopeMetrics().At(i).Metrics()
	hadETA, hasProgress := false, false
	ms.RemoveIf(func(m pmetric.Metric) bool {
		switch m.Name() {
		case schema.MetricBuildETA:
			hadETA = true
			return true
		case schema.MetricBuildProgress:
			hasProgress = true
		}
		return false
	})
	if hadETA || hasProgress {
		// With this processor's build.eta.source, ending its own previous source's series.
		emitETA(ms, b, b.stamp.next(now))
	}
}
