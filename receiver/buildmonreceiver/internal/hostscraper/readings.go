package hostscraper // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper"

import (
	"math"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/mem"
)

// What each OS's readings mean: gopsutil returns the same structs everywhere, but which
// fields are set, and what they hold, is the OS's. These rules are the whole of the OS
// knowledge of the scrapers, pure functions that tests feed readings of every shape.

// cpuTimes are the busy and total seconds of all CPUs together, as one reading counts them.
type cpuTimes struct{ busy, total float64 }

// cpuTimesOf counts the CPU times t of an OS goos.
//   - linux: user nice system idle iowait irq softirq steal; guest time is already part of
//     user and nice, so it is left out of the total; idle and iowait are the time not busy.
//   - darwin: user nice system idle (the rest is zero).
//   - windows: system is the kernel's time less idle time, and the kernel's time holds the
//     interrupt time that gopsutil reports as irq as well: irq is left out of the total.
func cpuTimesOf(goos string, t *cpu.TimesStat) cpuTimes {
	if goos == "windows" {
		return cpuTimes{busy: t.User + t.System, total: t.User + t.System + t.Idle}
	}
	total := t.User + t.Nice + t.System + t.Idle + t.Iowait + t.Irq + t.Softirq + t.Steal
	return cpuTimes{busy: total - t.Idle - t.Iowait, total: total}
}

// busyShare is the busy share of the CPU time that passed from prev to cur, and ok false
// when none can be told: no time passed (within one clock tick) or the counters went back (a
// restored VM). The share is rounded to 1e-9: the times are seconds in float64 (clock ticks
// divided by the tick rate), and the rounding keeps their representation error (0.4 read as
// 0.3999999999999999) out of the metric.
func busyShare(prev, cur cpuTimes) (share float64, ok bool) {
	dBusy, dTotal := cur.busy-prev.busy, cur.total-prev.total
	if dTotal <= 0 || dBusy < 0 {
		return 0, false
	}
	return min(math.Round(dBusy/dTotal*1e9)/1e9, 1), true
}

// memoryStates are the bytes of the states system.memory.* reports; they add up to the
// total.
type memoryStates struct{ used, free, cached, buffered uint64 }

// memoryStatesOf splits the memory m of an OS goos into used, free, cached and buffered.
//   - linux: as the contrib hostmetrics receiver does, cached includes the reclaimable slab
//     (gopsutil adds SReclaimable to Cached), and used is the rest (not gopsutil's Used, which
//     is total less MemAvailable and overlaps cached).
//   - darwin: the inactive pages, which macOS reclaims first, are cached (gopsutil's
//     Available is free + inactive); no buffers.
//   - windows: free is the available memory; nothing is cached or buffered.
func memoryStatesOf(goos string, m *mem.VirtualMemoryStat) memoryStates {
	s := memoryStates{free: m.Free, cached: m.Cached, buffered: m.Buffers}
	switch goos {
	case "darwin":
		s.cached, s.buffered = m.Inactive, 0
	case "windows":
		s.cached, s.buffered = 0, 0
	}
	rest := m.Total
	for _, v := range []uint64{s.free, s.cached, s.buffered} {
		rest -= min(v, rest)
	}
	s.used = rest
	return s
}
