package checkpointexporter

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/report"
	"github.com/buildmon/buildmon/internal/wire"
)

// hostShape builds one host scrape in one of the shapes the exporter reads.
type hostShape struct {
	name string
	// scrape returns the metrics of a scrape at second s with the given busy CPU share over
	// the interval before it (its first scrape only sets counter baselines), memory in use
	// and counters.
	scrape func(at time.Time, k int, busy float64, memUsed int64, c hostCounters) pmetric.Metrics
}

// cpuTimes are cumulative system.cpu.time seconds (of both CPUs) that give the busy shares
// 0.4, 0.6 and 0.8 over the 10 s intervals after scrape 0.
var cpuTimes = [][2]float64{{100, 100}, {108, 112}, {120, 120}, {136, 124}}

var hostShapes = []hostShape{
	{name: "buildmon receiver", scrape: func(at time.Time, _ int, busy float64, memUsed int64, c hostCounters) pmetric.Metrics {
		return receiverScrape{name: "h1", at: at, cpu: busy, memUsed: memUsed, memFree: 8 << 30, hostCounters: c}.metrics()
	}},
	{name: "hostmetrics, its own attribute names", scrape: func(at time.Time, k int, _ float64, memUsed int64, c hostCounters) pmetric.Metrics {
		return hostmetricsScrape{name: "h1", at: at, cpuBusy: cpuTimes[k][0], cpuIdle: cpuTimes[k][1], memUsed: memUsed, memFree: 8 << 30, hostCounters: c}.metrics()
	}},
	{name: "hostmetrics, semantic-convention attribute names", scrape: func(at time.Time, k int, _ float64, memUsed int64, c hostCounters) pmetric.Metrics {
		return hostmetricsScrape{name: "h1", at: at, semconv: true, cpuBusy: cpuTimes[k][0], cpuIdle: cpuTimes[k][1], memUsed: memUsed, memFree: 8 << 30, hostCounters: c}.metrics()
	}},
}

// counters returns per-device cumulative counters: reads r, writes twice r, operations r/100
// and twice that, transmitted bytes r/2 and received three times that.
func counters(r int64) hostCounters {
	return hostCounters{diskRead: r, diskWrite: 2 * r, opsRead: r / 100, opsWrite: r / 50, netTx: r / 2, netRx: 3 * r / 2}
}

// twoPhaseBuild is build b1 on h1: BUILD from second 0 to 25, TEST from 25 to 40.
func twoPhaseBuild(s int, buildState, testState string, finished bool) buildSpec {
	at := t0.Add(time.Duration(s) * time.Second)
	b := buildSpec{id: "b1", pipeline: "p", host: "h1", at: at, duration: float64(s), processed: true, progress: 0.5, eta: 10,
		phases: []phaseSpec{
			{name: "BUILD", state: buildState, total: 1, duration: float64(min(s, 25)), progress: 0.5},
			{name: "TEST", state: testState, total: 1, duration: float64(max(0, s-25)), progress: 0},
		}}
	if finished {
		b.finished, b.result = true, "success"
	}
	return b
}

func phaseReportOf(t *testing.T, h *harness, phase string) report.Phase {
	t.Helper()
	code, body := h.get("/v1/builds/b1/phases/" + phase + "/report")
	require.Equal(t, 200, code, string(body))
	var r report.Phase
	require.NoError(t, json.Unmarshal(body, &r))
	return r
}

func buildReportOf(t *testing.T, h *harness) report.Build {
	t.Helper()
	code, body := h.get("/v1/builds/b1/report")
	require.Equal(t, 200, code, string(body))
	var r report.Build
	require.NoError(t, json.Unmarshal(body, &r))
	return r
}

type wantResources struct {
	source                   string
	cpuAvg, cpuMax           float64
	mem                      int64
	diskR, diskW, netT, netR int64
	opsR, opsW               int64
	noCPU                    bool
}

