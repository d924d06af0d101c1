package hostscraper

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/collector/scraper/scrapererror"

	"github.com/buildmon/buildmon/internal/metadata"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// fakeRoot copies testdata/root (a tiny proc tree: stat, meminfo, diskstats, net/dev,
// 1/mountinfo) into a temporary root_path, so a test may move its counters.
func fakeRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, os.DirFS(filepath.Join("testdata", "root"))))
	return root
}

// writeProc replaces a proc file of the fake root in place (the scrapers keep it open).
func writeProc(t *testing.T, root, name, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(root, "proc", name), []byte(content), 0o600))
}

// fakeUsage stands in for statfs with fixed sizes for the fake root's mount points.
func fakeUsage(root string) func(context.Context, string) (*disk.UsageStat, error) {
	sizes := map[string]disk.UsageStat{
		"/":         {Total: 1000, Used: 600, Free: 350}, // 50 reserved
		"/data":     {Total: 4000, Used: 1000, Free: 3000},
		"/work dir": {Total: 2000, Used: 1500, Free: 400}, // 100 reserved
	}
	return func(_ context.Context, p string) (*disk.UsageStat, error) {
		mp := strings.TrimPrefix(p, root)
		if mp == "" {
			mp = "/"
		}
		u, ok := sizes[mp]
		if !ok {
			return nil, fmt.Errorf("statfs %s: no such file or directory", p)
		}
		return &u, nil
	}
}

// testScrapers are both scrapers on a fake root, started, with a clock the test moves.
type testScrapers struct {
	system    *systemScraper
	resources *resourcesScraper
	root      string
	now       time.Time
}

func (ts *testScrapers) advance(d time.Duration) { ts.now = ts.now.Add(d) }

func newTestScrapers(t *testing.T, mbc metadata.MetricsBuilderConfig, mutate func(*Config)) *testScrapers {
	t.Helper()
	ts := &testScrapers{root: fakeRoot(t), now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	cfg := NewDefaultConfig()
	cfg.RootPath = ts.root
	cfg.Hostname = "h1"
	if mutate != nil {
		mutate(&cfg)
	}
	require.NoError(t, cfg.Validate())
	set := receivertest.NewNopSettings(metadata.Type)
	clock := func() time.Time { return ts.now }

	systemBase := newHostBase(&cfg, cfg.Hostname, mbc, set)
	systemBase.now = clock
	ts.system = newSystemScraper(systemBase)
	resourcesBase := newHostBase(&cfg, cfg.Hostname, mbc, set)
	resourcesBase.now = clock
	var err error
	ts.resources, err = newResourcesScraper(resourcesBase, &cfg)
	require.NoError(t, err)
	ts.resources.usage = fakeUsage(ts.root)

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

// TestScrapeGolden scrapes the fake root twice, 2 s apart, with counters moved in between; the
// second batches (utilization over the interval, rates) are the golden files.
func TestScrapeGolden(t *testing.T) {
	ts := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), nil)
	ts.scrapeSystem(t)
	ts.scrapeResources(t)

	// 200 jiffies pass: user +60, system +20, idle +100, iowait +20: 80 of 200 busy.
	writeProc(t, ts.root, "stat", "cpu  160 0 70 900 70 0 0 0 0 0\ncpu0 160 0 70 900 70 0 0 0 0 0\nbtime 1767225600\n")
	// sda: 40 reads and 10 writes (20/s and 5/s); nvme0n1 idle; loop0 and partitions move but are not reported.
	writeProc(t, ts.root, "diskstats", `   7       0 loop0 500 0 1000 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   8       0 sda 140 0 2400 0 60 0 1200 0 0 0 0 0 0 0 0 0 0
   8       1 sda1 130 0 2200 0 55 0 1100 0 0 0 0 0 0 0 0 0 0
 259       0 nvme0n1 10 0 80 0 20 0 160 0 0 0 0 0 0 0 0 0 0
 259       1 nvme0n1p1 10 0 80 0 20 0 160 0 0 0 0 0 0 0 0 0 0
 253       0 dm-0 80 0 1600 0 40 0 800 0 0 0 0 0 0 0 0 0 0
`)
	// eth0: 4000 bytes in, 1000 out (2000 B/s and 500 B/s).
	writeProc(t, ts.root, "net/dev", `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    9000      90    0    0    0     0          0         0     9000      90    0    0    0     0       0          0
  eth0:    9000      90    0    0    0     0          0         0     4000      40    0    0    0     0       0          0
veth1a2b:    9700      97    0    0    0     0          0         0     9800      98    0    0    0     0       0          0
`)
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

func TestScrapeCPU(t *testing.T) {
	ts := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), nil)
	cpu := func(line string) (float64, bool) {
		writeProc(t, ts.root, "stat", line+"\n")
		ts.advance(time.Second)
		v, ok := points(ts.scrapeSystem(t))["system.cpu.utilization"]["busy"]
		return v, ok
	}
	_, ok := cpu("cpu  100 0 50 800 50 0 0 0 0 0")
	assert.False(t, ok, "baseline")

	// +90 busy (user, nice, system, irq, softirq, steal; guest is part of user), +110 idle
	// and iowait.
	v, ok := cpu("cpu  150 10 60 900 60 5 5 10 40 0")
	assert.True(t, ok)
	assert.InDelta(t, 90.0/200, v, 1e-12)

	_, ok = cpu("cpu  150 10 60 900 60 5 5 10 40 0")
	assert.False(t, ok, "no tick passed: nothing to measure")
	v, ok = cpu("cpu  250 10 60 900 60 5 5 10 40 0")
	assert.True(t, ok, "measured from the last baseline that moved")
	assert.InDelta(t, 1.0, v, 1e-12)

	_, ok = cpu("cpu  10 0 10 100 0 0 0 0 0 0")
	assert.False(t, ok, "counters went back: a new baseline")
	v, ok = cpu("cpu  20 0 10 190 0 0 0 0 0 0")
	assert.True(t, ok)
	assert.InDelta(t, 0.1, v, 1e-12)
}

