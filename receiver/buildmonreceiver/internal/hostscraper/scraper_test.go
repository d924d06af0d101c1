package hostscraper

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/net"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/collector/scraper/scrapererror"

	"github.com/buildmon/buildmon/internal/metadata"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// testScrapers are both scrapers on one fake source, started, with a clock the test moves.
type testScrapers struct {
	system    *systemScraper
	resources *resourcesScraper
	src       *fakeSource
	now       time.Time
}

func (ts *testScrapers) advance(d time.Duration) { ts.now = ts.now.Add(d) }

func newTestScrapers(t *testing.T, mbc metadata.MetricsBuilderConfig, mutate func(*Config)) *testScrapers {
	t.Helper()
	return newTestScrapersOn(t, linuxSource(), mbc, mutate)
}

func newTestScrapersOn(t *testing.T, src hostSource, mbc metadata.MetricsBuilderConfig, mutate func(*Config)) *testScrapers {
	t.Helper()
	ts := &testScrapers{now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	ts.src, _ = src.(*fakeSource)
	cfg := NewDefaultConfig()
	cfg.Hostname = "h1"
	if mutate != nil {
		mutate(&cfg)
	}
	require.NoError(t, cfg.Validate())
	set := receivertest.NewNopSettings(metadata.Type)
	clock := func() time.Time { return ts.now }

	systemBase := newHostBase(&cfg, cfg.Hostname, mbc, set, src)
	systemBase.now = clock
	ts.system = newSystemScraper(systemBase)
	resourcesBase := newHostBase(&cfg, cfg.Hostname, mbc, set, src)
	resourcesBase.now = clock
	var err error
	ts.resources, err = newResourcesScraper(resourcesBase, &cfg)
	require.NoError(t, err)

	require.NoError(t, ts.system.start(context.Background(), nil))
	require.NoError(t, ts.resources.start(context.Background(), nil))
	t.Cleanup(func() {
		assert.NoError(t, ts.system.shutdown(context.Background()))
		assert.NoError(t, ts.resources.shutdown(context.Background()))
	})
	return ts
}

func (ts *testScrapers) scrapeSystem(t *testing.T) pmetric.Metrics {
	t.Helper()
	md, err := ts.system.scrape(context.Background())
	require.NoError(t, err)
	return md
}

func (ts *testScrapers) scrapeResources(t *testing.T) pmetric.Metrics {
	t.Helper()
	md, err := ts.resources.scrape(context.Background())
	require.NoError(t, err)
	return md
}

// points returns metric name → data point attribute values joined with "/" → value.
func points(md pmetric.Metrics) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				dps := numberDataPoints(m)
				if out[m.Name()] == nil {
					out[m.Name()] = map[string]float64{}
				}
				for _, dp := range dps.All() {
					var key []string
					for _, v := range dp.Attributes().All() {
						key = append(key, v.AsString())
					}
					v := dp.DoubleValue()
					if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
						v = float64(dp.IntValue())
					}
					out[m.Name()][strings.Join(key, "/")] = v
				}
			}
		}
	}
	return out
}

func compareGolden(t *testing.T, name string, md pmetric.Metrics) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, golden.WriteMetrics(t, path, md))
	}
	want, err := golden.ReadMetrics(path)
	require.NoError(t, err)
	// golden.WriteMetrics normalises timestamps and sorts data points; assertTimestamps
	// checks the timestamps.
	require.NoError(t, pmetrictest.CompareMetrics(want, md,
		pmetrictest.IgnoreTimestamp(), pmetrictest.IgnoreStartTimestamp(), pmetrictest.IgnoreMetricDataPointsOrder()))
}

// assertTimestamps checks that every data point carries the scrape's time and, as start time,
// the host's boot time (btime in the fake /proc/stat): the cumulative counters count from boot.
func assertTimestamps(t *testing.T, md pmetric.Metrics, now time.Time) {
	t.Helper()
	boot := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				for _, dp := range numberDataPoints(m).All() {
					assert.Equal(t, now, dp.Timestamp().AsTime(), m.Name())
					assert.Equal(t, boot, dp.StartTimestamp().AsTime(), m.Name())
					n++
				}
			}
		}
	}
	assert.Positive(t, n)
}