func assertResources(t *testing.T, want wantResources, got report.Resources, what string) {
	t.Helper()
	assert.Equal(t, want.source, got.Source, what)
	if want.noCPU {
		assert.Nil(t, got.CPUUtilizationAvg, what)
	} else if assert.NotNil(t, got.CPUUtilizationAvg, what) && assert.NotNil(t, got.CPUUtilizationMax, what) {
		assert.InDelta(t, want.cpuAvg, *got.CPUUtilizationAvg, 1e-6, what+": cpu avg (reports round to 6 decimals)")
		assert.InDelta(t, want.cpuMax, *got.CPUUtilizationMax, 1e-9, what+": cpu max")
	}
	for _, f := range []struct {
		name string
		want int64
		got  *int64
	}{
		{"memory max", want.mem, got.MemoryUsageMaxBytes},
		{"disk read", want.diskR, got.DiskReadBytes}, {"disk write", want.diskW, got.DiskWriteBytes},
		{"net transmit", want.netT, got.NetworkTransmitBytes}, {"net receive", want.netR, got.NetworkReceiveBytes},
		{"read operations", want.opsR, got.DiskReadOperations}, {"write operations", want.opsW, got.DiskWriteOperations},
	} {
		if assert.NotNil(t, f.got, "%s: %s", what, f.name) {
			assert.Equal(t, f.want, *f.got, "%s: %s", what, f.name)
		}
	}
}

// TestPhaseResourcesFromHostMetrics: with the processor's phase_resources off (no
// build.phase.* metrics), the exporter attributes host resources to phases itself, from
// either host-metric shape: every figure is in both phase reports and the build report, and
// the status API's host resources carry the rates derived from the counters.
func TestPhaseResourcesFromHostMetrics(t *testing.T) {
	for _, shape := range hostShapes {
		t.Run(shape.name, func(t *testing.T) {
			h := newHarness(t, testConfig(t.TempDir()), nil).mustStart()
			at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
			busy := []float64{0.2, 0.4, 0.6, 0.8}
			mem := []int64{1 << 30, 3 << 30, 2 << 30, 4 << 30}
			reads := []int64{0, 1000, 3000, 6000}
			scrape := func(k int) { h.consume(shape.scrape(at(10*k), k, busy[k], mem[k], counters(reads[k]))) }

			h.consume(twoPhaseBuild(0, "running", "pending", false).metrics())
			scrape(0)
			scrape(1)
			scrape(2)

			// The receiver's shape sends a busy share per scrape (0.2 at the phase's first
			// sample); hostmetrics' CPU time counters give one from the second scrape on.
			buildCPU, buildMax := (0.2+0.4+0.6)/3, 0.6
			if shape.name != "buildmon receiver" {
				buildCPU = (0.4 + 0.6) / 2
			}
			// Two devices each: BUILD sees the counters go from scrape 0 to 2, TEST from 2 to 3.
			wantBuild := wantResources{source: "host_metrics", cpuAvg: buildCPU, cpuMax: buildMax, mem: 3 << 30,
				diskR: 6000, diskW: 12000, opsR: 60, opsW: 120, netT: 3000, netR: 9000}
			wantTest := wantResources{source: "host_metrics", cpuAvg: 0.8, cpuMax: 0.8, mem: 4 << 30,
				diskR: 6000, diskW: 12000, opsR: 60, opsW: 120, netT: 3000, netR: 9000}

			// While BUILD runs, the status API shows its figures so far; TEST has none yet.
			running := status(t, h, "b1")
			require.NotNil(t, running.Phases[0].Resources)
			assertResources(t, wantBuild, *running.Phases[0].Resources, "status of the running BUILD")
			assert.Nil(t, running.Phases[1].Resources, "a pending phase has no figures")

			h.consume(twoPhaseBuild(25, "completed", "running", false).metrics())
			scrape(3)
			h.consume(twoPhaseBuild(40, "completed", "completed", true).metrics())
			h.tick()

			assertResources(t, wantBuild, phaseReportOf(t, h, "BUILD").Resources, "BUILD")
			assertResources(t, wantTest, phaseReportOf(t, h, "TEST").Resources, "TEST")
			ended := status(t, h, "b1")
			for i, name := range []string{"BUILD", "TEST"} {
				require.NotNil(t, ended.Phases[i].Resources, name)
				assert.Equal(t, phaseReportOf(t, h, name).Resources, *ended.Phases[i].Resources, "the status of an ended phase shows its report's figures")
			}

			// The build: sums of the phases' increases, the highest maxima, the phases' CPU
			// averages weighted by their durations (25 s and 15 s).
			br := buildReportOf(t, h)
			assertResources(t, wantResources{source: "host_metrics", cpuAvg: (buildCPU*25 + 0.8*15) / 40, cpuMax: 0.8, mem: 4 << 30,
				diskR: 12000, diskW: 24000, opsR: 120, opsW: 240, netT: 6000, netR: 18000}, br.ResourceEfficiency.Resources, "build")

			// The status API: the host's newest reading, rates derived from the counters over
			// its last 10 s (two devices, two interfaces).
			for _, hr := range []wire.HostResources{*status(t, h, "b1").HostResources, hostStatus(t, h, "h1").Resources} {
				require.NotNil(t, hr.CPUUtilization)
				assert.InDelta(t, 0.8, *hr.CPUUtilization, 1e-9)
				require.NotNil(t, hr.MemoryUsedBytes)
				assert.Equal(t, int64(4<<30), *hr.MemoryUsedBytes)
				require.NotNil(t, hr.MemoryUtilization)
				assert.InDelta(t, 4.0/12, *hr.MemoryUtilization, 1e-9)
				for name, f := range map[string]struct {
					want float64
					got  *float64
				}{
					"net transmit/s": {300, hr.NetworkTransmitBytesPS}, "net receive/s": {900, hr.NetworkReceiveBytesPS},
					"read ops/s": {6, hr.DiskReadOpsPS}, "write ops/s": {12, hr.DiskWriteOpsPS},
				} {
					if assert.NotNil(t, f.got, name) {
						assert.InDelta(t, f.want, *f.got, 1e-9, name)
					}
				}
			}
		})
	}
}