// TestScrapeRates moves the fake clock and counters across several scrapes: rates are the
// counters' differences over the time between the scrapes that read them.
func TestScrapeRates(t *testing.T) {
	ts := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), func(c *Config) {
		c.Interfaces = MatchConfig{Include: []string{"^eth"}}
	})
	netDev := func(lines ...string) {
		writeProc(t, ts.root, "net/dev", "Inter-|\n face |\n"+strings.Join(lines, "\n")+"\n")
	}
	diskstats := func(sdaReads, sdaWrites int) {
		writeProc(t, ts.root, "diskstats", fmt.Sprintf("   8       0 sda %d 0 0 0 %d 0 0 0 0 0 0\n", sdaReads, sdaWrites))
	}
	netDev("  eth0: 1000 0 0 0 0 0 0 0 2000 0 0 0 0 0 0 0", "  eth1: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0")
	diskstats(100, 100)
	ts.scrapeResources(t)

	// 500 ms later.
	netDev("  eth0: 1500 0 0 0 0 0 0 0 2100 0 0 0 0 0 0 0", "  eth1: 50 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0")
	diskstats(150, 100)
	ts.advance(500 * time.Millisecond)
	p := points(ts.scrapeResources(t))
	assert.Equal(t, map[string]float64{"eth0/receive": 1000, "eth0/transmit": 200, "eth1/receive": 100, "eth1/transmit": 0}, p["system.network.io.rate"])
	assert.Equal(t, map[string]float64{"sda/read": 100, "sda/write": 0}, p["system.disk.operations.rate"])

	// eth0 was re-created (its counters start again) and eth1 is gone; sda's write counter
	// wrapped. Only what counts on from the last scrape gets a rate.
	netDev("  eth0: 10 0 0 0 0 0 0 0 20 0 0 0 0 0 0 0")
	diskstats(250, 5)
	ts.advance(time.Second)
	p = points(ts.scrapeResources(t))
	assert.Empty(t, p["system.network.io.rate"])
	assert.Equal(t, map[string]float64{"eth0/receive": 10, "eth0/transmit": 20}, p["system.network.io"])
	assert.Equal(t, map[string]float64{"sda/read": 100}, p["system.disk.operations.rate"])

	// eth1 comes back: it is new again (no rate); eth0 counts on from its reset.
	netDev("  eth0: 410 0 0 0 0 0 0 0 20 0 0 0 0 0 0 0", "  eth1: 5000 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0")
	diskstats(250, 25)
	ts.advance(2 * time.Second)
	p = points(ts.scrapeResources(t))
	assert.Equal(t, map[string]float64{"eth0/receive": 200, "eth0/transmit": 0}, p["system.network.io.rate"])
	assert.Equal(t, map[string]float64{"sda/read": 0, "sda/write": 10}, p["system.disk.operations.rate"])

	// A failed read keeps the baseline: the next rate spans both intervals.
	require.NoError(t, os.Remove(filepath.Join(ts.root, "proc", "net", "dev")))
	ts.resources.netDev.close() // as after a read error: the next read opens the path again
	ts.advance(time.Second)
	_, err := ts.resources.scrape(context.Background())
	require.Error(t, err)
	netDev("  eth0: 1010 0 0 0 0 0 0 0 20 0 0 0 0 0 0 0", "  eth1: 5000 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0")
	ts.advance(time.Second)
	p = points(ts.scrapeResources(t))
	assert.Equal(t, map[string]float64{"eth0/receive": 300, "eth0/transmit": 0, "eth1/receive": 0, "eth1/transmit": 0}, p["system.network.io.rate"])
}