// moveLinuxCounters moves the readings of linuxSource as the golden test's second scrape
// sees them, 2 s after the first: 200 jiffies pass (user +60, system +20, idle +100, iowait
// +20: 80 of 200 busy); sda does 40 reads and 10 writes (20/s and 5/s), nvme0n1 is idle, loop0
// and the partitions move but are not reported; eth0 receives 4000 bytes and sends 1000 (2000
// B/s and 500 B/s).
func moveLinuxCounters(src *fakeSource) {
	src.cpu = cpu.TimesStat{CPU: "cpu-total", User: 1.6, System: 0.7, Idle: 9, Iowait: 0.7}
	src.disks["loop0"] = linuxDisk("loop0", 500, 1000, 0, 0)
	src.disks["sda"] = linuxDisk("sda", 140, 2400, 60, 1200)
	src.disks["sda1"] = linuxDisk("sda1", 130, 2200, 55, 1100)
	src.nics = []net.IOCountersStat{
		{Name: "lo", BytesRecv: 9000, BytesSent: 9000},
		{Name: "eth0", BytesRecv: 9000, BytesSent: 4000},
		{Name: "veth1a2b", BytesRecv: 9700, BytesSent: 9800},
	}
}

// TestScrapeGolden scrapes Linux-shaped readings twice, 2 s apart, with counters moved in
// between; the second batches (utilization over the interval, rates) are the golden files.
func TestScrapeGolden(t *testing.T) {
	ts := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), nil)
	ts.scrapeSystem(t)
	ts.scrapeResources(t)
	moveLinuxCounters(ts.src)
	ts.advance(2 * time.Second)

	system, resources := ts.scrapeSystem(t), ts.scrapeResources(t)
	compareGolden(t, "scrape_system.yaml", system)
	compareGolden(t, "scrape_resources.yaml", resources)
	assertTimestamps(t, system, ts.now)
	assertTimestamps(t, resources, ts.now)
}

func TestScrapeFirst(t *testing.T) {
	ts := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), nil)

	md := ts.scrapeSystem(t)
	require.Equal(t, 1, md.ResourceMetrics().Len())
	assert.Equal(t, map[string]any{"host.name": "h1"}, md.ResourceMetrics().At(0).Resource().Attributes().AsRaw())
	p := points(md)
	assert.NotContains(t, p, "system.cpu.utilization", "the first scrape takes the CPU baseline only")
	assert.Equal(t, map[string]float64{
		"used": 300 << 10, "free": 400 << 10, "cached": 200 << 10, "buffered": 100 << 10,
	}, p["system.memory.usage"], "used = total - free - buffers - (cached + reclaimable slab)")
	assert.InDelta(t, 0.3, p["system.memory.utilization"]["used"], 1e-12)

	p = points(ts.scrapeResources(t))
	assert.Equal(t, map[string]float64{
		"sda/read": 2000 * 512, "sda/write": 1000 * 512, "nvme0n1/read": 80 * 512, "nvme0n1/write": 160 * 512,
	}, p["system.disk.io"], "whole disks only: no loop device, partition or device-mapper volume")
	assert.Equal(t, map[string]float64{"sda/read": 100, "sda/write": 50, "nvme0n1/read": 10, "nvme0n1/write": 20}, p["system.disk.operations"])
	assert.Equal(t, map[string]float64{"eth0/receive": 5000, "eth0/transmit": 3000}, p["system.network.io"], "no loopback, no veth")
	assert.NotContains(t, p, "system.disk.operations.rate", "no rate on the first scrape")
	assert.NotContains(t, p, "system.network.io.rate", "no rate on the first scrape")
	assert.Equal(t, map[string]float64{
		"/dev/sda///ext4":          0.6 / 0.95,
		"/dev/nvme0n1p1//data/xfs": 0.25,
		"/dev/sdb//work dir/ext4":  1500.0 / 1900,
	}, p["system.filesystem.utilization"])
	assert.Equal(t, 50.0, p["system.filesystem.usage"]["/dev/sda///ext4/reserved"])
}

