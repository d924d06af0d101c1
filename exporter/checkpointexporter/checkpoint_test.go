package checkpointexporter

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/checkpoint"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/metadatatest"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
)

// TestLifecycle starts and stops the exporter from the public factory with its defaults
// (but a temporary folder and a free port).
func TestLifecycle(t *testing.T) {
	dir := t.TempDir()
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Directory = filepath.Join(dir, "nested", "checkpoints")
	cfg.Status.NetAddr.Endpoint = "127.0.0.1:0"
	require.NoError(t, componenttest.CheckConfigStruct(cfg))
	exp, err := f.CreateMetrics(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, exp.ConsumeMetrics(context.Background(), running("life", 1).metrics()))
	require.NoError(t, exp.Shutdown(context.Background()))
	// Shutdown wrote the final checkpoint.
	assert.FileExists(t, filepath.Join(cfg.Directory, checkpoint.FileName(1)))

	// Shutdown without Start is fine too.
	exp2, err := f.CreateMetrics(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, exp2.Shutdown(context.Background()))
}

// running is a build in BUILD with done of 4 steps, as receiver and processor emit it.
func running(id string, done int64) buildSpec {
	return buildSpec{
		id: id, pipeline: "pipe", host: "host-a", at: t0.Add(time.Duration(done) * time.Second),
		phases: []phaseSpec{
			{name: "INIT", state: "completed", total: 1, completed: 1, duration: 2, progress: 1},
			{name: "BUILD", state: "running", total: 4, completed: done, duration: float64(done), progress: float64(done) / 4},
			{name: "TEST", state: "pending", total: 2, progress: 0},
		},
		duration: float64(done) + 2, processed: true, progress: 0.1 + 0.2*float64(done), eta: 30,
	}
}

func status(t *testing.T, h *harness, id string) state.BuildStatus {
	t.Helper()
	code, body := h.get("/v1/builds/" + id)
	require.Equal(t, http.StatusOK, code, string(body))
	var st state.BuildStatus
	require.NoError(t, json.Unmarshal(body, &st))
	return st
}

func TestRestoreAfterRestart(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, testConfig(dir), nil).mustStart()
	h.consume(running("b1", 2).metrics(), hostSpec{name: "host-a", at: t0.Add(2 * time.Second), cpu: 0.5, memUtil: 0.3}.metrics())
	before := status(t, h, "b1")
	require.InDelta(t, 0.5, before.Progress, 1e-9)
	h.tick()

	// A crash (kill -9) after that checkpoint: the folder as it is now is all that survives.
	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	h.consume(running("b1", 3).metrics()) // lost with the crash
	h.stop()

	h2 := newHarness(t, testConfig(crashed), nil).mustStart()
	after := status(t, h2, "b1")
	assert.Equal(t, before.Progress, after.Progress)
	// The running phase's resources so far are not in checkpoints: after a restart they
	// start again with the host's next reading (README, Resources per phase).
	require.NotNil(t, before.Phases[1].Resources)
	assert.Equal(t, "host_metrics", before.Phases[1].Resources.Source)
	assert.Nil(t, after.Phases[1].Resources)
	before.Phases[1].Resources = nil
	assert.Equal(t, before.Phases, after.Phases)
	assert.Equal(t, "BUILD", after.Phase)
	assert.Equal(t, []string{"BUILD"}, after.ActiveOperations)
	require.NotNil(t, after.HostResources)
	assert.InDelta(t, 0.5, *after.HostResources.CPUUtilization, 1e-9)
	assert.True(t, h2.logged("info", "restored state from checkpoint"))

	// Newer timestamp wins: data older than the restored state changes nothing, newer does.
	old := running("b1", 1)
	h2.consume(old.metrics())
	assert.Equal(t, int64(2), status(t, h2, "b1").Phases[1].StepsCompleted)
	h2.consume(running("b1", 3).metrics())
	assert.Equal(t, int64(3), status(t, h2, "b1").Phases[1].StepsCompleted)
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	for _, rel := range files(t, src) {
		b, err := os.ReadFile(filepath.Join(src, rel))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o750))
		require.NoError(t, os.WriteFile(filepath.Join(dst, rel), b, 0o600))
	}
}

