package checkpointexporter // import "github.com/buildmon/buildmon/exporter/checkpointexporter"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/metadata"
)

// Defaults (README.md lists them).
const (
	defaultDirectory       = "./var/buildmon/checkpoints"
	defaultInterval        = 5 * time.Second
	defaultGenerations     = 3
	defaultMaxBuilds       = 10000
	defaultAlertStaleAfter = 15 * time.Second
	defaultStatusEndpoint  = "127.0.0.1:4321"
	defaultFinishedBuilds  = 24 * time.Hour
	defaultMaxReportsBytes = 256 << 20
	defaultAuditMaxBytes   = 10 << 20
	defaultResendInterval  = time.Minute
	defaultNotifyTimeout   = 10 * time.Second
	defaultQueueSize       = 1000
	// Limits of the status API's connections: clients that send slowly or not at all cannot
	// hold connections, file descriptors or memory (confighttp sets no read timeout). The
	// write timeout counts from the request's headers, so it is longer than the read timeout.
	defaultMaxConnections    = 4096
	defaultReadHeaderTimeout = 10 * time.Second
	defaultReadTimeout       = 30 * time.Second
	defaultWriteTimeout      = 45 * time.Second
	// minWriteGap is the shortest time between two checkpoints: bursts of phase completions
	// are coalesced into one write.
	minWriteGap = 250 * time.Millisecond
)

// NewFactory returns the factory of the checkpoint exporter.
func NewFactory() exporter.Factory { return newFactory() }

// option adjusts an exporter before it starts; tests inject a fake clock and file system.
type option func(*checkpointExporter)

func newFactory(opts ...option) exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithMetrics(func(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
			return createMetricsExporter(ctx, set, cfg, opts...)
		}, metadata.MetricsStability),
	)
}

func defaultNotifier(minLevel string) NotifierConfig {
	client := confighttp.NewDefaultClientConfig()
	client.Timeout = defaultNotifyTimeout
	return NotifierConfig{
		ClientConfig:   client,
		ResendInterval: defaultResendInterval,
		MinLevel:       minLevel,
		QueueSize:      defaultQueueSize,
		RetryOnFailure: configretry.NewDefaultBackOffConfig(),
	}
}

func createDefaultConfig() component.Config {
	status := confighttp.NewDefaultServerConfig()
	status.NetAddr.Endpoint = defaultStatusEndpoint
	status.ReadHeaderTimeout = defaultReadHeaderTimeout
	status.ReadTimeout = defaultReadTimeout
	status.WriteTimeout = defaultWriteTimeout
	return &Config{
		Directory:       defaultDirectory,
		Interval:        defaultInterval,
		Generations:     defaultGenerations,
		MaxBuilds:       defaultMaxBuilds,
		AlertStaleAfter: defaultAlertStaleAfter,
		Status:          StatusConfig{ServerConfig: status, MaxConnections: defaultMaxConnections},
		Retention: RetentionConfig{
			FinishedBuilds:  defaultFinishedBuilds,
			MaxReportsBytes: defaultMaxReportsBytes,
		},
		AuditLog:     AuditLogConfig{MaxBytes: defaultAuditMaxBytes},
		Alertmanager: defaultNotifier("ERROR"),
		Webhook:      defaultNotifier("ERROR"),
	}
}

func createMetricsExporter(ctx context.Context, set exporter.Settings, cfg component.Config, opts ...option) (exporter.Metrics, error) {
	e, err := newCheckpointExporter(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(e)
	}
	return exporterhelper.NewMetrics(ctx, set, cfg, e.consumeMetrics,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
	)
}
