package buildmonreceiver // import "github.com/buildmon/buildmon/receiver/buildmonreceiver"

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	bmetadata "github.com/buildmon/buildmon/internal/metadata"
	"github.com/buildmon/buildmon/internal/selfprotect"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"
)

// SelfProtectionConfig is the collector's budget for its own CPU and memory, and how much
// each shedding measure sheds. With neither cpu_share nor memory_mib set it is off.
type SelfProtectionConfig struct {
	// CPUShare is the share of the host's CPU (all cores together: 0.25 on a 4-core host is
	// one core) the collector process may use, averaged over check_interval. 0: no CPU budget.
	CPUShare float64 `mapstructure:"cpu_share"`
	// MemoryMiB bounds the collector's resident memory. 0: no memory budget.
	MemoryMiB int `mapstructure:"memory_mib"`
	// CheckInterval is how often the usage is read; each check engages or releases at most
	// one measure.
	CheckInterval time.Duration `mapstructure:"check_interval"`
	// ReleaseRatio: a check is calm when usage is below budget × release_ratio.
	ReleaseRatio float64 `mapstructure:"release_ratio"`
	// ReleaseChecks calm checks in a row release one measure.
	ReleaseChecks int `mapstructure:"release_checks"`
	// StepSpanSampleRate: while step spans are sampled, one in step_span_sample_rate is sent.
	StepSpanSampleRate int `mapstructure:"step_span_sample_rate"`
	// MaxScrapeStretch is the factor the host metrics' collection intervals are stretched by.
	MaxScrapeStretch int `mapstructure:"max_scrape_stretch"`
	// ReportIntervalStretch is the factor report_interval is stretched by for the periodic
	// re-emission of every build.
	ReportIntervalStretch int `mapstructure:"report_interval_stretch"`
}

func (c *SelfProtectionConfig) enabled() bool { return c.CPUShare > 0 || c.MemoryMiB > 0 }

func (c *SelfProtectionConfig) validate() []error {
	var errs []error
	if !(c.CPUShare >= 0 && c.CPUShare <= 1) {
		errs = append(errs, errors.New("self_protection.cpu_share must be between 0 and 1 (a share of all the host's CPUs)"))
	}
	if c.MemoryMiB < 0 {
		errs = append(errs, errors.New("self_protection.memory_mib must not be negative"))
	}
	if c.CheckInterval <= 0 {
		errs = append(errs, errors.New("self_protection.check_interval must be positive"))
	}
	if !(c.ReleaseRatio > 0 && c.ReleaseRatio < 1) {
		errs = append(errs, errors.New("self_protection.release_ratio must be between 0 and 1, both excluded"))
	}
	if c.ReleaseChecks < 1 {
		errs = append(errs, errors.New("self_protection.release_checks must be at least 1"))
	}
	if c.StepSpanSampleRate < 1 {
		errs = append(errs, errors.New("self_protection.step_span_sample_rate must be at least 1"))
	}
	if c.MaxScrapeStretch < 1 {
		errs = append(errs, errors.New("self_protection.max_scrape_stretch must be at least 1"))
	}
	if c.ReportIntervalStretch < 1 {
		errs = append(errs, errors.New("self_protection.report_interval_stretch must be at least 1"))
	}
	return errs
}

// measureAttributes are the self_protection.measure values of the measures.
var measureAttributes = map[selfprotect.Measure]bmetadata.AttributeSelfProtectionMeasure{
	selfprotect.StepSpanSampling:   bmetadata.AttributeSelfProtectionMeasureStepSpanSampling,
	selfprotect.HostScrapeStretch:  bmetadata.AttributeSelfProtectionMeasureHostScrapeStretch,
	selfprotect.ReemissionSlowdown: bmetadata.AttributeSelfProtectionMeasureReemissionSlowdown,
}

// protecting reports whether measure m is active.
func (r *buildmonReceiver) protecting(m selfprotect.Measure) bool {
	return r.protect != nil && r.protect.Active(m)
}