func hostStatus(t *testing.T, h *harness, name string) wire.HostStatus {
	t.Helper()
	code, body := h.get("/v1/hosts/" + name)
	require.Equal(t, 200, code, string(body))
	var hs wire.HostStatus
	require.NoError(t, json.Unmarshal(body, &hs))
	return hs
}

// TestProcessorResourcesWin: the processor's build.phase.* figures replace the exporter's
// own in a phase's report when they arrive, also after the report was written; a phase
// without them keeps the exporter's, and the build report says its figures are mixed.
func TestProcessorResourcesWin(t *testing.T) {
	h := newHarness(t, testConfig(t.TempDir()), nil).mustStart()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	scrape := func(k int, r int64) {
		h.consume(receiverScrape{name: "h1", at: at(10 * k), cpu: 0.3, memUsed: 1 << 30, memFree: 1 << 30, hostCounters: counters(r)}.metrics())
	}
	h.consume(twoPhaseBuild(0, "running", "pending", false).metrics())
	scrape(0, 0)
	scrape(1, 5000)
	h.consume(twoPhaseBuild(25, "completed", "running", false).metrics())
	h.tick()
	assert.Equal(t, "host_metrics", phaseReportOf(t, h, "BUILD").Resources.Source)

	// The processor's figures of BUILD arrive with the build's next metrics.
	b := twoPhaseBuild(30, "completed", "running", false)
	b.phases[0].resources = true
	h.consume(b.metrics())
	scrape(3, 8000)
	h.consume(twoPhaseBuild(40, "completed", "completed", true).metrics())
	h.tick()
	// helpers_test.go's processor figures.
	processor := wantResources{source: "processor", cpuAvg: 0.5, cpuMax: 0.9, mem: 2 << 30,
		diskR: 1000, diskW: 2000, netT: 300, netR: 400, opsR: 10, opsW: 20}
	assertResources(t, processor, phaseReportOf(t, h, "BUILD").Resources, "BUILD")
	assertResources(t, wantResources{source: "host_metrics", cpuAvg: 0.3, cpuMax: 0.3, mem: 1 << 30,
		diskR: 6000, diskW: 12000, opsR: 60, opsW: 120, netT: 3000, netR: 9000}, phaseReportOf(t, h, "TEST").Resources, "TEST")
	assertResources(t, wantResources{source: "mixed", cpuAvg: (0.5*25 + 0.3*15) / 40, cpuMax: 0.9, mem: 2 << 30,
		diskR: 7000, diskW: 14000, netT: 3300, netR: 9400, opsR: 70, opsW: 140}, buildReportOf(t, h).ResourceEfficiency.Resources, "build")
}

