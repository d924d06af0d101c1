package hostmetrics

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/buildmon/buildmon/internal/metadata"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"defaults", func(*Config) {}, ""},
		{"interval", func(c *Config) { c.System.CollectionInterval = 0 }, "host.system.collection_interval must be positive"},
		{"relative root", func(c *Config) { c.RootPath = "hostfs" }, "host.root_path must be an absolute path"},
		{"missing root", func(c *Config) { c.RootPath = "/does/not/exist" }, `host.root_path "/does/not/exist" is not a readable directory`},
		{"regexp", func(c *Config) { c.Interfaces.Include = []string{"ok", "("} }, "host.interfaces.include[1]: invalid regexp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewDefaultConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestMatcher(t *testing.T) {
	m := compile([]string{"^sd", "^nvme"}, []string{"^sda1$"})
	assert.True(t, m.match("sda"))
	assert.False(t, m.match("sda1"))
	assert.False(t, m.match("loop0"))
	assert.True(t, compile(nil, nil).match("anything"))
}

// points returns name -> attribute-string -> value of a batch.
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

func fakeRootScraper(t *testing.T) (*hostScraper, string) {
	root, err := filepath.Abs(filepath.Join("testdata", "root"))
	require.NoError(t, err)
	cfg := NewDefaultConfig()
	cfg.RootPath = root
	cfg.Hostname = "h1"
	require.NoError(t, cfg.Validate())
	s, err := newHostScraper(&cfg, metadata.DefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type))
	require.NoError(t, err)
	return s, root
}

func TestScrapeSystemFromFakeRoot(t *testing.T) {
	s, _ := fakeRootScraper(t)
	md, err := s.scrapeSystem(context.Background())
	require.NoError(t, err)
	p := points(md)
	assert.InDelta(t, 150.0/1000, p["system.cpu.utilization"]["busy/"], 1e-9) // since boot: (100+50)/(100+50+800+50)
	assert.Equal(t, 300.0*1024, p["system.memory.usage"]["used/"])            // 1000-400-100-(150+50)
	assert.Equal(t, 400.0*1024, p["system.memory.usage"]["free/"])
	assert.Equal(t, 200.0*1024, p["system.memory.usage"]["cached/"])
	assert.Equal(t, 100.0*1024, p["system.memory.usage"]["buffered/"])
	assert.InDelta(t, 0.3, p["system.memory.utilization"]["used/"], 1e-9)
	host, _ := md.ResourceMetrics().At(0).Resource().Attributes().Get("host.name")
	assert.Equal(t, "h1", host.Str())
}

func TestScrapeResourcesRates(t *testing.T) {
	s, root := fakeRootScraper(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	md, _ := s.scrapeResources(context.Background()) // filesystems of the fake root cannot be listed
	p := points(md)
	assert.Equal(t, 2000.0*512, p["system.disk.io"]["sda/read/"])
	assert.Equal(t, 50.0, p["system.disk.operations"]["sda/write/"])
	assert.NotContains(t, p["system.disk.io"], "loop0/read/", "loop devices are excluded by default")
	assert.Equal(t, 7000.0, p["system.network.io"]["eth0/transmit/"])
	assert.Nil(t, p["system.network.io.rate"], "no rate on the first scrape")

	// Counters move; two seconds later the rates are the differences over 2 s.
	dev := filepath.Join(root, "proc", "net", "dev")
	orig, err := os.ReadFile(dev)
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.WriteFile(dev, orig, 0o644) })
	require.NoError(t, os.WriteFile(dev, []byte("Inter-|\n face |\n  eth0:    9000 10 0 0 0 0 0 0     8000 10 0 0 0 0 0 0\n"), 0o644))
	now = now.Add(2 * time.Second)
	md, _ = s.scrapeResources(context.Background())
	p = points(md)
	assert.Equal(t, 2000.0, p["system.network.io.rate"]["eth0/receive/"])
	assert.Equal(t, 500.0, p["system.network.io.rate"]["eth0/transmit/"])
	assert.Equal(t, 0.0, p["system.disk.operations.rate"]["sda/read/"])
}

func TestScrapeRealHost(t *testing.T) {
	cfg := NewDefaultConfig()
	s, err := newHostScraper(&cfg, metadata.DefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type))
	require.NoError(t, err)
	md, err := s.scrapeSystem(context.Background())
	require.NoError(t, err)
	assert.Contains(t, points(md), "system.cpu.utilization")
	md, _ = s.scrapeResources(context.Background())
	p := points(md)
	assert.Contains(t, p, "system.network.io")
	assert.Contains(t, p, "system.filesystem.utilization")
}

func TestReceiverLifecycle(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.System.CollectionInterval = 20 * time.Millisecond
	cfg.Resources.CollectionInterval = 20 * time.Millisecond
	sink := new(consumertest.MetricsSink)
	r, err := NewReceiver(&cfg, metadata.DefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type), sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	require.Eventually(t, func() bool { return len(sink.AllMetrics()) >= 2 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, r.Shutdown(context.Background()))
}

// The floor: a hand-written read and parse of the same files, without pdata.
func floorSystem(b *testing.B) {
	for _, f := range []string{"/proc/stat", "/proc/meminfo"} {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		if f == "/proc/stat" {
			parseStat(data, nil)
		} else {
			parseMeminfo(data)
		}
	}
}

func BenchmarkScrapeSystem(b *testing.B) {
	cfg := NewDefaultConfig()
	s, _ := newHostScraper(&cfg, metadata.DefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.scrapeSystem(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProcFloorSystem(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		floorSystem(b)
	}
}

func BenchmarkScrapeResources(b *testing.B) {
	cfg := NewDefaultConfig()
	s, _ := newHostScraper(&cfg, metadata.DefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = s.scrapeResources(context.Background())
	}
}

// BenchmarkProcFloorResources reads diskstats, net/dev, the mount table and statfs of each
// mount point that the scraper reports.
func BenchmarkProcFloorResources(b *testing.B) {
	cfg := NewDefaultConfig()
	s, _ := newHostScraper(&cfg, metadata.DefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type))
	parts, err := disk.Partitions(false)
	if err != nil {
		b.Fatal(err)
	}
	var mountpoints []string
	for _, p := range parts {
		if !s.fsTypes[p.Fstype] && s.mounts.match(p.Mountpoint) && !slices.Contains(mountpoints, p.Mountpoint) {
			mountpoints = append(mountpoints, p.Mountpoint)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range []string{"/proc/diskstats", "/proc/net/dev", "/proc/self/mountinfo"} {
			data, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			switch f {
			case "/proc/diskstats":
				parseDiskstats(data, nil, func(string) bool { return true }, nil)
			case "/proc/net/dev":
				parseNetDev(data, nil, func(string) bool { return true }, nil)
			}
		}
		for _, m := range mountpoints {
			var st syscall.Statfs_t
			_ = syscall.Statfs(m, &st)
		}
	}
}
