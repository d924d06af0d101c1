package sysbench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/results"
)

// fakeRunner runs the scenarios against this test binary acting as the collector, with every
// duration cut down; nothing here asserts on a timing.
func fakeRunner(t *testing.T) *Runner {
	t.Setenv(fakeCollectorEnv, "1")
	cfg, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "testdata", "config.yaml"))
	require.NoError(t, err)
	s := DefaultSettings()
	s.IdleSeconds, s.IdleWarmup, s.IdleWindow = 1, 0, 300*time.Millisecond
	s.IngestDuration, s.IngestBuilds, s.Workers, s.BatchWorkers, s.BatchSize = 500*time.Millisecond, 3, 2, 2, 10
	s.StalenessDuration, s.StalenessBuilds, s.StalenessDrain = time.Second, 20, 500*time.Millisecond
	s.MemoryBuilds, s.MemorySettle = 50, 100*time.Millisecond
	s.E2ESamples = 5
	return &Runner{Bin: os.Args[0], DefaultConfig: cfg, TmpDir: t.TempDir(), Settings: s, Logf: t.Logf, ReadCheckpoint: readFakeCheckpoint}
}

func byKey(ms []results.Measure) map[string]results.Measure {
	out := map[string]results.Measure{}
	for _, m := range ms {
		out[m.Key] = m
	}
	return out
}

func TestIdleAndE2E(t *testing.T) {
	ms, err := fakeRunner(t).IdleAndE2E(context.Background())
	require.NoError(t, err)
	m := byKey(ms)
	require.Contains(t, m, "idle/cpu_seconds_per_minute")
	assert.NotNil(t, m["idle/cpu_seconds_per_minute"].Pass)
	assert.Positive(t, m["idle/peak_rss"].Median)
	assert.NotNil(t, m["idle/peak_rss"].Target)
	assert.Len(t, m["e2e/latency_p50"].Samples, 5, "one latency per event")
	assert.NotNil(t, m["e2e/latency_p50"].Baseline)
	assert.Contains(t, m, "e2e/latency_p99")
}

func TestIngestion(t *testing.T) {
	ms, err := fakeRunner(t).Ingestion(context.Background())
	require.NoError(t, err)
	m := byKey(ms)
	single := m["ingest/single_requests_per_second"]
	assert.Positive(t, single.Median)
	require.NotNil(t, single.Baseline, "floor server measured in the same run")
	assert.Positive(t, *single.Baseline)
	assert.NotNil(t, single.Pass)
	assert.Contains(t, single.Note, "0 429, 0 other, 0 errors")
	batch := m["ingest/batch_events_per_second"]
	assert.Positive(t, batch.Median)
	assert.Contains(t, batch.Note, "0 429, 0 other, 0 errors")
	for _, k := range []string{"ingest/single_latency_p50", "ingest/single_latency_p99", "ingest/batch_latency_p50", "ingest/batch_latency_p99"} {
		assert.Positive(t, m[k].Median, k)
		assert.NotNil(t, m[k].Baseline, k)
	}
}

func TestStaleness(t *testing.T) {
	ms, err := fakeRunner(t).Staleness(context.Background())
	require.NoError(t, err)
	m := byKey(ms)
	st := m["checkpoint/staleness_p50"]
	assert.Contains(t, st.Note, "first checkpoint file whose content", "the fake's checkpoint is read")
	assert.Len(t, st.Samples, 5*10, "5 sampled builds x 10 ticks, all reached disk")
	assert.NotNil(t, m["checkpoint/staleness_p99"].Pass)
	assert.Len(t, m["checkpoint/visible_p50"].Samples, 5*10)
	ck := m["checkpoint/exporter_bytes_per_second"]
	require.NotNil(t, ck.Target, "bytes written compared with the state size per interval")
	assert.Positive(t, ck.Median)
	assert.Contains(t, m, "checkpoint/write_bytes_per_second")
	assert.Positive(t, m["checkpoint/state_bytes"].Median)
}

func TestStalenessWithoutReaderFallsBackToMtimes(t *testing.T) {
	r := fakeRunner(t)
	r.ReadCheckpoint = nil
	ms, err := r.Staleness(context.Background())
	require.NoError(t, err)
	m := byKey(ms)
	assert.Contains(t, m["checkpoint/staleness_p50"].Note, "checkpoint not readable")
	assert.NotEmpty(t, m["checkpoint/staleness_p50"].Samples)
	assert.NotContains(t, m, "checkpoint/exporter_bytes_per_second", "no state size without reading the checkpoint")
}

func TestMemory(t *testing.T) {
	ms, err := fakeRunner(t).Memory(context.Background())
	require.NoError(t, err)
	m := byKey(ms)
	rss := m["memory/rss_builds"]
	assert.Len(t, rss.Samples, 5)
	assert.NotNil(t, rss.Baseline)
	assert.Contains(t, rss.Note, "first and last build present")
	assert.Positive(t, m["memory/peak_rss_builds"].Median)
	limited := m["memory/rss_builds_gomemlimit"]
	assert.Len(t, limited.Samples, 5, "measured again with GOMEMLIMIT")
	assert.Nil(t, limited.Target)
	assert.Contains(t, limited.Note, "GOMEMLIMIT=200MiB")
	noProm := m["memory/rss_builds_without_prometheus"]
	assert.Len(t, noProm.Samples, 5, "measured again without the Prometheus exporter")
	assert.Nil(t, noProm.Target)
	rw := m["memory/rss_builds_remote_write"]
	assert.Len(t, rw.Samples, 5, "measured again with remote write")
	assert.NotNil(t, rw.Target)
	assert.Contains(t, rw.Note, "the sink received")
}

func TestStartCollectorPassesEnv(t *testing.T) {
	cfg, ports, err := RenderConfig([]byte("receivers: {buildmon: {events: {endpoint: 127.0.0.1:1}}}\nexporters: {checkpoint: {status: {endpoint: 127.0.0.1:2}}, prometheus: {endpoint: 127.0.0.1:3}}\nextensions: {health_check: {endpoint: 127.0.0.1:4}}\n"), nil)
	require.NoError(t, err)
	dir := t.TempDir()
	bin := filepath.Join(dir, "collector.sh")
	out := filepath.Join(dir, "env.txt")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\necho \"$GOMEMLIMIT\" > "+out+"\n"), 0o700))
	_, err = StartCollector(context.Background(), bin, dir, "x", cfg, ports, "GOMEMLIMIT=123MiB")
	require.ErrorContains(t, err, "exited before it became healthy")
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "123MiB\n", string(got))
}

func TestStartCollectorReportsEarlyExit(t *testing.T) {
	cfg, ports, err := RenderConfig([]byte("receivers: {buildmon: {events: {endpoint: 127.0.0.1:1}}}\nexporters: {checkpoint: {status: {endpoint: 127.0.0.1:2}}, prometheus: {endpoint: 127.0.0.1:3}}\nextensions: {health_check: {endpoint: 127.0.0.1:4}}\n"), nil)
	require.NoError(t, err)
	_, err = StartCollector(context.Background(), "/bin/false", t.TempDir(), "x", cfg, ports)
	require.ErrorContains(t, err, "exited before it became healthy")
}
