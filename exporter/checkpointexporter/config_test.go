package checkpointexporter

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/metadata"
	"github.com/buildmon/buildmon/internal/access"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig()
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg.(*Config)
}

func TestLoadConfig(t *testing.T) {
	def := loadConfig(t, "")
	require.NoError(t, confmap.Validate(def))
	assert.Equal(t, "./var/buildmon/checkpoints", def.Directory)
	assert.Equal(t, 5*time.Second, def.Interval)
	assert.Equal(t, 3, def.Generations)
	assert.Equal(t, 10000, def.MaxBuilds)
	assert.Equal(t, 15*time.Second, def.AlertStaleAfter)
	assert.Equal(t, "127.0.0.1:4321", def.Status.NetAddr.Endpoint)
	assert.False(t, def.Status.Auth.HasValue())
	assert.Equal(t, 4096, def.Status.MaxConnections)
	assert.Equal(t, 10*time.Second, def.Status.ReadHeaderTimeout)
	assert.Equal(t, 30*time.Second, def.Status.ReadTimeout)
	assert.Equal(t, 45*time.Second, def.Status.WriteTimeout)
	require.True(t, def.Status.Keepalive.HasValue())
	assert.Equal(t, time.Minute, def.Status.Keepalive.Get().IdleTimeout)
	assert.False(t, def.Encryption.Enabled())
	assert.Equal(t, 24*time.Hour, def.Retention.FinishedBuilds)
	assert.Equal(t, int64(256<<20), def.Retention.MaxReportsBytes)
	assert.Equal(t, "", def.AuditLog.Path)
	assert.Equal(t, int64(10<<20), def.AuditLog.MaxBytes)
	assert.Equal(t, "", def.Alertmanager.Endpoint)
	assert.Equal(t, time.Minute, def.Alertmanager.ResendInterval)
	assert.Equal(t, "ERROR", def.Alertmanager.MinLevel)
	assert.Equal(t, 10*time.Second, def.Alertmanager.Timeout)
	assert.Equal(t, 1000, def.Alertmanager.QueueSize)
	assert.True(t, def.Alertmanager.RetryOnFailure.Enabled)
	assert.Equal(t, "", def.Webhook.Endpoint)

	full := loadConfig(t, "full")
	require.NoError(t, confmap.Validate(full))
	assert.Equal(t, "/var/lib/buildmon/checkpoints", full.Directory)
	assert.Equal(t, 2*time.Second, full.Interval)
	assert.Equal(t, 5, full.Generations)
	assert.Equal(t, 500, full.MaxBuilds)
	assert.Equal(t, 30*time.Second, full.AlertStaleAfter)
	assert.Equal(t, "0.0.0.0:4321", full.Status.NetAddr.Endpoint)
	assert.Equal(t, 64, full.Status.MaxConnections)
	assert.Equal(t, 5*time.Second, full.Status.ReadTimeout)
	require.True(t, full.Status.Auth.HasValue())
	assert.Equal(t, "bearertokenauth", full.Status.Auth.Get().Config.AuthenticatorID.String())
	assert.Equal(t, "/etc/buildmon/checkpoint.key", full.Encryption.KeyFile)
	assert.Equal(t, []EncryptionKey{{KeyEnv: "BUILDMON_OLD_KEY"}}, full.Encryption.PreviousKeys)
	assert.Equal(t, 72*time.Hour, full.Retention.FinishedBuilds)
	assert.Equal(t, int64(1<<20), full.Retention.MaxReportsBytes)
	assert.Equal(t, "/var/log/buildmon/audit.log", full.AuditLog.Path)
	assert.Equal(t, int64(1024), full.AuditLog.MaxBytes)
	assert.Equal(t, "http://127.0.0.1:9093", full.Alertmanager.Endpoint)
	assert.Equal(t, 3*time.Second, full.Alertmanager.Timeout)
	assert.Equal(t, 30*time.Second, full.Alertmanager.ResendInterval)
	assert.Equal(t, "CRITICAL", full.Alertmanager.MinLevel)
	v, ok := full.Alertmanager.Headers.Get("X-Scope-OrgID")
	assert.True(t, ok)
	assert.Equal(t, "builds", string(v))
	assert.Equal(t, "https://hooks.example.com/buildmon", full.Webhook.Endpoint)
	assert.Equal(t, "WARNING", full.Webhook.MinLevel)
	assert.Equal(t, 10, full.Webhook.QueueSize)
	assert.Equal(t, time.Minute, full.Webhook.RetryOnFailure.MaxElapsedTime)
}

func TestConfigAccessAndSigning(t *testing.T) {
	cfg := loadConfig(t, "access_and_signing")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, []access.Rule{{
		Subjects: []string{"team-a", "group:sre"}, Actions: []string{"status:read", "reports:read"},
		Pipelines: []string{"team-a/*"}, Hosts: []string{"pool-a-*"},
	}}, cfg.Status.Access.Rules)
	assert.Equal(t, SigningConfig{Secret: "new-secret-0123456789abcdef", PreviousSecret: "old-secret-0123456789abcdef"}, cfg.Webhook.Signing)
	assert.NotContains(t, fmt.Sprintf("%v", cfg.Webhook.Signing.Secret), "new-secret", "the secret is opaque when printed")
}

func TestConfigValidationNamesTheField(t *testing.T) {
	for name, want := range map[string][]string{
		"empty_directory": {"directory must not be empty"},
		"bad_numbers": {
			"interval must be positive", "generations must be at least 1", "max_builds must be at least 1",
			"alert_stale_after must not be negative", "retention.finished_builds must not be negative",
			"retention.max_reports_bytes must not be negative", "audit_log.max_bytes must not be negative",
			"status.max_connections must not be negative", "status.read_timeout must not be negative",
		},
		"two_keys":                 {"encryption: set key_file or key_env, not both"},
		"previous_without_current": {"encryption.previous_keys needs encryption.key_file or encryption.key_env"},
		"bad_previous_key":         {"encryption.previous_keys[0] needs key_file or key_env"},
		"bad_alertmanager": {
			`alertmanager.endpoint "127.0.0.1:9093" must be an http or https URL`, `alertmanager.min_level "FATAL"`,
			"alertmanager.resend_interval must not be negative", "alertmanager.queue_size must be at least 1",
		},
		"bad_webhook": {`webhook.endpoint "ftp://example.com/hook"`},
		"bad_access": {
			"status.access.rules: no request can have a subject", "status.access.rules[0].subjects[0] must not be empty",
			`status.access.rules[0].actions[0] "events:read" is not an action`, "status.access.rules[0] must list pipelines or hosts",
			"webhook.signing.previous_secret needs webhook.signing.secret",
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := confmap.Validate(loadConfig(t, name))
			require.Error(t, err)
			for _, w := range want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}