func TestScrapePartialErrors(t *testing.T) {
	ts := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), nil)
	require.NoError(t, os.Remove(filepath.Join(ts.root, "proc", "net", "dev")))
	ts.resources.usage = func(_ context.Context, p string) (*disk.UsageStat, error) {
		if strings.HasSuffix(p, "/data") {
			return nil, errors.New("permission denied")
		}
		return fakeUsage(ts.root)(context.Background(), p)
	}

	md, err := ts.resources.scrape(context.Background())
	require.Error(t, err)
	assert.True(t, scrapererror.IsPartialScrapeError(err), "what was read is still sent")
	assert.ErrorContains(t, err, "reading network counters: open "+filepath.Join(ts.root, "proc", "net", "dev"))
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

	ts2 := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), nil)
	require.NoError(t, os.Remove(filepath.Join(ts2.root, "proc", "meminfo")))
	_, err = ts2.system.scrape(context.Background())
	require.Error(t, err)
	writeProc(t, ts2.root, "stat", "cpu  200 0 50 900 50 0 0 0 0 0\n")
	md, err = ts2.system.scrape(context.Background())
	require.Error(t, err)
	assert.True(t, scrapererror.IsPartialScrapeError(err))
	assert.ErrorContains(t, err, "reading memory: open "+filepath.Join(ts2.root, "proc", "meminfo"))
	assert.Equal(t, map[string]map[string]float64{"system.cpu.utilization": {"busy": 0.5}}, points(md))
}

// A metric switched off in the receiver's `metrics:` section is not sent, and a file that
// only switched-off metrics need is not read.
func TestScrapeMetricsSwitchedOff(t *testing.T) {
	mbc := metadata.NewDefaultMetricsBuilderConfig()
	mbc.Metrics.SystemMemoryUtilization.Enabled = false
	mbc.Metrics.SystemNetworkIo.Enabled = false
	mbc.Metrics.SystemNetworkIoRate.Enabled = false
	mbc.Metrics.SystemFilesystemUsage.Enabled = false
	mbc.Metrics.SystemFilesystemUtilization.Enabled = false
	mbc.Metrics.SystemDiskOperationsRate.Enabled = false
	ts := newTestScrapers(t, mbc, nil)
	require.NoError(t, os.Remove(filepath.Join(ts.root, "proc", "net", "dev")))
	require.NoError(t, os.Remove(filepath.Join(ts.root, "proc", "1", "mountinfo")))

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

	mbc.Metrics.SystemCPUUtilization.Enabled = false
	mbc.Metrics.SystemMemoryUsage.Enabled = false
	ts = newTestScrapers(t, mbc, nil)
	require.NoError(t, os.Remove(filepath.Join(ts.root, "proc", "stat")))
	require.NoError(t, os.Remove(filepath.Join(ts.root, "proc", "meminfo")))
	assert.Zero(t, ts.scrapeSystem(t).DataPointCount())
}

// On this machine's procfs with the default config.
func TestScrapeRealHost(t *testing.T) {
	cfg := NewDefaultConfig()
	set := receivertest.NewNopSettings(metadata.Type)
	mbc := metadata.NewDefaultMetricsBuilderConfig()
	system := newSystemScraper(newHostBase(&cfg, "real", mbc, set))
	resources, err := newResourcesScraper(newHostBase(&cfg, "real", mbc, set), &cfg)
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
