package hostscraper

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/buildmon/buildmon/internal/metadata"
)

// seen returns the metric names and host.name values of everything the sink received.
func seen(sink *consumertest.MetricsSink) (metrics, hosts map[string]bool) {
	metrics, hosts = map[string]bool{}, map[string]bool{}
	for _, md := range sink.AllMetrics() {
		for _, rm := range md.ResourceMetrics().All() {
			if h, ok := rm.Resource().Attributes().Get("host.name"); ok {
				hosts[h.Str()] = true
			}
		}
		for name := range points(md) {
			metrics[name] = true
		}
	}
	return metrics, hosts
}

func fastConfig() Config {
	cfg := NewDefaultConfig()
	cfg.System.CollectionInterval = 10 * time.Millisecond
	cfg.System.InitialDelay = 0
	cfg.Resources.CollectionInterval = 10 * time.Millisecond
	cfg.Resources.InitialDelay = 0
	return cfg
}

// On this machine: CPU utilization arrives once two system scrapes are a clock tick apart,
// and host.name defaults to the OS host name.
func TestReceiverRealHost(t *testing.T) {
	cfg := fastConfig()
	sink := new(consumertest.MetricsSink)
	r, err := NewReceiver(&cfg, metadata.NewDefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type), sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	require.Eventually(t, func() bool {
		metrics, _ := seen(sink)
		return metrics["system.cpu.utilization"] && metrics["system.network.io"]
	}, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, r.Shutdown(context.Background()))

	hostname, err := os.Hostname()
	require.NoError(t, err)
	_, hosts := seen(sink)
	assert.Equal(t, map[string]bool{hostname: true}, hosts)
}

func TestReceiverDisabled(t *testing.T) {
	cfg := fastConfig()
	cfg.Enabled = false
	sink := new(consumertest.MetricsSink)
	r, err := NewReceiver(&cfg, metadata.NewDefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type), sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, r.Shutdown(context.Background()))
	assert.Zero(t, sink.DataPointCount())
}

func TestReceiverInvalidFilter(t *testing.T) {
	cfg := fastConfig()
	cfg.Disks.Include = []string{"("}
	_, err := NewReceiver(&cfg, metadata.NewDefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type), consumertest.NewNop())
	assert.EqualError(t, err, "host.disks.include[0]: invalid regexp: error parsing regexp: missing closing ): `(`")
}

// A receiver that was never started shuts down cleanly.
func TestReceiverShutdownWithoutStart(t *testing.T) {
	cfg := fastConfig()
	r, err := NewReceiver(&cfg, metadata.NewDefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type), consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, r.Shutdown(context.Background()))
}
