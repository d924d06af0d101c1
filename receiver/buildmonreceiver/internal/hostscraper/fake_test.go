package hostscraper

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/net"
)

// fakeSource holds gopsutil readings shaped like one OS's; tests change them between scrapes.
// An error set for a call is returned instead of its reading.
type fakeSource struct {
	os    string
	boot  uint64
	cpu   cpu.TimesStat
	mem   mem.VirtualMemoryStat
	disks map[string]disk.IOCountersStat
	nics  []net.IOCountersStat
	parts []disk.PartitionStat
	sizes map[string]disk.UsageStat // by the path given to usage
	errs  map[string]error          // by call name: "boot", "cpu", "mem", "disks", "nics", "parts", "usage <path>"
	calls map[string]int            // how often each call was made
}

func (f *fakeSource) call(name string) error {
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[name]++
	return f.errs[name]
}

func (f *fakeSource) goos() string { return f.os }

func (f *fakeSource) bootTime(context.Context) (uint64, error) {
	return f.boot, f.call("boot")
}

func (f *fakeSource) cpuTimes(context.Context) ([]cpu.TimesStat, error) {
	if err := f.call("cpu"); err != nil {
		return nil, err
	}
	return []cpu.TimesStat{f.cpu}, nil
}

func (f *fakeSource) virtualMemory(context.Context) (*mem.VirtualMemoryStat, error) {
	if err := f.call("mem"); err != nil {
		return nil, err
	}
	m := f.mem
	return &m, nil
}

func (f *fakeSource) diskIOCounters(context.Context) (map[string]disk.IOCountersStat, error) {
	if err := f.call("disks"); err != nil {
		return nil, err
	}
	return maps.Clone(f.disks), nil
}

func (f *fakeSource) netIOCounters(context.Context) ([]net.IOCountersStat, error) {
	if err := f.call("nics"); err != nil {
		return nil, err
	}
	return slices.Clone(f.nics), nil
}

func (f *fakeSource) partitions(context.Context) ([]disk.PartitionStat, error) {
	if err := f.call("parts"); err != nil {
		return nil, err
	}
	return slices.Clone(f.parts), nil
}

func (f *fakeSource) usage(_ context.Context, path string) (*disk.UsageStat, error) {
	if err := f.call("usage " + path); err != nil {
		return nil, err
	}
	u, ok := f.sizes[path]
	if !ok {
		return nil, fmt.Errorf("statfs %s: %w", path, errors.ErrUnsupported)
	}
	return &u, nil
}

// linuxSource is what gopsutil reads from testdata/root (a tiny proc tree): jiffies become
// seconds (100 per second), sectors bytes (512 each), meminfo's kB bytes, and gopsutil adds
// SReclaimable to Cached and names the bind mount's device after its filesystem's.
func linuxSource() *fakeSource {
	const kB = 1 << 10
	return &fakeSource{
		os:   "linux",
		boot: 1767225600,
		cpu:  cpu.TimesStat{CPU: "cpu-total", User: 1, System: 0.5, Idle: 8, Iowait: 0.5},
		mem: mem.VirtualMemoryStat{
			Total: 1000 * kB, Available: 600 * kB, Used: 400 * kB, Free: 400 * kB, Buffers: 100 * kB,
			Cached: 200 * kB, Sreclaimable: 50 * kB, Active: 300 * kB,
		},
		disks: map[string]disk.IOCountersStat{
			"loop0":     linuxDisk("loop0", 5, 10, 0, 0),
			"sda":       linuxDisk("sda", 100, 2000, 50, 1000),
			"sda1":      linuxDisk("sda1", 90, 1800, 45, 900),
			"nvme0n1":   linuxDisk("nvme0n1", 10, 80, 20, 160),
			"nvme0n1p1": linuxDisk("nvme0n1p1", 10, 80, 20, 160),
			"dm-0":      linuxDisk("dm-0", 80, 1600, 40, 800),
		},
		nics: []net.IOCountersStat{
			{Name: "lo", BytesRecv: 1000, BytesSent: 1000, PacketsRecv: 10, PacketsSent: 10},
			{Name: "eth0", BytesRecv: 5000, BytesSent: 3000, PacketsRecv: 50, PacketsSent: 30},
			{Name: "veth1a2b", BytesRecv: 700, BytesSent: 800, PacketsRecv: 7, PacketsSent: 8},
		},
		parts: []disk.PartitionStat{
			{Device: "/dev/sda", Mountpoint: "/", Fstype: "ext4", Opts: []string{"rw", "relatime"}},
			{Device: "proc", Mountpoint: "/proc", Fstype: "proc", Opts: []string{"rw", "nosuid", "nodev", "noexec", "relatime"}},
			{Device: "/dev/nvme0n1p1", Mountpoint: "/data", Fstype: "xfs", Opts: []string{"rw", "relatime"}},
			{Device: "tmpfs", Mountpoint: "/tmp", Fstype: "tmpfs", Opts: []string{"rw", "nosuid", "nodev"}},
			{Device: "/dev/sda", Mountpoint: "/mnt/cache", Fstype: "ext4", Opts: []string{"rw", "relatime", "bind"}},
			{Device: "/dev/loop0", Mountpoint: "/snap/core/123", Fstype: "squashfs", Opts: []string{"ro", "nodev", "relatime"}},
			{Device: "overlay", Mountpoint: "/var/lib/docker/overlay2/0f1e/merged", Fstype: "overlay", Opts: []string{"rw", "relatime"}},
			{Device: "/dev/sdb", Mountpoint: "/work dir", Fstype: "ext4", Opts: []string{"rw", "relatime"}},
			{Device: "/dev/sdc", Mountpoint: "/scratch", Fstype: "ext4", Opts: []string{"rw", "relatime"}},
			{Device: "tmpfs", Mountpoint: "/scratch", Fstype: "tmpfs", Opts: []string{"rw", "relatime"}},
		},
		sizes: map[string]disk.UsageStat{
			"/":         {Total: 1000, Used: 600, Free: 350}, // 50 reserved
			"/data":     {Total: 4000, Used: 1000, Free: 3000},
			"/work dir": {Total: 2000, Used: 1500, Free: 400}, // 100 reserved
		},
	}
}

