package hostscraper

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/internal/metadata"
)

// The CPU rules of each OS: what counts as busy, and what is left out of the total.
func TestCPUTimesOf(t *testing.T) {
	tests := []struct {
		name, goos  string
		t           cpu.TimesStat
		busy, total float64
	}{
		{
			name: "linux: idle and iowait are not busy; guest is inside user and nice",
			goos: "linux",
			t:    cpu.TimesStat{User: 10, Nice: 1, System: 4, Idle: 80, Iowait: 2, Irq: 1, Softirq: 1, Steal: 1, Guest: 3, GuestNice: 1},
			busy: 18, total: 100,
		},
		{
			name: "darwin: user nice system idle",
			goos: "darwin",
			t:    cpu.TimesStat{User: 30, Nice: 5, System: 15, Idle: 50},
			busy: 50, total: 100,
		},
		{
			name: "windows: irq is inside system, not added again",
			goos: "windows",
			t:    cpu.TimesStat{User: 25, System: 15, Idle: 60, Irq: 5},
			busy: 40, total: 100,
		},
		{
			name: "windows without irq (GetSystemTimes fallback)",
			goos: "windows",
			t:    cpu.TimesStat{User: 25, System: 15, Idle: 60},
			busy: 40, total: 100,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cpuTimesOf(tt.goos, &tt.t)
			assert.InDelta(t, tt.busy, got.busy, 1e-9)
			assert.InDelta(t, tt.total, got.total, 1e-9)
		})
	}
}