// jiffies are Linux CPU times as /proc/stat counts them (100 per second), in gopsutil's
// seconds: user nice system idle iowait irq softirq steal guest guest_nice.
func jiffies(v ...float64) cpu.TimesStat {
	var f [10]float64
	copy(f[:], v)
	return cpu.TimesStat{
		CPU: "cpu-total", User: f[0] / 100, Nice: f[1] / 100, System: f[2] / 100, Idle: f[3] / 100, Iowait: f[4] / 100,
		Irq: f[5] / 100, Softirq: f[6] / 100, Steal: f[7] / 100, Guest: f[8] / 100, GuestNice: f[9] / 100,
	}
}

func TestScrapeCPU(t *testing.T) {
	ts := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), nil)
	busy := func(times cpu.TimesStat) (float64, bool) {
		ts.src.cpu = times
		ts.advance(time.Second)
		v, ok := points(ts.scrapeSystem(t))["system.cpu.utilization"]["busy"]
		return v, ok
	}
	_, ok := busy(jiffies(100, 0, 50, 800, 50))
	assert.False(t, ok, "baseline")

	// +90 busy (user, nice, system, irq, softirq, steal; guest is part of user), +110 idle
	// and iowait.
	v, ok := busy(jiffies(150, 10, 60, 900, 60, 5, 5, 10, 40))
	assert.True(t, ok)
	assert.Equal(t, 0.45, v, "90 of 200, rounded to 1e-9: no float noise")

	_, ok = busy(jiffies(150, 10, 60, 900, 60, 5, 5, 10, 40))
	assert.False(t, ok, "no tick passed: nothing to measure")
	v, ok = busy(jiffies(250, 10, 60, 900, 60, 5, 5, 10, 40))
	assert.True(t, ok, "measured from the last baseline that moved")
	assert.Equal(t, 1.0, v)

	_, ok = busy(jiffies(10, 0, 10, 100))
	assert.False(t, ok, "counters went back: a new baseline")
	v, ok = busy(jiffies(20, 0, 10, 190))
	assert.True(t, ok)
	assert.Equal(t, 0.1, v)
}

// TestScrapeRates moves the fake clock and counters across several scrapes: rates are the
// counters' differences over the time between the scrapes that read them.
func TestScrapeRates(t *testing.T) {
	ts := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), func(c *Config) {
		c.Interfaces = MatchConfig{Include: []string{"^eth"}}
	})
	nics := func(rxTx ...uint64) {
		ts.src.nics = nil
		for i := 0; i+1 < len(rxTx); i += 2 {
			ts.src.nics = append(ts.src.nics, net.IOCountersStat{Name: fmt.Sprintf("eth%d", i/2), BytesRecv: rxTx[i], BytesSent: rxTx[i+1]})
		}
	}
	sda := func(reads, writes uint64) {
		ts.src.disks = map[string]disk.IOCountersStat{"sda": {Name: "sda", ReadCount: reads, WriteCount: writes}}
	}
	nics(1000, 2000, 0, 0)
	sda(100, 100)
	ts.scrapeResources(t)

	// 500 ms later.
	nics(1500, 2100, 50, 0)
	sda(150, 100)
	ts.advance(500 * time.Millisecond)
	p := points(ts.scrapeResources(t))
	assert.Equal(t, map[string]float64{"eth0/receive": 1000, "eth0/transmit": 200, "eth1/receive": 100, "eth1/transmit": 0}, p["system.network.io.rate"])
	assert.Equal(t, map[string]float64{"sda/read": 100, "sda/write": 0}, p["system.disk.operations.rate"])

	// eth0 was re-created (its counters start again) and eth1 is gone; sda's write counter
	// wrapped. Only what counts on from the last scrape gets a rate.
	nics(10, 20)
	sda(250, 5)
	ts.advance(time.Second)
	p = points(ts.scrapeResources(t))
	assert.Empty(t, p["system.network.io.rate"])
	assert.Equal(t, map[string]float64{"eth0/receive": 10, "eth0/transmit": 20}, p["system.network.io"])
	assert.Equal(t, map[string]float64{"sda/read": 100}, p["system.disk.operations.rate"])

	// eth1 comes back: it is new again (no rate); eth0 counts on from its reset.
	nics(410, 20, 5000, 0)
	sda(250, 25)
	ts.advance(2 * time.Second)
	p = points(ts.scrapeResources(t))
	assert.Equal(t, map[string]float64{"eth0/receive": 200, "eth0/transmit": 0}, p["system.network.io.rate"])
	assert.Equal(t, map[string]float64{"sda/read": 0, "sda/write": 10}, p["system.disk.operations.rate"])

	// A failed read keeps the baseline: the next rate spans both intervals.
	ts.src.errs = map[string]error{"nics": errors.New("no network")}
	ts.advance(time.Second)
	_, err := ts.resources.scrape(context.Background())
	require.Error(t, err)
	ts.src.errs = nil
	nics(1010, 20, 5000, 0)
	ts.advance(time.Second)
	p = points(ts.scrapeResources(t))
	assert.Equal(t, map[string]float64{"eth0/receive": 300, "eth0/transmit": 0, "eth1/receive": 0, "eth1/transmit": 0}, p["system.network.io.rate"])
}