// writeGenerations runs an exporter that writes two checkpoints: b1 at 1 step, then at 2.
func writeGenerations(t *testing.T, dir string) {
	t.Helper()
	h := newHarness(t, testConfig(dir), nil).mustStart()
	h.consume(running("b1", 1).metrics())
	h.tick()
	h.consume(running("b1", 2).metrics())
	h.tick()
	h.stop()
	require.FileExists(t, filepath.Join(dir, checkpoint.FileName(2)))
}

func TestCorruptCheckpointFallsBackToPrevious(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"flipped byte", func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-7] }},
		{"header only", func(b []byte) []byte { return b[:20] }},
		{"empty", func([]byte) []byte { return nil }},
		{"not a checkpoint", func([]byte) []byte { return []byte(`{"format":1,"builds":[]}`) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeGenerations(t, dir)
			newest := filepath.Join(dir, checkpoint.FileName(2))
			b, err := os.ReadFile(newest)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(newest, tc.damage(b), 0o600))

			h := newHarness(t, testConfig(dir), nil).mustStart()
			assert.Equal(t, int64(1), status(t, h, "b1").Phases[1].StepsCompleted, "the previous generation is used")
			assert.NoFileExists(t, newest)
			assert.FileExists(t, newest+".corrupt")
			assert.True(t, h.logged("error", "checkpoint file is corrupt"))
			assert.True(t, h.logged("error", newest), "the log names the file")
			// The next checkpoint does not reuse the corrupt file's number.
			h.consume(running("b1", 3).metrics())
			h.tick()
			assert.FileExists(t, filepath.Join(dir, checkpoint.FileName(3)))
		})
	}
}

func TestAllCheckpointsCorruptStartsEmptyAndSaysSo(t *testing.T) {
	dir := t.TempDir()
	writeGenerations(t, dir)
	for _, seq := range []uint64{1, 2, 3} {
		p := filepath.Join(dir, checkpoint.FileName(seq))
		if _, err := os.Stat(p); err == nil {
			require.NoError(t, os.WriteFile(p, []byte("garbage"), 0o600))
		}
	}
	h := newHarness(t, testConfig(dir), nil).mustStart()
	code, _ := h.get("/v1/builds/b1")
	assert.Equal(t, http.StatusNotFound, code)
	assert.True(t, h.logged("error", "all checkpoint files are corrupt"))
}

