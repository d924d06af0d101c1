package hostmetrics

import (
	"context"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/shirou/gopsutil/v4/disk"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/buildmon/buildmon/internal/metadata"
)

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
