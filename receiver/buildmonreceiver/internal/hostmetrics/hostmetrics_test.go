package hostmetrics

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
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/collector/scraper/scrapererror"

	"github.com/buildmon/buildmon/internal/metadata"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"system interval", func(c *Config) { c.System.CollectionInterval = 0 }, []string{"host.system.collection_interval must be positive"}},
		{"resources interval and timeout", func(c *Config) {
			c.Resources.CollectionInterval = -time.Second
			c.Resources.Timeout = -time.Second
		}, []string{"host.resources.collection_interval must be positive", "host.resources.timeout must not be negative"}},
		{"relative root", func(c *Config) { c.RootPath = "hostfs" }, []string{"host.root_path must be an absolute path"}},
		{"missing root", func(c *Config) { c.RootPath = "/does/not/exist" }, []string{`host.root_path "/does/not/exist" is not a readable directory`}},
		{"interface regexp", func(c *Config) { c.Interfaces.Include = []string{"ok", "("} }, []string{"host.interfaces.include[1]: invalid regexp"}},
		{"every list", func(c *Config) {
			c.Disks.Include = []string{"["}
			c.Disks.Exclude = []string{"a", "b", "*"}
			c.Interfaces.Exclude = []string{"("}
			c.Filesystems.IncludeMountpoints = []string{"+"}
			c.Filesystems.ExcludeMountpoints = []string{"x", "(?P<"}
		}, []string{
			"host.disks.include[0]: invalid regexp", "host.disks.exclude[2]: invalid regexp",
			"host.interfaces.exclude[0]: invalid regexp", "host.filesystems.include_mountpoints[0]: invalid regexp",
			"host.filesystems.exclude_mountpoints[1]: invalid regexp",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewDefaultConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				assert.ErrorContains(t, err, w)
			}
			assert.Len(t, strings.Split(err.Error(), "\n"), len(tt.want), "one error per problem")
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg := NewDefaultConfig()
	assert.True(t, cfg.Enabled)
	assert.Equal(t, time.Second, cfg.System.CollectionInterval)
	assert.Equal(t, 5*time.Second, cfg.Resources.CollectionInterval)
	assert.Empty(t, cfg.Interfaces.Include, "all interfaces, loopback included")
	assert.Contains(t, cfg.Filesystems.ExcludeTypes, "proc")
	assert.NotContains(t, cfg.Filesystems.ExcludeTypes, "overlay", "a container's root filesystem is overlay")
}

func TestMatcher(t *testing.T) {
	tests := []struct {
		name             string
		include, exclude []string
		in, out          []string
	}{
		{"empty selects all", nil, nil, []string{"lo", "eth0", "sda"}, nil},
		{"include", []string{"^sd", "^nvme"}, nil, []string{"sda", "nvme0n1"}, []string{"loop0", "vda"}},
		{"exclude wins over include", []string{"^sd"}, []string{"^sda1$"}, []string{"sda", "sdb1"}, []string{"sda1"}},
		{"exclude only", nil, []string{"^lo$", "^veth"}, []string{"eth0", "lo0"}, []string{"lo", "veth12"}},
		{"default disks", NewDefaultConfig().Disks.Include, NewDefaultConfig().Disks.Exclude, []string{"sda", "nvme0n1", "dm-0"}, []string{"loop3", "ram0", "zram0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := compile(tt.include, tt.exclude)
			for _, n := range tt.in {
				assert.True(t, m.match(n), n)
			}
			for _, n := range tt.out {
				assert.False(t, m.match(n), n)
			}
		})
	}
}

// points returns metric name -> "attr/attr/" -> value of a batch.
func points(md pmetric.Metrics) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		ms := rms.At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			m := ms.At(j)
			var dps pmetric.NumberDataPointSlice
			if m.Type() == pmetric.MetricTypeGauge {
				dps = m.Gauge().DataPoints()
			} else {
				dps = m.Sum().DataPoints()
			}
			if out[m.Name()] == nil {
				out[m.Name()] = map[string]float64{}
			}
			for k := 0; k < dps.Len(); k++ {
				key := ""
				dps.At(k).Attributes().Range(func(_ string, v pcommon.Value) bool { key += v.AsString() + "/"; return true })
				dp := dps.At(k)
				if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
					out[m.Name()][key] = float64(dp.IntValue())
				} else {
					out[m.Name()][key] = dp.DoubleValue()
				}
			}
		}
	}
	return out
}

// fakeRoot copies testdata/root into a temporary directory, so a test may change counters.
func fakeRoot(t *testing.T) string {
	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, os.DirFS(filepath.Join("testdata", "root"))))
	return root
}

func writeProc(t *testing.T, root, name, content string) {
	require.NoError(t, os.WriteFile(filepath.Join(root, "proc", name), []byte(content), 0o600))
}

