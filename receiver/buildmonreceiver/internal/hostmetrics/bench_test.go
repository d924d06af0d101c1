package hostmetrics

import (
	"bytes"
	"context"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/shirou/gopsutil/v4/disk"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/buildmon/buildmon/internal/metadata"
)

// The floors below are the least a scrape can cost: read the same /proc files with
// os.ReadFile, pick out the same counters by hand, statfs the same mount points; no pdata.
// The scrapes go through gopsutil and the MetricsBuilder; the target is at most 3× the floor.

func BenchmarkScrapeSystem(b *testing.B) {
	cfg := NewDefaultConfig()
	s, err := newHostScraper(&cfg, metadata.DefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.scrapeSystem(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProcFloorSystem(b *testing.B) {
	b.ReportAllocs()
	var sink uint64
	for b.Loop() {
		stat, err := os.ReadFile("/proc/stat")
		if err != nil {
			b.Fatal(err)
		}
		line, _, _ := bytes.Cut(stat, []byte{'\n'})
		for _, f := range bytes.Fields(line)[1:] {
			sink += atou(f)
		}
		meminfo, err := os.ReadFile("/proc/meminfo")
		if err != nil {
			b.Fatal(err)
		}
		for line := range bytes.Lines(meminfo) {
			key, rest, _ := bytes.Cut(line, []byte{':'})
			switch string(key) {
			case "MemTotal", "MemFree", "Buffers", "Cached", "SReclaimable":
				sink += atou(bytes.TrimSpace(rest))
			}
		}
	}
	_ = sink
}

func BenchmarkScrapeResources(b *testing.B) {
	cfg := NewDefaultConfig()
	s, err := newHostScraper(&cfg, metadata.DefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = s.scrapeResources(context.Background())
	}
}

// BenchmarkProcFloorResources reads diskstats, net/dev and the mount table, and statfs's each
// mount point that the scraper reports.
func BenchmarkProcFloorResources(b *testing.B) {
	cfg := NewDefaultConfig()
	s, err := newHostScraper(&cfg, metadata.DefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type))
	if err != nil {
		b.Fatal(err)
	}
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
	var sink uint64
	for b.Loop() {
		diskstats, err := os.ReadFile("/proc/diskstats")
		if err != nil {
			b.Fatal(err)
		}
		for line := range bytes.Lines(diskstats) {
			if f := bytes.Fields(line); len(f) >= 10 {
				sink += atou(f[3]) + atou(f[5]) + atou(f[7]) + atou(f[9])
			}
		}
		netdev, err := os.ReadFile("/proc/net/dev")
		if err != nil {
			b.Fatal(err)
		}
		for line := range bytes.Lines(netdev) {
			if _, rest, ok := bytes.Cut(line, []byte{':'}); ok {
				if f := bytes.Fields(rest); len(f) >= 9 {
					sink += atou(f[0]) + atou(f[8])
				}
			}
		}
		if _, err := os.ReadFile("/proc/1/mountinfo"); err != nil {
			b.Fatal(err)
		}
		for _, m := range mountpoints {
			var st syscall.Statfs_t
			if err := syscall.Statfs(m, &st); err == nil {
				sink += st.Blocks
			}
		}
	}
	_ = sink
}

func atou(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}