// scrapeStretch is the factor of the host metrics' collection intervals now.
func (r *buildmonReceiver) scrapeStretch() int {
	if r.protecting(selfprotect.HostScrapeStretch) {
		return r.cfg.SelfProtection.MaxScrapeStretch
	}
	return 1
}

// reportStretch is the factor of report_interval for the periodic re-emission now.
func (r *buildmonReceiver) reportStretch() int {
	if r.protecting(selfprotect.ReemissionSlowdown) {
		return r.cfg.SelfProtection.ReportIntervalStretch
	}
	return 1
}

// sampleSpans keeps phase and build spans and, while step spans are sampled, one step span
// in step_span_sample_rate; it counts the others. Only the emitting goroutine calls it.
func (r *buildmonReceiver) sampleSpans(ctx context.Context, spans []events.SpanRecord) []events.SpanRecord {
	if !r.protecting(selfprotect.StepSpanSampling) {
		return spans
	}
	rate := uint64(r.cfg.SelfProtection.StepSpanSampleRate) //nolint:gosec // validated ≥ 1
	kept := spans[:0]
	dropped := 0
	for _, s := range spans {
		if s.StepNumber == 0 { // a phase or build span: lifecycle, never shed
			kept = append(kept, s)
			continue
		}
		r.stepSpans++
		if (r.stepSpans-1)%rate == 0 {
			kept = append(kept, s)
			continue
		}
		dropped++
	}
	if dropped > 0 {
		r.telemetry.ReceiverBuildmonStepSpansSampledOut.Add(ctx, int64(dropped))
	}
	return kept
}

// protectLoop checks the collector's usage every check_interval until Shutdown, logs each
// measure it engages or releases, and emits the gauge of the active measures at once.
func (r *buildmonReceiver) protectLoop(interval time.Duration) {
	defer close(r.protectDone)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	ctx := context.Background()
	budget := r.cfg.SelfProtection
	readFailed := false
	for {
		select {
		case <-r.done:
			return
		case <-ticker.C:
		}
		ch, err := r.protect.Check(ctx, time.Now())
		if err != nil {
			if !readFailed {
				r.set.Logger.Warn("self-protection cannot read the collector's usage; measures stay as they are", zap.Error(err))
			}
			readFailed = true
			continue
		}
		readFailed = false
		if ch == nil {
			continue
		}
		fields := []zap.Field{
			zap.String("measure", ch.Measure.String()),
			zap.Float64("cpu_share", ch.Reading.CPUShare), zap.Float64("budget_cpu_share", budget.CPUShare),
			zap.Uint64("rss_mib", ch.Reading.RSS>>20), zap.Int("budget_memory_mib", budget.MemoryMiB),
		}
		if ch.Active {
			r.set.Logger.Warn("self-protection: over budget, shedding", fields...)
		} else {
			r.set.Logger.Info("self-protection: pressure gone, measure released", fields...)
		}
		r.emitProtection(ctx, time.Now())
	}
}

// emitProtection sends buildmon.self_protection.active for every measure on the host's
// resource.
func (r *buildmonReceiver) emitProtection(ctx context.Context, now time.Time) {
	if r.protect == nil || r.metrics == nil {
		return
	}
	md := r.emitter.protection(r.protect, r.hostname, now)
	if err := r.metrics.ConsumeMetrics(ctx, md); err != nil {
		r.set.Logger.Warn("self-protection gauge not consumed", zap.Error(err))
	}
}

// protection returns the gauge of the active measures.
func (e *emitter) protection(c *selfprotect.Controller, host string, now time.Time) pmetric.Metrics {
	e.mu.Lock()
	defer e.mu.Unlock()
	ts := pcommon.NewTimestampFromTime(now)
	for _, m := range selfprotect.Measures {
		v := int64(0)
		if c.Active(m) {
			v = 1
		}
		e.mb.RecordBuildmonSelfProtectionActiveDataPoint(ts, v, measureAttributes[m])
	}
	rb := e.mb.NewResourceBuilder()
	rb.SetHostName(host)
	e.mb.EmitForResource(bmetadata.WithResource(rb.Emit()))
	return e.mb.Emit()
}