// fakeUsage stands in for statfs: fixed sizes for the fake root's mount points.
func fakeUsage(root string) func(context.Context, string) (*disk.UsageStat, error) {
	sizes := map[string]disk.UsageStat{
		"/":          {Total: 1000, Used: 600, Free: 350},
		"/data":      {Total: 4000, Used: 1000, Free: 3000},
		"/mnt/cache": {Total: 100, Used: 10, Free: 90},
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

// fakeScraper reads the fake root with a clock the test moves.
func fakeScraper(t *testing.T, mutate func(*Config)) (s *hostScraper, root string, now *time.Time) {
	root = fakeRoot(t)
	cfg := NewDefaultConfig()
	cfg.RootPath = root
	cfg.Hostname = "h1"
	if mutate != nil {
		mutate(&cfg)
	}
	require.NoError(t, cfg.Validate())
	s, err := newHostScraper(&cfg, metadata.DefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type))
	require.NoError(t, err)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return clock }
	s.usage = fakeUsage(root)
	return s, root, &clock
}

func compareGolden(t *testing.T, file string, md pmetric.Metrics) {
	path := filepath.Join("testdata", file)
	if *update {
		require.NoError(t, golden.WriteMetrics(t, path, md))
	}
	want, err := golden.ReadMetrics(path)
	require.NoError(t, err)
	require.NoError(t, pmetrictest.CompareMetrics(want, md,
		pmetrictest.IgnoreTimestamp(), pmetrictest.IgnoreStartTimestamp(),
		pmetrictest.IgnoreResourceMetricsOrder(), pmetrictest.IgnoreMetricsOrder(),
		pmetrictest.IgnoreMetricDataPointsOrder(),
		// CPU seconds are jiffies/USER_HZ in float64, so utilisation carries rounding noise.
		pmetrictest.IgnoreMetricFloatPrecision(9, "system.cpu.utilization")))
}

