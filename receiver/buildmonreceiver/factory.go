package buildmonreceiver // import "github.com/buildmon/buildmon/receiver/buildmonreceiver"

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	bmetadata "github.com/buildmon/buildmon/internal/metadata"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/metadata"
)

// Defaults of the configuration, in one place.
const (
	defaultEndpoint            = "127.0.0.1:4320"
	defaultMaxRequestBodySize  = 1 << 20
	defaultReportInterval      = 10 * time.Second
	defaultFinishedBuildTTL    = 5 * time.Minute
	defaultMaxBuilds           = 1000
	defaultMaxEventIDsPerBuild = 1000
	defaultMaxClockSkew        = 24 * time.Hour
	defaultEventsPerSecond     = 1000
	defaultBurst               = 2000
	// defaultLifecycleReserve keeps 400 of the 2,000 tokens of each client's bucket for
	// lifecycle events: a build has a dozen, a runner that floods steps still has hundreds.
	defaultLifecycleReserve = 0.2
)

// Defaults of self_protection: off until a budget is set; then checks every 5 s, release
// below 80 % of the budget for 3 checks in a row, 1 step span in 10, host scrapes and the
// periodic re-emission 4 times apart.
const (
	defaultProtectCheckInterval  = 5 * time.Second
	defaultProtectReleaseRatio   = 0.8
	defaultProtectReleaseChecks  = 3
	defaultStepSpanSampleRate    = 10
	defaultMaxScrapeStretch      = 4
	defaultReportIntervalStretch = 4
)

// Limits of the events API's connections, so that clients that send slowly or not at all
// cannot hold connections, file descriptors or memory: confighttp sets no read timeout.
// The write timeout counts from the request's headers, so it is longer than the read timeout.
const (
	defaultMaxConnections    = 4096
	defaultReadHeaderTimeout = 10 * time.Second
	defaultReadTimeout       = 30 * time.Second
	defaultWriteTimeout      = 45 * time.Second
)

// NewFactory returns the factory of the buildmon receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithMetrics(createMetricsReceiver, metadata.MetricsStability),
		receiver.WithTraces(createTracesReceiver, metadata.TracesStability),
	)
}

func createDefaultConfig() component.Config {
	events := EventsConfig{ServerConfig: confighttp.NewDefaultServerConfig(), MaxConnections: defaultMaxConnections}
	events.NetAddr.Endpoint = defaultEndpoint
	events.MaxRequestBodySize = defaultMaxRequestBodySize
	events.ReadHeaderTimeout = defaultReadHeaderTimeout
	events.ReadTimeout = defaultReadTimeout
	events.WriteTimeout = defaultWriteTimeout
	return &Config{
		Events:              events,
		ReportInterval:      defaultReportInterval,
		FinishedBuildTTL:    defaultFinishedBuildTTL,
		MaxBuilds:           defaultMaxBuilds,
		MaxEventIDsPerBuild: defaultMaxEventIDsPerBuild,
		MaxClockSkew:        defaultMaxClockSkew,
		RateLimit:           RateLimitConfig{EventsPerSecond: defaultEventsPerSecond, Burst: defaultBurst, LifecycleReserve: defaultLifecycleReserve},
		Host:                hostscraper.NewDefaultConfig(),
		SelfProtection: SelfProtectionConfig{
			CheckInterval: defaultProtectCheckInterval, ReleaseRatio: defaultProtectReleaseRatio,
			ReleaseChecks: defaultProtectReleaseChecks, StepSpanSampleRate: defaultStepSpanSampleRate,
			MaxScrapeStretch: defaultMaxScrapeStretch, ReportIntervalStretch: defaultReportIntervalStretch,
		},
		MetricsBuilderConfig: bmetadata.NewDefaultMetricsBuilderConfig(),
	}
}

// receivers shares one receiver between the metrics and traces pipelines of one config, so
// that there is one events endpoint and one registry.
var receivers = struct {
	sync.Mutex
	m map[*Config]*buildmonReceiver
}{m: map[*Config]*buildmonReceiver{}}

func sharedReceiver(cfg *Config, set receiver.Settings) (*buildmonReceiver, error) {
	receivers.Lock()
	defer receivers.Unlock()
	if r, ok := receivers.m[cfg]; ok {
		return r, nil
	}
	r, err := newReceiver(cfg, set, func() {
		receivers.Lock()
		delete(receivers.m, cfg)
		receivers.Unlock()
	})
	if err != nil {
		return nil, err
	}
	receivers.m[cfg] = r
	return r, nil
}

func createMetricsReceiver(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	r, err := sharedReceiver(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	r.setMetrics(next)
	return r, nil
}

func createTracesReceiver(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	r, err := sharedReceiver(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	r.setTraces(next)
	return r, nil
}