func TestBusyShare(t *testing.T) {
	tests := []struct {
		name      string
		prev, cur cpuTimes
		want      float64
		ok        bool
	}{
		{"float noise rounded away", cpuTimes{1.5, 10}, cpuTimes{2.3, 12}, 0.4, true},
		{"all busy", cpuTimes{0, 0}, cpuTimes{5, 5}, 1, true},
		{"busy above total is capped", cpuTimes{0, 0}, cpuTimes{6, 5}, 1, true},
		{"no time passed", cpuTimes{1, 10}, cpuTimes{1, 10}, 0, false},
		{"total went back", cpuTimes{1, 10}, cpuTimes{1, 9}, 0, false},
		{"busy went back", cpuTimes{2, 10}, cpuTimes{1, 12}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := busyShare(tt.prev, tt.cur)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

// The four memory states add up to the total on every OS, and used never goes below zero
// when the counters overlap.
func TestMemoryStatesOf(t *testing.T) {
	tests := []struct {
		name, goos string
		m          mem.VirtualMemoryStat
		want       memoryStates
	}{
		{
			name: "linux: used is what free, cached (with reclaimable slab) and buffers leave",
			goos: "linux",
			m:    mem.VirtualMemoryStat{Total: 1000, Free: 100, Buffers: 50, Cached: 250, Sreclaimable: 50, Available: 500, Used: 500},
			want: memoryStates{used: 600, free: 100, cached: 250, buffered: 50},
		},
		{
			name: "linux: overlapping counters",
			goos: "linux",
			m:    mem.VirtualMemoryStat{Total: 1000, Free: 900, Buffers: 100, Cached: 100},
			want: memoryStates{used: 0, free: 900, cached: 100, buffered: 100},
		},
		{
			name: "darwin: inactive pages are cached; gopsutil's used is what is left",
			goos: "darwin",
			m:    mem.VirtualMemoryStat{Total: 1600, Free: 200, Inactive: 600, Active: 500, Wired: 300, Available: 800, Used: 800},
			want: memoryStates{used: 800, free: 200, cached: 600},
		},
		{
			name: "windows: free is the available memory",
			goos: "windows",
			m:    mem.VirtualMemoryStat{Total: 3200, Free: 2000, Available: 2000, Used: 1200},
			want: memoryStates{used: 1200, free: 2000},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := memoryStatesOf(tt.goos, &tt.m)
			assert.Equal(t, tt.want, got)
			if tt.want.used > 0 {
				assert.Equal(t, tt.m.Total, got.used+got.free+got.cached+got.buffered)
			}
		})
	}
}

// osCase is one OS's readings through both scrapers, with the counters moved between two
// scrapes 5 s apart.
type osCase struct {
	src   *fakeSource
	move  func(*fakeSource)
	check func(t *testing.T, system, resources map[string]map[string]float64)
}

func runOSCase(t *testing.T, c osCase) {
	t.Helper()
	ts := newTestScrapersOn(t, c.src, metadata.NewDefaultMetricsBuilderConfig(), nil)
	ts.scrapeSystem(t)
	ts.scrapeResources(t)
	c.move(ts.src)
	ts.advance(5 * time.Second)
	system, resources := ts.scrapeSystem(t), ts.scrapeResources(t)
	assertTimestamps(t, system, ts.now)
	assertTimestamps(t, resources, ts.now)
	c.check(t, points(system), points(resources))
}

// TestScrapeShapes runs the scrapers on readings shaped like each OS's: the same metric
// names and attributes everywhere (golden files hold Linux's), values by each OS's rules.
func TestScrapeShapes(t *testing.T) {
	const GiB = 1 << 30
	t.Run("linux", func(t *testing.T) {
		runOSCase(t, osCase{src: linuxSource(), move: moveLinuxCounters, check: func(t *testing.T, system, resources map[string]map[string]float64) {
			assert.Equal(t, map[string]float64{"busy": 0.4}, system["system.cpu.utilization"])
			assert.Equal(t, map[string]float64{"sda/read": 8, "sda/write": 2, "nvme0n1/read": 0, "nvme0n1/write": 0}, resources["system.disk.operations.rate"])
		}})
	})
	t.Run("darwin", func(t *testing.T) {
		runOSCase(t, osCase{
			src: darwinSource(),
			move: func(s *fakeSource) {
				s.cpu.User += 3 // +3 user, +1 system, +4 idle: half busy, no iowait to count
				s.cpu.System++
				s.cpu.Idle += 4
				d := s.disks["disk0"]
				d.ReadCount, d.WriteCount, d.WriteBytes = d.ReadCount+50, d.WriteCount+25, d.WriteBytes+1<<20
				s.disks["disk0"] = d
				s.nics[1].BytesRecv += 5000
			},
			check: func(t *testing.T, system, resources map[string]map[string]float64) {
				assert.Equal(t, map[string]float64{"busy": 0.5}, system["system.cpu.utilization"])
				assert.Equal(t, map[string]float64{"used": 8 * GiB, "free": 2 * GiB, "cached": 6 * GiB, "buffered": 0}, system["system.memory.usage"])
				assert.Equal(t, map[string]float64{"disk0/read": 10, "disk0/write": 5, "disk4/read": 0, "disk4/write": 0}, resources["system.disk.operations.rate"])
				assert.Equal(t, map[string]float64{"disk0/read": 4096000, "disk0/write": 2048000 + 1<<20, "disk4/read": 40960, "disk4/write": 0}, resources["system.disk.io"])
				assert.Equal(t, map[string]float64{"en0/receive": 1000, "en0/transmit": 0, "utun0/receive": 0, "utun0/transmit": 0}, resources["system.network.io.rate"], "no lo0")
				assert.Equal(t, map[string]float64{
					"/dev/disk3s1s1///apfs":                  10.0 / 300,
					"/dev/disk3s5//System/Volumes/Data/apfs": 200.0 / 490,
				}, resources["system.filesystem.utilization"], "devfs and autofs are no filesystems to measure")
				assert.Equal(t, 200.0*GiB, resources["system.filesystem.usage"]["/dev/disk3s1s1///apfs/reserved"], "APFS volumes share their container's space")
			},
		})
	})
	t.Run("windows", func(t *testing.T) {
		runOSCase(t, osCase{
			src: windowsSource(),
			move: func(s *fakeSource) {
				s.cpu.User += 6 // +6 user, +2 system (of which irq +1), +2 idle: 80 % busy
				s.cpu.System += 2
				s.cpu.Irq++
				s.cpu.Idle += 2
				d := s.disks["C:"]
				d.ReadCount, d.WriteCount = d.ReadCount+500, d.WriteCount+100
				s.disks["C:"] = d
				s.nics[0].BytesRecv, s.nics[0].BytesSent = s.nics[0].BytesRecv+10000, s.nics[0].BytesSent+2500
			},
			check: func(t *testing.T, system, resources map[string]map[string]float64) {
				assert.Equal(t, map[string]float64{"busy": 0.8}, system["system.cpu.utilization"])
				assert.Equal(t, map[string]float64{"used": 12 * GiB, "free": 20 * GiB, "cached": 0, "buffered": 0}, system["system.memory.usage"])
				assert.Equal(t, map[string]float64{"C:/read": 100, "C:/write": 20, "D:/read": 0, "D:/write": 0}, resources["system.disk.operations.rate"], "disks by drive letter")
				assert.Equal(t, map[string]float64{
					"Ethernet/receive": 2000, "Ethernet/transmit": 500, "vEthernet (WSL)/receive": 0, "vEthernet (WSL)/transmit": 0,
				}, resources["system.network.io.rate"], "no loopback pseudo-interface")
				assert.Equal(t, map[string]float64{"C:/C:/NTFS": 156.0 / 256, "D:/D:/ReFS": 24.0 / 1024}, resources["system.filesystem.utilization"])
			},
		})
	})
}

// Under root_path the filesystems are measured below it; without, at the mount point as
// gopsutil names it (a drive letter on Windows).
func TestScrapeStatPaths(t *testing.T) {
	src := windowsSource()
	ts := newTestScrapersOn(t, src, metadata.NewDefaultMetricsBuilderConfig(), nil)
	ts.scrapeResources(t)
	assert.Equal(t, 1, src.calls["usage C:"])
	assert.Equal(t, 1, src.calls["usage D:"])

	linux := linuxSource()
	root := t.TempDir()
	for mp, u := range linux.sizes {
		linux.sizes[filepath.Join(root, mp)] = u
	}
	ts = newTestScrapersOn(t, linux, metadata.NewDefaultMetricsBuilderConfig(), func(c *Config) { c.RootPath = root })
	md := ts.scrapeResources(t)
	assert.Equal(t, 1, linux.calls["usage "+root+"/data"])
	assert.Equal(t, 1, linux.calls["usage "+root+"/work dir"])
	assert.Equal(t, 1, linux.calls["usage "+root])
	require.Len(t, points(md)["system.filesystem.utilization"], 3)
}