// TestScrapeGolden scrapes the fake root twice, 2 s apart, with counters moved in between;
// the second batch (utilisation over the interval, rates) is compared with the golden files.
func TestScrapeGolden(t *testing.T) {
	s, root, now := fakeScraper(t, func(c *Config) { c.Filesystems.ExcludeMountpoints = []string{"^/mnt/"} })
	ctx := context.Background()
	_, err := s.scrapeSystem(ctx)
	require.NoError(t, err)
	_, err = s.scrapeResources(ctx)
	require.NoError(t, err)

	// 200 jiffies pass: user +60, system +20, idle +100, iowait +20 → 80/200 busy.
	writeProc(t, root, "stat", "cpu  160 0 70 900 70 0 0 0 0 0\ncpu0 160 0 70 900 70 0 0 0 0 0\n")
	writeProc(t, root, "diskstats", "   8       0 sda 140 0 3000 0 60 0 1400 0 0 0 0 0 0 0 0 0 0\n   7       0 loop0 9 0 20 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
	writeProc(t, root, "net/dev", "Inter-|\n face |\n    lo:    1000 10 0 0 0 0 0 0     2000 10 0 0 0 0 0 0\n  eth0:    9000 10 0 0 0 0 0 0     8000 10 0 0 0 0 0 0\n")
	*now = now.Add(2 * time.Second)

	md, err := s.scrapeSystem(ctx)
	require.NoError(t, err)
	compareGolden(t, "scrape_system.yaml", md)
	md, err = s.scrapeResources(ctx)
	require.NoError(t, err)
	compareGolden(t, "scrape_resources.yaml", md)
}

func TestScrapeFirstAndRates(t *testing.T) {
	s, root, now := fakeScraper(t, nil)
	ctx := context.Background()

	md, err := s.scrapeSystem(ctx)
	require.NoError(t, err)
	p := points(md)
	assert.InDelta(t, 150.0/1000, p["system.cpu.utilization"]["busy/"], 1e-9, "first scrape: since boot, (100+50)/(100+50+800+50)")
	assert.Equal(t, 300.0*1024, p["system.memory.usage"]["used/"], "1000-400-100-(150+50)")
	assert.Equal(t, 200.0*1024, p["system.memory.usage"]["cached/"], "Cached + SReclaimable")
	assert.InDelta(t, 0.1, p["system.memory.utilization"]["buffered/"], 1e-9)
	host, _ := md.ResourceMetrics().At(0).Resource().Attributes().Get("host.name")
	assert.Equal(t, "h1", host.Str())

	md, err = s.scrapeResources(ctx)
	require.NoError(t, err)
	p = points(md)
	assert.Equal(t, 2000.0*512, p["system.disk.io"]["sda/read/"])
	assert.NotContains(t, p["system.disk.io"], "loop0/read/", "loop devices are excluded by default")
	assert.Equal(t, 2000.0, p["system.network.io"]["lo/transmit/"], "loopback is included by default")
	assert.Nil(t, p["system.network.io.rate"], "no rate on the first scrape")
	assert.Nil(t, p["system.disk.operations.rate"], "no rate on the first scrape")
	assert.Len(t, p["system.filesystem.utilization"], 3, "/, /data and /mnt/cache; proc, tmpfs and squashfs are not")

	// Half a second later eth0's counters were reset (interface re-created): no rate for it,
	// while the others still get theirs.
	writeProc(t, root, "net/dev", "Inter-|\n face |\n    lo:    1500 10 0 0 0 0 0 0     2100 10 0 0 0 0 0 0\n  eth0:     100 1 0 0 0 0 0 0     200 1 0 0 0 0 0 0\n")
	*now = now.Add(500 * time.Millisecond)
	md, err = s.scrapeResources(ctx)
	require.NoError(t, err)
	p = points(md)
	assert.Equal(t, 1000.0, p["system.network.io.rate"]["lo/receive/"])
	assert.Equal(t, 200.0, p["system.network.io.rate"]["lo/transmit/"])
	assert.NotContains(t, p["system.network.io.rate"], "eth0/receive/")
	assert.Equal(t, 0.0, p["system.disk.operations.rate"]["sda/read/"])

	// The next interval measures from the reset values.
	writeProc(t, root, "net/dev", "Inter-|\n face |\n  eth0:     600 1 0 0 0 0 0 0     200 1 0 0 0 0 0 0\n")
	*now = now.Add(time.Second)
	md, err = s.scrapeResources(ctx)
	require.NoError(t, err)
	p = points(md)
	assert.Equal(t, 500.0, p["system.network.io.rate"]["eth0/receive/"])
	assert.NotContains(t, p["system.network.io"], "lo/receive/", "an interface that disappears is not reported")
}

func TestScrapePartialErrors(t *testing.T) {
	s, root, _ := fakeScraper(t, nil)
	require.NoError(t, os.Remove(filepath.Join(root, "proc", "net", "dev")))
	s.usage = func(context.Context, string) (*disk.UsageStat, error) { return nil, errors.New("permission denied") }

	md, err := s.scrapeResources(context.Background())
	require.Error(t, err)
	assert.True(t, scrapererror.IsPartialScrapeError(err), "what was read is still sent")
	assert.ErrorContains(t, err, "filesystem /data: permission denied")
	p := points(md)
	assert.Contains(t, p, "system.disk.io")
	assert.NotContains(t, p, "system.network.io")

	require.NoError(t, os.Remove(filepath.Join(root, "proc", "meminfo")))
	md, err = s.scrapeSystem(context.Background())
	assert.True(t, scrapererror.IsPartialScrapeError(err))
	assert.Contains(t, points(md), "system.cpu.utilization")
}

func TestScrapeRealHost(t *testing.T) {
	cfg := NewDefaultConfig()
	s, err := newHostScraper(&cfg, metadata.DefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type))
	require.NoError(t, err)
	md, err := s.scrapeSystem(context.Background())
	require.NoError(t, err)
	p := points(md)
	assert.Contains(t, p, "system.cpu.utilization")
	assert.Greater(t, p["system.memory.usage"]["used/"], 0.0)
	md, _ = s.scrapeResources(context.Background())
	p = points(md)
	assert.Contains(t, p["system.network.io"], "lo/receive/")
	assert.Contains(t, p, "system.filesystem.utilization")
}

func TestReceiverLifecycle(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.System.CollectionInterval = 50 * time.Millisecond
	cfg.Resources.CollectionInterval = 50 * time.Millisecond
	require.NoError(t, cfg.Validate())
	sink := new(consumertest.MetricsSink)
	r, err := NewReceiver(&cfg, metadata.DefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type), sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	require.Eventually(t, func() bool {
		seen := map[string]bool{}
		for _, md := range sink.AllMetrics() {
			for name := range points(md) {
				seen[name] = true
			}
		}
		return seen["system.cpu.utilization"] && seen["system.network.io"]
	}, 10*time.Second, 10*time.Millisecond, "both controllers deliver")
	require.NoError(t, r.Shutdown(context.Background()))
}

// A fake root whose filesystems cannot be measured still delivers its disk and network metrics.
func TestReceiverDeliversPartialBatches(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.RootPath = fakeRoot(t) // statfs of <root>/data fails: the directory does not exist
	cfg.Hostname = "h1"
	cfg.Resources.CollectionInterval = 50 * time.Millisecond
	require.NoError(t, cfg.Validate())
	sink := new(consumertest.MetricsSink)
	r, err := NewReceiver(&cfg, metadata.DefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type), sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	require.Eventually(t, func() bool {
		for _, md := range sink.AllMetrics() {
			if _, ok := points(md)["system.disk.io"]["sda/read/"]; ok {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, r.Shutdown(context.Background()))
}
