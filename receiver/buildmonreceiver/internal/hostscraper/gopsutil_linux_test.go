//go:build linux

package hostscraper

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/buildmon/buildmon/internal/metadata"
)

// fakeRoot copies testdata/root (a tiny proc tree: stat, meminfo, diskstats, net/dev,
// 1/mountinfo) into a temporary root_path, so a test may move its counters. It adds
// proc/uptime, which gopsutil reads for the boot time instead of stat's btime once it has
// found itself in a container (it detects that once per process, from the first root it
// reads): the uptime says the host booted at btime and half a second, which gopsutil
// truncates to btime.
func fakeRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	require.NoError(t, os.CopyFS(root, os.DirFS(filepath.Join("testdata", "root"))))
	btime := time.Unix(int64(linuxSource().boot), 0).Add(500 * time.Millisecond)
	writeProc(t, root, "uptime", fmt.Sprintf("%.2f 0.00\n", time.Since(btime).Seconds()))
	return root
}

// writeProc replaces a proc file of the fake root.
func writeProc(t *testing.T, root, name, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(root, "proc", name), []byte(content), 0o600))
}

// rootSource is gopsutil under a fake root_path, with statfs answered by the fake sizes
// (the fake root's mount points are directories of this machine's filesystem).
type rootSource struct {
	*gopsutilSource
	root  string
	sizes map[string]disk.UsageStat
}

func newRootSource(root string) *rootSource {
	return &rootSource{gopsutilSource: newGopsutilSource(root), root: root, sizes: linuxSource().sizes}
}

func (s *rootSource) usage(_ context.Context, path string) (*disk.UsageStat, error) {
	mp := strings.TrimPrefix(path, s.root)
	if mp == "" {
		mp = "/"
	}
	u, ok := s.sizes[mp]
	if !ok {
		return nil, os.ErrNotExist
	}
	return &u, nil
}

// gopsutil under root_path reads the fake root's proc tree (through the env map in the
// context, not the process environment) and returns what linuxSource, the fake that every
// other Linux-shaped test uses, says it returns.
func TestGopsutilSourceReadsRootPath(t *testing.T) {
	root := fakeRoot(t)
	src := newGopsutilSource(root)
	want := linuxSource()
	ctx := context.Background()
	assert.Empty(t, os.Getenv("HOST_PROC"), "the test relies on the context only")

	boot, err := src.bootTime(ctx)
	require.NoError(t, err)
	assert.Equal(t, want.boot, boot)

	times, err := src.cpuTimes(ctx)
	require.NoError(t, err)
	require.Len(t, times, 1)
	assert.Equal(t, want.cpu, times[0])

	m, err := src.virtualMemory(ctx)
	require.NoError(t, err)
	for _, f := range []struct {
		name      string
		got, want uint64
	}{
		{"Total", m.Total, want.mem.Total}, {"Free", m.Free, want.mem.Free}, {"Buffers", m.Buffers, want.mem.Buffers},
		{"Cached", m.Cached, want.mem.Cached}, {"Available", m.Available, want.mem.Available}, {"Used", m.Used, want.mem.Used},
	} {
		assert.Equal(t, f.want, f.got, f.name)
	}

	disks, err := src.diskIOCounters(ctx)
	require.NoError(t, err)
	require.Len(t, disks, len(want.disks))
	for name, d := range want.disks {
		got := disks[name]
		assert.Equal(t, d, disk.IOCountersStat{Name: got.Name, ReadCount: got.ReadCount, ReadBytes: got.ReadBytes, WriteCount: got.WriteCount, WriteBytes: got.WriteBytes}, name)
	}

	nics, err := src.netIOCounters(ctx)
	require.NoError(t, err)
	require.Len(t, nics, len(want.nics))
	for i, n := range want.nics {
		assert.Equal(t, [3]any{n.Name, n.BytesRecv, n.BytesSent}, [3]any{nics[i].Name, nics[i].BytesRecv, nics[i].BytesSent})
	}

	parts, err := src.partitions(ctx)
	require.NoError(t, err)
	require.Len(t, parts, len(want.parts))
	for i, p := range want.parts {
		assert.Equal(t, [4]any{p.Device, p.Mountpoint, p.Fstype, strings.Contains(strings.Join(p.Opts, ","), "bind")},
			[4]any{parts[i].Device, parts[i].Mountpoint, parts[i].Fstype, strings.Contains(strings.Join(parts[i].Opts, ","), "bind")}, p.Mountpoint)
	}
}

// The scrapers on gopsutil under root_path make the golden batches of the Linux-shaped fake:
// the same metrics, attributes and values as the hand-written /proc parser made before
// gopsutil replaced it (the golden files are its output, unchanged).
func TestGopsutilRootPathGolden(t *testing.T) {
	root := fakeRoot(t)
	ts := newTestScrapersOn(t, newRootSource(root), metadata.NewDefaultMetricsBuilderConfig(), func(c *Config) { c.RootPath = root })
	ts.scrapeSystem(t)
	ts.scrapeResources(t)
	writeProc(t, root, "stat", "cpu  160 0 70 900 70 0 0 0 0 0\ncpu0 160 0 70 900 70 0 0 0 0 0\nbtime 1767225600\n")
	writeProc(t, root, "diskstats", `   7       0 loop0 500 0 1000 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   8       0 sda 140 0 2400 0 60 0 1200 0 0 0 0 0 0 0 0 0 0
   8       1 sda1 130 0 2200 0 55 0 1100 0 0 0 0 0 0 0 0 0 0
 259       0 nvme0n1 10 0 80 0 20 0 160 0 0 0 0 0 0 0 0 0 0
 259       1 nvme0n1p1 10 0 80 0 20 0 160 0 0 0 0 0 0 0 0 0 0
 253       0 dm-0 80 0 1600 0 40 0 800 0 0 0 0 0 0 0 0 0 0
`)
	writeProc(t, root, "net/dev", `Inter-|   Receive                                                |  Transmit
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

// TestReceiverLifecycle runs both controllers on a fake root: the metrics of both arrive
// with the configured host name, and Shutdown stops every goroutine (goleak in TestMain).
func TestReceiverLifecycle(t *testing.T) {
	cfg := fastConfig()
	cfg.RootPath = fakeRoot(t)
	cfg.Hostname = "h1"
	for _, mp := range []string{"data", "work dir"} { // so statfs finds the mount points
		require.NoError(t, os.Mkdir(filepath.Join(cfg.RootPath, mp), 0o755))
	}
	require.NoError(t, cfg.Validate())
	sink := new(consumertest.MetricsSink)
	r, err := NewReceiver(&cfg, metadata.NewDefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type), sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	require.Eventually(t, func() bool {
		metrics, _ := seen(sink)
		return metrics["system.memory.usage"] && metrics["system.disk.io"] && metrics["system.filesystem.usage"] &&
			metrics["system.network.io.rate"]
	}, 10*time.Second, 5*time.Millisecond, "both controllers deliver")
	require.NoError(t, r.Shutdown(context.Background()))
	require.NoError(t, r.Shutdown(context.Background()), "a second Shutdown does nothing")

	_, hosts := seen(sink)
	assert.Equal(t, map[string]bool{"h1": true}, hosts)
	for _, md := range sink.AllMetrics() {
		// The controllers send each scrape as its own batch with one resource.
		assert.LessOrEqual(t, md.ResourceMetrics().Len(), 1)
	}
}
