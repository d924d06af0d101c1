package hostscraper // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper"

import (
	"context"
	"path/filepath"
	"runtime"

	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/net"
)

// hostSource is what the scrapers read from the host: the gopsutil calls they make, and the
// operating system whose shape the readings have (the fields a reading fills differ: macOS has
// no iowait or steal time and no page cache figure, Windows names disks by drive letter and
// counts interrupt time inside system time). Tests put readings shaped like each OS behind it.
type hostSource interface {
	// goos is the operating system of the readings, a runtime.GOOS value.
	goos() string
	bootTime(ctx context.Context) (uint64, error)
	// cpuTimes returns the times of all CPUs together (gopsutil's cpu.Times(false)).
	cpuTimes(ctx context.Context) ([]cpu.TimesStat, error)
	virtualMemory(ctx context.Context) (*mem.VirtualMemoryStat, error)
	diskIOCounters(ctx context.Context) (map[string]disk.IOCountersStat, error)
	// netIOCounters returns the counters of each interface (gopsutil's net.IOCounters(true)).
	netIOCounters(ctx context.Context) ([]net.IOCountersStat, error)
	// partitions returns every mount, pseudo filesystems included (disk.Partitions(true)).
	partitions(ctx context.Context) ([]disk.PartitionStat, error)
	usage(ctx context.Context, path string) (*disk.UsageStat, error)
}

// gopsutilSource reads this host through gopsutil. Under root_path, gopsutil reads the host's
// proc, sys, etc, var, run and dev trees there: the paths go into each call's context as
// gopsutil's env map, which wins over the process environment (HOST_PROC …), so the collector's
// own environment is left alone.
type gopsutilSource struct {
	env common.EnvMap // nil without root_path on non-Linux hosts
}

func newGopsutilSource(root string) *gopsutilSource {
	if root == "" {
		if runtime.GOOS != "linux" {
			return &gopsutilSource{}
		}
		// gopsutil prefers init's mount table; the collector's own is what it can measure
		// (inside a container without root_path, init's may name mounts it cannot see).
		return &gopsutilSource{env: common.EnvMap{common.HostProcMountinfo: "/proc/self/mountinfo"}}
	}
	join := func(p string) string { return filepath.Join(root, p) }
	return &gopsutilSource{env: common.EnvMap{
		common.HostRootEnvKey: root,
		common.HostProcEnvKey: join("proc"),
		common.HostSysEnvKey:  join("sys"),
		common.HostEtcEnvKey:  join("etc"),
		common.HostVarEnvKey:  join("var"),
		common.HostRunEnvKey:  join("run"),
		common.HostDevEnvKey:  join("dev"),
	}}
}

func (s *gopsutilSource) ctx(ctx context.Context) context.Context {
	if s.env == nil {
		return ctx
	}
	return context.WithValue(ctx, common.EnvKey, s.env)
}

func (*gopsutilSource) goos() string { return runtime.GOOS }

func (s *gopsutilSource) bootTime(ctx context.Context) (uint64, error) {
	return host.BootTimeWithContext(s.ctx(ctx))
}

func (s *gopsutilSource) cpuTimes(ctx context.Context) ([]cpu.TimesStat, error) {
	return cpu.TimesWithContext(s.ctx(ctx), false)
}

func (s *gopsutilSource) virtualMemory(ctx context.Context) (*mem.VirtualMemoryStat, error) {
	return mem.VirtualMemoryWithContext(s.ctx(ctx))
}

func (s *gopsutilSource) diskIOCounters(ctx context.Context) (map[string]disk.IOCountersStat, error) {
	return disk.IOCountersWithContext(s.ctx(ctx))
}

func (s *gopsutilSource) netIOCounters(ctx context.Context) ([]net.IOCountersStat, error) {
	return net.IOCountersWithContext(s.ctx(ctx), true)
}

func (s *gopsutilSource) partitions(ctx context.Context) ([]disk.PartitionStat, error) {
	return disk.PartitionsWithContext(s.ctx(ctx), true)
}

func (s *gopsutilSource) usage(ctx context.Context, path string) (*disk.UsageStat, error) {
	return disk.UsageWithContext(s.ctx(ctx), path)
}
