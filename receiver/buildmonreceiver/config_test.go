package buildmonreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	storageID := component.MustNewID("file_storage")

	tests := []struct {
		id      component.ID
		check   func(t *testing.T, cfg *Config)
		wantErr string
	}{
		{
			id: component.NewID(metadata.Type),
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, createDefaultConfig(), cfg)
				assert.Equal(t, "127.0.0.1:4320", cfg.Events.NetAddr.Endpoint)
				assert.Equal(t, 10*time.Second, cfg.ReportInterval)
				assert.Equal(t, 1000, cfg.MaxBuilds)
				assert.Equal(t, 24*time.Hour, cfg.MaxClockSkew)
				assert.True(t, cfg.Host.Enabled)
			},
		},
		{
			id: component.NewIDWithName(metadata.Type, "custom"),
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, "127.0.0.1:5320", cfg.Events.NetAddr.Endpoint)
				assert.Equal(t, int64(65536), cfg.Events.MaxRequestBodySize)
				assert.Equal(t, 5*time.Second, cfg.Events.ReadTimeout)
				assert.Equal(t, 64, cfg.Events.MaxConnections)
				assert.Equal(t, defaultReadHeaderTimeout, cfg.Events.ReadHeaderTimeout, "defaults stay beside the set keys")
				assert.Equal(t, 2*time.Second, cfg.ReportInterval)
				assert.Equal(t, time.Minute, cfg.FinishedBuildTTL)
				assert.Equal(t, 50, cfg.MaxBuilds)
				assert.Equal(t, 100, cfg.MaxEventIDsPerBuild)
				assert.Equal(t, time.Hour, cfg.MaxClockSkew)
				assert.Equal(t, RateLimitConfig{EventsPerSecond: 10, Burst: 20, LifecycleReserve: 0.5}, cfg.RateLimit)
				assert.Equal(t, 10, cfg.RateLimit.reservedTokens())
				assert.Equal(t, SelfProtectionConfig{
					CPUShare: 0.25, MemoryMiB: 512, CheckInterval: 10 * time.Second, ReleaseRatio: 0.8, ReleaseChecks: 3,
					StepSpanSampleRate: 20, MaxScrapeStretch: 4, ReportIntervalStretch: 4,
				}, cfg.SelfProtection, "defaults stay beside the set keys")
				assert.Equal(t, &storageID, cfg.Storage)
				assert.False(t, cfg.Host.Enabled)
				assert.False(t, cfg.Metrics.BuildPhaseWeight.Enabled)
				assert.True(t, cfg.Metrics.BuildProgress.Enabled)
			},
		},
		{id: component.NewIDWithName(metadata.Type, "no_endpoint"), wantErr: "events.endpoint must not be empty"},
		{
			id: component.NewIDWithName(metadata.Type, "bad_numbers"),
			wantErr: "report_interval must be positive\nfinished_build_ttl must not be negative\n" +
				"max_builds must be positive\nmax_event_ids_per_build must not be negative",
		},
		{id: component.NewIDWithName(metadata.Type, "bad_rate_limit"), wantErr: "rate_limit.burst must be at least 1 when rate_limit.events_per_second is set"},
		{id: component.NewIDWithName(metadata.Type, "negative_rate"), wantErr: "rate_limit.events_per_second must not be negative"},
		{id: component.NewIDWithName(metadata.Type, "bad_lifecycle_reserve"), wantErr: "rate_limit.lifecycle_reserve must be at least 0 and less than 1, got 1"},
		{
			id: component.NewIDWithName(metadata.Type, "bad_self_protection"),
			wantErr: "self_protection.cpu_share must be between 0 and 1 (a share of all the host's CPUs)\n" +
				"self_protection.memory_mib must not be negative\nself_protection.check_interval must be positive\n" +
				"self_protection.release_ratio must be between 0 and 1, both excluded\nself_protection.release_checks must be at least 1\n" +
				"self_protection.step_span_sample_rate must be at least 1\nself_protection.max_scrape_stretch must be at least 1\n" +
				"self_protection.report_interval_stretch must be at least 1",
		},
		{id: component.NewIDWithName(metadata.Type, "negative_clock_skew"), wantErr: "max_clock_skew must not be negative"},
		{
			id:      component.NewIDWithName(metadata.Type, "bad_host"),
			wantErr: "events.max_request_body_size must not be negative\nevents.max_connections must not be negative\nhost.system.collection_interval must be positive",
		},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg.(*Config))
		})
	}
}
