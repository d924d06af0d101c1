package checkpointexporter

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/metadatatest"
)

func reportDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, reportsDir))
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestRetentionRemovesFinishedBuildsAndReports(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Retention.FinishedBuilds = 24 * time.Hour
	h := newHarness(t, cfg, nil).mustStart()
	h.consume(finishedBuild("done", "pipe").metrics(), running("busy", 1).metrics())
	h.tick()
	assert.Equal(t, []string{"busy", "done"}, reportDirs(t, dir), "INIT of busy ended, done finished")

	h.advance(23 * time.Hour)
	code, _ := h.get("/v1/builds/done")
	assert.Equal(t, http.StatusOK, code, "kept within the retention age")

	h.advance(2 * time.Hour)
	code, _ = h.get("/v1/builds/done")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, []string{"busy"}, reportDirs(t, dir))
	code, _ = h.get("/v1/builds/busy")
	assert.Equal(t, http.StatusOK, code, "running builds are not subject to retention")

	// Late data of the removed build does not bring it back.
	h.consume(finishedBuild("done", "pipe").metrics())
	code, _ = h.get("/v1/builds/done")
	assert.Equal(t, http.StatusNotFound, code)

	// Nor does a restart.
	h.stop()
	h2 := newHarness(t, testConfig(dir), nil).mustStart()
	h2.consume(finishedBuild("done", "pipe").metrics())
	code, _ = h2.get("/v1/builds/done")
	assert.Equal(t, http.StatusNotFound, code)
}

func TestMaxReportsBytesEvictsOldestFinishedBuilds(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	h := newHarness(t, cfg, nil).mustStart()
	h.consume(finishedBuild("first", "pipe").metrics())
	h.tick()
	var perBuild int64
	for _, rel := range files(t, filepath.Join(dir, reportsDir, "first")) {
		st, err := os.Stat(filepath.Join(dir, reportsDir, "first", rel))
		require.NoError(t, err)
		perBuild += st.Size()
	}
	require.Positive(t, perBuild)
	h.stop()

	cfg = testConfig(dir)
	// Room for a bit more than two builds' reports.
	cfg.Retention.MaxReportsBytes = perBuild*2 + perBuild/2
	h = newHarness(t, cfg, clock.NewFake(t0.Add(time.Hour))).mustStart()
	h.consume(finishedBuild("second", "pipe").metrics())
	h.tick()
	h.consume(finishedBuild("third", "pipe").metrics())
	h.tick()
	h.tick()
	assert.Equal(t, []string{"second", "third"}, reportDirs(t, dir))
	code, _ := h.get("/v1/builds/first")
	assert.Equal(t, http.StatusNotFound, code)
	metadatatest.AssertEqualExporterCheckpointBuildsEvicted(t, h.tel,
		[]metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

func TestMaxBuildsEvictsOldest(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MaxBuilds = 3
	h := newHarness(t, cfg, nil).mustStart()
	h.consume(finishedBuild("finished-early", "pipe").metrics())
	for _, id := range []string{"r1", "r2", "r3"} {
		h.clock.Advance(time.Second)
		h.consume(running(id, 1).metrics())
	}
	// The finished build went first, then the least recently updated running one.
	for id, want := range map[string]int{"finished-early": 404, "r1": 200, "r2": 200, "r3": 200} {
		code, _ := h.get("/v1/builds/" + id)
		assert.Equal(t, want, code, id)
	}
	h.clock.Advance(time.Second)
	h.consume(running("r4", 1).metrics())
	code, _ := h.get("/v1/builds/r1")
	assert.Equal(t, http.StatusNotFound, code)
	assert.True(t, h.logged("warn", "max_builds reached"))
	metadatatest.AssertEqualExporterCheckpointBuildsEvicted(t, h.tel,
		[]metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualExporterCheckpointBuildsTracked(t, h.tel,
		[]metricdata.DataPoint[int64]{{Value: 3}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}