func linuxDisk(name string, reads, sectorsRead, writes, sectorsWritten uint64) disk.IOCountersStat {
	return disk.IOCountersStat{Name: name, ReadCount: reads, ReadBytes: sectorsRead * 512, WriteCount: writes, WriteBytes: sectorsWritten * 512}
}

// darwinSource is shaped like gopsutil on macOS: CPU times without iowait, irq or steal;
// memory as free, inactive, active and wired pages (no buffers, no Cached); IOKit's whole
// disks; BSD interface names; APFS volumes of one container.
func darwinSource() *fakeSource {
	const GiB = 1 << 30
	return &fakeSource{
		os:   "darwin",
		boot: 1767225600,
		cpu:  cpu.TimesStat{CPU: "cpu-total", User: 300, Nice: 0, System: 100, Idle: 1600},
		mem: mem.VirtualMemoryStat{
			Total: 16 * GiB, Free: 2 * GiB, Inactive: 6 * GiB, Active: 5 * GiB, Wired: 3 * GiB,
			Available: 8 * GiB, Used: 8 * GiB,
		},
		disks: map[string]disk.IOCountersStat{
			"disk0": {Name: "disk0", ReadCount: 1000, WriteCount: 500, ReadBytes: 4096000, WriteBytes: 2048000},
			"disk4": {Name: "disk4", ReadCount: 10, WriteCount: 0, ReadBytes: 40960, WriteBytes: 0},
		},
		nics: []net.IOCountersStat{
			{Name: "lo0", BytesRecv: 9000, BytesSent: 9000},
			{Name: "en0", BytesRecv: 70000, BytesSent: 30000},
			{Name: "utun0", BytesRecv: 100, BytesSent: 200},
		},
		parts: []disk.PartitionStat{
			{Device: "/dev/disk3s1s1", Mountpoint: "/", Fstype: "apfs", Opts: []string{"ro", "journaled", "multilabel"}},
			{Device: "devfs", Mountpoint: "/dev", Fstype: "devfs", Opts: []string{"rw", "multilabel"}},
			{Device: "/dev/disk3s5", Mountpoint: "/System/Volumes/Data", Fstype: "apfs", Opts: []string{"rw", "journaled"}},
			{Device: "map auto_home", Mountpoint: "/System/Volumes/Data/home", Fstype: "autofs", Opts: []string{"rw", "automounted"}},
		},
		sizes: map[string]disk.UsageStat{
			"/":                    {Total: 500 * GiB, Used: 10 * GiB, Free: 290 * GiB},
			"/System/Volumes/Data": {Total: 500 * GiB, Used: 200 * GiB, Free: 290 * GiB},
		},
	}
}

// windowsSource is shaped like gopsutil on Windows: CPU times of user, system (kernel less
// idle, interrupts included) and idle, with interrupt time again as irq; memory as total and
// available; disks and filesystems by drive letter; interfaces by their friendly names.
func windowsSource() *fakeSource {
	const GiB = 1 << 30
	return &fakeSource{
		os:   "windows",
		boot: 1767225600,
		cpu:  cpu.TimesStat{CPU: "cpu-total", User: 500, System: 300, Idle: 1200, Irq: 50},
		mem: mem.VirtualMemoryStat{
			Total: 32 * GiB, Available: 20 * GiB, Free: 20 * GiB, Used: 12 * GiB,
		},
		disks: map[string]disk.IOCountersStat{
			"C:": {Name: "C:", ReadCount: 7000, WriteCount: 3000, ReadBytes: 700 << 20, WriteBytes: 300 << 20},
			"D:": {Name: "D:", ReadCount: 100, WriteCount: 50, ReadBytes: 10 << 20, WriteBytes: 5 << 20},
		},
		nics: []net.IOCountersStat{
			{Name: "Ethernet", BytesRecv: 123456, BytesSent: 654321},
			{Name: "Loopback Pseudo-Interface 1", BytesRecv: 0, BytesSent: 0},
			{Name: "vEthernet (WSL)", BytesRecv: 10, BytesSent: 20},
		},
		parts: []disk.PartitionStat{
			{Device: "C:", Mountpoint: "C:", Fstype: "NTFS", Opts: []string{"rw", "compress"}},
			{Device: "D:", Mountpoint: "D:", Fstype: "ReFS", Opts: []string{"rw"}},
		},
		sizes: map[string]disk.UsageStat{
			"C:": {Total: 256 * GiB, Used: 156 * GiB, Free: 100 * GiB},
			"D:": {Total: 1024 * GiB, Used: 24 * GiB, Free: 1000 * GiB},
		},
	}
}