func TestNoCheckpointStartsEmpty(t *testing.T) {
	h := newHarness(t, testConfig(t.TempDir()), nil).mustStart()
	assert.True(t, h.logged("info", "no checkpoint found"))
	code, body := h.get("/v1/builds")
	require.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"builds":[],"count":0}`, string(body))
}

func TestGenerationsAreBounded(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Generations = 2
	h := newHarness(t, cfg, nil).mustStart()
	for i := int64(1); i <= 4; i++ {
		h.consume(running("b1", i).metrics())
		h.tick()
	}
	var ckpts []string
	for _, f := range files(t, dir) {
		if strings.HasSuffix(f, ".ckpt") {
			ckpts = append(ckpts, f)
		}
	}
	assert.Equal(t, []string{checkpoint.FileName(3), checkpoint.FileName(4)}, ckpts)
}

func TestUnchangedStateIsNotRewritten(t *testing.T) {
	h := newHarness(t, testConfig(t.TempDir()), nil).mustStart()
	h.consume(running("b1", 1).metrics())
	h.tick()
	written := h.fs.renames.Load()
	// The receiver repeats the same data every report interval: nothing to write.
	h.consume(running("b1", 1).metrics())
	h.tick()
	h.tick()
	assert.Equal(t, written, h.fs.renames.Load())
}

// TestBurstOfCompletionsIsCoalesced: 50 phase completions in a burst lead to a bounded
// number of writes (one at once, one after the minimum gap), not 50.
func TestBurstOfCompletionsIsCoalesced(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Interval = time.Hour
	h := newHarness(t, cfg, nil).mustStart()
	require.True(t, h.clock.BlockUntil(1))
	for i := 0; i < 50; i++ {
		b := running("burst-"+string(rune('a'+i%26))+string(rune('a'+i/26)), 4)
		b.phases[1].state = "completed"
		h.consume(b.metrics())
	}
	first := h.waitFlush(t0)
	require.NoError(t, first.err)
	// The rest waits for the gap timer.
	require.True(t, h.clock.BlockUntil(2))
	h.clock.Advance(minWriteGap)
	h.waitFlush(t0.Add(minWriteGap))
	got := h.fs.renames.Load()
	assert.GreaterOrEqual(t, got, int64(1))
	assert.LessOrEqual(t, got, int64(2), "50 completions were written %d times", got)

	code, body := h.get("/v1/builds")
	require.Equal(t, http.StatusOK, code)
	var list struct{ Count int }
	require.NoError(t, json.Unmarshal(body, &list))
	assert.Equal(t, 50, list.Count)
	h.stop()
	assert.LessOrEqual(t, h.fs.renames.Load(), int64(3))
}

// TestDiskFullAndReadOnly: a write fault is logged once with the cause, counted, the state
// stays served, and writes resume when the fault clears.
func TestDiskFullAndReadOnly(t *testing.T) {
	for _, fault := range []syscall.Errno{syscall.ENOSPC, syscall.EROFS} {
		t.Run(fault.Error(), func(t *testing.T) {
			h := newHarness(t, testConfig(t.TempDir()), nil).mustStart()
			h.consume(running("b1", 1).metrics())
			require.NoError(t, h.tick().err)

			h.fs.setFault(fault)
			h.consume(running("b1", 2).metrics())
			f := h.tick()
			require.ErrorIs(t, f.err, fault)
			h.consume(running("b1", 3).metrics())
			require.ErrorIs(t, h.tick().err, fault)

			var failures int
			for _, e := range h.logs.FilterMessageSnippet("checkpoint write failed").All() {
				failures++
				assert.Contains(t, e.ContextMap()["error"], fault.Error())
			}
			assert.Equal(t, 1, failures, "one error log per streak")
			assert.Equal(t, int64(3), status(t, h, "b1").Phases[1].StepsCompleted, "fresh state is served")
			metadatatest.AssertEqualExporterCheckpointCheckpointsFailed(t, h.tel,
				[]metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())

			h.fs.setFault(nil)
			require.NoError(t, h.tick().err)
			// The writer logs after the flush returns.
			assert.Eventually(t, func() bool { return h.logged("info", "checkpoint writes recovered") }, 10*time.Second, time.Millisecond)
			h.stop()

			h2 := newHarness(t, testConfig(h.cfg.Directory), nil).mustStart()
			assert.Equal(t, int64(3), status(t, h2, "b1").Phases[1].StepsCompleted)
		})
	}
}

func TestStartFailsWhenDirectoryCannotBeCreated(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o600))
	h := newHarness(t, testConfig(filepath.Join(blocker, "checkpoints")), nil)
	err := h.start()
	require.Error(t, err)
	assert.Contains(t, err.Error(), blocker)
	require.NoError(t, h.exp.Shutdown(context.Background()))
}

func TestConsumeNeverBlocksOnSlowWrites(t *testing.T) {
	// The consume path only touches memory: with the file system failing, a large batch is
	// still reduced at once.
	h := newHarness(t, testConfig(t.TempDir()), clock.NewFake(t0)).mustStart()
	h.fs.setFault(syscall.ENOSPC)
	md := pmetric.NewMetrics()
	for i := 0; i < 200; i++ {
		running("many-"+strings.Repeat("x", i%5)+string(rune('a'+i%26))+string(rune('a'+i/26)), 1).metrics().ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
	}
	h.consume(md)
	code, body := h.get("/v1/builds?state=running")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `"count":`)
}