// TestPhaseResourcesCounterReset: a counter below its previous value (a device reset, a
// host reboot) counts from zero, as in the processor; no figure goes negative.
func TestPhaseResourcesCounterReset(t *testing.T) {
	for _, shape := range hostShapes {
		t.Run(shape.name, func(t *testing.T) {
			h := newHarness(t, testConfig(t.TempDir()), nil).mustStart()
			at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
			h.consume(twoPhaseBuild(0, "running", "pending", false).metrics())
			for k, r := range []int64{100000, 101000, 200, 700} {
				h.consume(shape.scrape(at(10*k), k, 0.5, 1<<30, counters(r)))
			}
			h.consume(twoPhaseBuild(40, "completed", "completed", true).metrics())
			h.tick()
			// Per device: 1000, then 200 from zero, then 500.
			got := phaseReportOf(t, h, "BUILD").Resources
			require.NotNil(t, got.DiskReadBytes)
			assert.Equal(t, int64(2*1700), *got.DiskReadBytes)
			assert.Equal(t, int64(2*3400), *got.DiskWriteBytes)
			assert.Equal(t, int64(2*(10+2+5)), *got.DiskReadOperations)
			assert.Equal(t, int64(2*850), *got.NetworkTransmitBytes)
		})
	}
}

// TestPhaseResourcesAcrossRestart: a phase running when the exporter restarts from its
// checkpoint is attributed what its host spent from the first host reading after the
// restart (which sets the counters' baselines again); a phase that ended before keeps its
// figures; nothing is negative.
func TestPhaseResourcesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	scrape := func(h *harness, k int, r int64) {
		h.consume(receiverScrape{name: "h1", at: at(10 * k), cpu: 0.1 * float64(k), memUsed: int64(k) << 30, memFree: 8 << 30, hostCounters: counters(r)}.metrics())
	}
	h := newHarness(t, testConfig(dir), nil).mustStart()
	h.consume(twoPhaseBuild(0, "running", "pending", false).metrics())
	scrape(h, 0, 50000)
	scrape(h, 1, 60000)
	h.consume(twoPhaseBuild(15, "completed", "running", false).metrics())
	scrape(h, 2, 70000)
	h.tick()
	h.stop()

	h2 := newHarness(t, testConfig(dir), nil).mustStart()
	// The host's counters went on while the exporter was down; the first reading after the
	// restart is TEST's first sample and the counters' new baseline.
	scrape(h2, 4, 90000)
	scrape(h2, 5, 91000)
	h2.consume(twoPhaseBuild(55, "completed", "completed", true).metrics())
	h2.tick()

	assertResources(t, wantResources{source: "host_metrics", cpuAvg: 0.05, cpuMax: 0.1, mem: 1 << 30,
		diskR: 20000, diskW: 40000, opsR: 200, opsW: 400, netT: 10000, netR: 30000}, phaseReportOf(t, h2, "BUILD").Resources, "BUILD (before the restart)")
	assertResources(t, wantResources{source: "host_metrics", cpuAvg: 0.45, cpuMax: 0.5, mem: 5 << 30,
		diskR: 2000, diskW: 4000, opsR: 20, opsW: 40, netT: 1000, netR: 3000}, phaseReportOf(t, h2, "TEST").Resources, "TEST (across the restart)")
	// The build report, written after the restart, sums BUILD's figures restored from the
	// checkpoint and TEST's.
	assertResources(t, wantResources{source: "host_metrics", cpuAvg: (0.05*25 + 0.45*30) / 55, cpuMax: 0.5, mem: 5 << 30,
		diskR: 22000, diskW: 44000, opsR: 220, opsW: 440, netT: 11000, netR: 33000}, buildReportOf(t, h2).ResourceEfficiency.Resources, "build")
}

// TestPhaseWithoutHostSample: a phase that got no host reading while it ran has no figures
// (source none), not zeros.
func TestPhaseWithoutHostSample(t *testing.T) {
	h := newHarness(t, testConfig(t.TempDir()), nil).mustStart()
	h.consume(receiverScrape{name: "h1", at: t0, cpu: 0.5, memUsed: 1, memFree: 1, hostCounters: counters(100)}.metrics())
	h.consume(twoPhaseBuild(1, "running", "pending", false).metrics())
	h.consume(twoPhaseBuild(3, "completed", "completed", true).metrics())
	h.tick()
	r := phaseReportOf(t, h, "BUILD").Resources
	assert.Equal(t, report.Resources{Source: "none"}, r)
}