func TestScrapePartialErrors(t *testing.T) {
	ts := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), nil)
	ts.src.errs = map[string]error{"nics": errors.New("open /proc/net/dev: no such file"), "usage /data": errors.New("permission denied")}

	md, err := ts.resources.scrape(context.Background())
	require.Error(t, err)
	assert.True(t, scrapererror.IsPartialScrapeError(err), "what was read is still sent")
	assert.ErrorContains(t, err, "reading network counters: open /proc/net/dev: no such file")
	assert.ErrorContains(t, err, "filesystem /data: permission denied")
	p := points(md)
	assert.Contains(t, p, "system.disk.io")
	assert.NotContains(t, p, "system.network.io")
	assert.Len(t, p["system.filesystem.utilization"], 2, "/ and /work dir")

	// A scrape past its timeout measures no more filesystems.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	md, err = ts.resources.scrape(ctx)
	require.Error(t, err)
	assert.ErrorContains(t, err, "filesystems from / on: context canceled")
	assert.NotContains(t, points(md), "system.filesystem.usage")
	assert.Contains(t, points(md), "system.disk.io")

	// No mount table at all is one error; a partial list (a drive that does not answer) is
	// measured and its error reported.
	ts.src.errs = map[string]error{"parts": errors.New("getfsstat: interrupted")}
	md, err = ts.resources.scrape(context.Background())
	assert.ErrorContains(t, err, "reading the mount table: getfsstat: interrupted")
	assert.NotContains(t, points(md), "system.filesystem.usage")

	ts2 := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), nil)
	ts2.src.errs = map[string]error{"mem": errors.New("open /proc/meminfo: no such file")}
	_, err = ts2.system.scrape(context.Background())
	require.Error(t, err)
	ts2.src.cpu = jiffies(200, 0, 50, 900, 50)
	md, err = ts2.system.scrape(context.Background())
	require.Error(t, err)
	assert.True(t, scrapererror.IsPartialScrapeError(err))
	assert.ErrorContains(t, err, "reading memory: open /proc/meminfo: no such file")
	assert.Equal(t, map[string]map[string]float64{"system.cpu.utilization": {"busy": 0.5}}, points(md))

	ts2.src.errs = map[string]error{"cpu": errors.New("no stat")}
	_, err = ts2.system.scrape(context.Background())
	assert.ErrorContains(t, err, "reading CPU times: no stat")
	ts2.src.errs, ts2.src.mem.Total = nil, 0
	_, err = ts2.system.scrape(context.Background())
	assert.ErrorContains(t, err, "reading memory: the total is 0")
}

// A partial mount table from gopsutil is measured and its error reported.
type partialParts struct{ *fakeSource }

func (p partialParts) partitions(ctx context.Context) ([]disk.PartitionStat, error) {
	parts, _ := p.fakeSource.partitions(ctx)
	return parts[:1], errors.New("drive E: not ready")
}

