package buildprogressprocessor // import "github.com/buildmon/buildmon/processor/buildprogressprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/buildmon/buildmon/internal/alerting"
	"github.com/buildmon/buildmon/internal/progress"
	"github.com/buildmon/buildmon/processor/buildprogressprocessor/internal/metadata"
)

// Defaults, documented in README.md.
const (
	defaultHistorySize  = 20
	maxHistorySize      = 1000
	defaultMaxPipelines = 1000
	defaultMaxPhases    = 32
	defaultMinRuns      = 5
	defaultPriorRuns    = 5
	defaultExpiry       = 15 * time.Minute
	defaultMaxBuilds    = 10000
)

// NewFactory returns the factory of the buildprogress processor.
func NewFactory() processor.Factory {
	return newFactory(alerting.SystemClock{})
}

// newFactory returns a factory whose processors tell time with clock (tests pass a fake).
func newFactory(clock alerting.Clock) processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithMetrics(func(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
			return createMetricsProcessor(ctx, set, cfg, next, clock)
		}, metadata.MetricsStability),
	)
}

func createDefaultConfig() component.Config {
	weights := PhaseWeights{}
	for name, w := range progress.DefaultWeights() {
		weights[name] = Weight(w)
	}
	return &Config{
		Weights: weights,
		ETA: ETAConfig{
			HistorySize:    defaultHistorySize,
			MaxPipelines:   defaultMaxPipelines,
			MaxPhases:      defaultMaxPhases,
			Estimator:      estimatorMedian,
			TimeProgress:   true,
			LearnedWeights: LearnedWeightsConfig{MinRuns: defaultMinRuns, PriorRuns: defaultPriorRuns},
		},
		Expiry: defaultExpiry,
		// 10,000 concurrent builds is far beyond one gateway's usual load and costs a few
		// tens of MB (see BenchmarkMemory10kBuilds).
		MaxBuilds: defaultMaxBuilds,
	}
}

func createMetricsProcessor(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics, clock alerting.Clock) (processor.Metrics, error) {
	p, err := newBuildProgressProcessor(set, cfg.(*Config), clock)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewMetrics(ctx, set, cfg, next, p.processMetrics,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		processorhelper.WithStart(p.start),
		processorhelper.WithShutdown(p.shutdown),
	)
}
