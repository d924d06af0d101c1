package checkpointexporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
	"github.com/buildmon/buildmon/processor/buildprogressprocessor"
)

// TestWithBuildProgressProcessor checks the contract with the real processor in front: its
// progress, pause and alerts (start, and end with its one-off 0) reach the status API and
// Alertmanager.
func TestWithBuildProgressProcessor(t *testing.T) {
	am := newReceiver(t, 0)
	cfg := testConfig(t.TempDir())
	cfg.Alertmanager.Endpoint = am.srv.URL
	now := time.Now().Truncate(time.Second)
	h := newHarness(t, cfg, clock.NewFake(now)).mustStart()

	pf := buildprogressprocessor.NewFactory()
	pcfg := pf.CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"rules": []any{map[string]any{
			"name": "cpu_hot", "metric": "cpu_usage", "aggregation": "last", "window": "10s",
			"keep_firing_for": "0s", "thresholds": map[string]any{"critical": 0.9},
		}},
	}).Unmarshal(pcfg))
	proc, err := pf.CreateMetrics(context.Background(), processortest.NewNopSettings(pf.Type()), pcfg, h.exp)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), h.host))
	defer func() { require.NoError(t, proc.Shutdown(context.Background())) }()

	// Receiver output only: the processor adds progress, pause and alerts.
	b := running("piped", 2)
	b.processed = false
	b.at = now
	send := func(spec interface{ metrics() pmetric.Metrics }) {
		require.NoError(t, proc.ConsumeMetrics(context.Background(), spec.metrics()))
	}
	send(b)
	st := status(t, h, "piped")
	assert.Greater(t, st.Progress, 0.0, "the processor's progress arrived")
	assert.False(t, st.Paused)

	send(hostSpec{name: "host-a", at: now.Add(time.Second), cpu: 0.99, memUtil: 0.3})
	alerts := am.nextAlerts(t)
	require.Len(t, alerts, 1)
	assert.Equal(t, "cpu_hot", alerts[0].Labels["alertname"])
	assert.Equal(t, "critical", alerts[0].Labels["severity"])
	st = status(t, h, "piped")
	assert.True(t, st.Paused, "the pause notice reached the exporter")
	require.Len(t, st.Alerts, 1)
	assert.Equal(t, "host", st.Alerts[0].Scope)

	send(hostSpec{name: "host-a", at: now.Add(2 * time.Second), cpu: 0.1, memUtil: 0.3})
	resolved := am.nextAlerts(t)
	require.Len(t, resolved, 1)
	assert.False(t, resolved[0].EndsAt.IsZero(), "resolved by the processor's 0, without waiting for staleness")
	st = status(t, h, "piped")
	assert.False(t, st.Paused)
	assert.Empty(t, st.Alerts)
}