func TestScrapePartialMountTable(t *testing.T) {
	ts := newTestScrapersOn(t, partialParts{linuxSource()}, metadata.NewDefaultMetricsBuilderConfig(), nil)
	md, err := ts.resources.scrape(context.Background())
	require.Error(t, err)
	assert.ErrorContains(t, err, "reading the mount table: drive E: not ready")
	assert.Equal(t, map[string]float64{"/dev/sda///ext4": 0.6 / 0.95}, points(md)["system.filesystem.utilization"])
}

// A metric switched off in the receiver's `metrics:` section is not sent, and what only
// switched-off metrics need is not read.
func TestScrapeMetricsSwitchedOff(t *testing.T) {
	mbc := metadata.NewDefaultMetricsBuilderConfig()
	mbc.Metrics.SystemMemoryUtilization.Enabled = false
	mbc.Metrics.SystemNetworkIo.Enabled = false
	mbc.Metrics.SystemNetworkIoRate.Enabled = false
	mbc.Metrics.SystemFilesystemUsage.Enabled = false
	mbc.Metrics.SystemFilesystemUtilization.Enabled = false
	mbc.Metrics.SystemDiskOperationsRate.Enabled = false
	ts := newTestScrapers(t, mbc, nil)

	ts.scrapeResources(t)
	ts.advance(time.Second)
	names := func(md pmetric.Metrics) []string {
		var out []string
		for name := range points(md) {
			out = append(out, name)
		}
		return out
	}
	assert.ElementsMatch(t, []string{"system.disk.io", "system.disk.operations"}, names(ts.scrapeResources(t)))
	assert.ElementsMatch(t, []string{"system.memory.usage"}, names(ts.scrapeSystem(t)))
	assert.Zero(t, ts.src.calls["nics"]+ts.src.calls["parts"], "network and mounts are not read")

	mbc.Metrics.SystemCPUUtilization.Enabled = false
	mbc.Metrics.SystemMemoryUsage.Enabled = false
	ts = newTestScrapers(t, mbc, nil)
	assert.Zero(t, ts.scrapeSystem(t).DataPointCount())
	assert.Zero(t, ts.src.calls["cpu"]+ts.src.calls["mem"], "CPU and memory are not read")
}

// On this machine through gopsutil with the default config.
func TestScrapeRealHost(t *testing.T) {
	cfg := NewDefaultConfig()
	set := receivertest.NewNopSettings(metadata.Type)
	mbc := metadata.NewDefaultMetricsBuilderConfig()
	src := newGopsutilSource("")
	system := newSystemScraper(newHostBase(&cfg, "real", mbc, set, src))
	resources, err := newResourcesScraper(newHostBase(&cfg, "real", mbc, set, src), &cfg)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, system.start(ctx, nil))
	require.NoError(t, resources.start(ctx, nil))
	defer func() {
		assert.NoError(t, system.shutdown(ctx))
		assert.NoError(t, resources.shutdown(ctx))
	}()

	var p map[string]map[string]float64
	require.Eventually(t, func() bool {
		md, err := system.scrape(ctx)
		require.NoError(t, err)
		p = points(md)
		return len(p["system.cpu.utilization"]) == 1 // once a clock tick passed between two scrapes
	}, 10*time.Second, time.Millisecond)
	assert.GreaterOrEqual(t, p["system.cpu.utilization"]["busy"], 0.0)
	assert.LessOrEqual(t, p["system.cpu.utilization"]["busy"], 1.0)
	assert.Greater(t, p["system.memory.usage"]["used"], 0.0)

	md, err := resources.scrape(ctx)
	require.NoError(t, err)
	p = points(md)
	assert.Contains(t, p, "system.network.io")
	assert.NotEmpty(t, p["system.filesystem.utilization"], "at least the root filesystem")
	var start pcommon.Timestamp
	m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := 0; i < m.Len(); i++ {
		if m.At(i).Name() == "system.network.io" {
			start = m.At(i).Sum().DataPoints().At(0).StartTimestamp()
		}
	}
	assert.Less(t, start.AsTime(), time.Now().Add(-time.Second), "cumulative counters start at boot")
}
