// Package phaseusage attributes a host's resource use to the phases that run on it: while a
// phase runs, every host sample adds its CPU share and memory in use, and when it ends the
// increase of the host's cumulative disk, network and operation totals since it started is
// its share of those. It is the one algorithm for per-phase resource use: the buildprogress
// processor (its opt-in build.phase.* metrics) and the checkpoint exporter (its reports,
// when those metrics are off) both use it, each feeding it from internal/hostusage, which
// reads the host metrics of either source.
//
// The package is plain Go: no collector types appear in it.
package phaseusage // import "github.com/buildmon/buildmon/internal/phaseusage"

// Directions index the [2] arrays of Totals and Usage: read (disk) or transmit (network)
// first, write or receive second.
const (
	Read     = 0
	Transmit = 0
	Write    = 1
	Receive  = 1
)

// Totals are a host's cumulative byte and operation counts, summed over its devices and
// interfaces from the increments of their counters, so that counter resets (counted from
// zero) and new devices do not distort differences.
type Totals struct {
	Disk, Net, Ops [2]int64 // [Read|Transmit, Write|Receive]
}

// Kinds says which counters a host has sent: a phase's figure of a kind the host never sent
// is unknown, not zero.
type Kinds struct {
	Disk, Net, Ops bool
}

// Phase accumulates a host's resource use while one phase runs: a few numbers, whatever the
// number of samples, devices or interfaces. The zero value is not started; use Start.
type Phase struct {
	cpuSum, cpuMax float64
	cpuN           int
	memMax         int64
	memSeen        bool
	start          Totals // the host's totals when the phase started
	samples        uint64 // the host's sample count when the phase started
}

// Start begins a phase on a host whose totals and count of samples read are those given.
func Start(t Totals, samples uint64) Phase {
	return Phase{start: t, samples: samples}
}

// Add adds one host sample taken while the phase runs: its busy CPU share (0–1) and memory
// in use (bytes), each only when the sample has it.
func (u *Phase) Add(cpu float64, hasCPU bool, memUsed int64, hasMem bool) {
	if hasCPU {
		u.cpuSum += cpu
		u.cpuMax = max(u.cpuMax, cpu)
		u.cpuN++
	}
	if hasMem {
		u.memMax = max(u.memMax, memUsed)
		u.memSeen = true
	}
}

// Usage is what a host spent while a phase ran.
type Usage struct {
	// CPUAvg is the mean of the busy CPU shares sampled while the phase ran (each sample
	// weighs the same: hosts are scraped at a fixed interval); CPUMax the highest.
	CPUAvg, CPUMax float64
	// MemMax is the highest memory in use sampled.
	MemMax int64
	// Disk (bytes), Net (bytes) and Ops (operations) are the increases of the host's totals.
	Disk, Net, Ops          [2]int64
	HasCPU, HasMem          bool
	HasDisk, HasNet, HasOps bool
}

// End returns what the host spent since the phase started, given the host's totals, kinds
// and count of samples read now; ok is false when no sample was read while the phase ran.
// A total below the one the phase started from (the host's totals started again, as after
// a restart of the reader) counts as no increase, never as a negative one.
func (u *Phase) End(t Totals, k Kinds, samples uint64) (r Usage, ok bool) {
	if samples <= u.samples {
		return r, false
	}
	if u.cpuN > 0 {
		r.CPUAvg, r.CPUMax, r.HasCPU = u.cpuSum/float64(u.cpuN), u.cpuMax, true
	}
	r.MemMax, r.HasMem = u.memMax, u.memSeen
	for dir := range 2 {
		r.Disk[dir] = max(0, t.Disk[dir]-u.start.Disk[dir])
		r.Net[dir] = max(0, t.Net[dir]-u.start.Net[dir])
		r.Ops[dir] = max(0, t.Ops[dir]-u.start.Ops[dir])
	}
	r.HasDisk, r.HasNet, r.HasOps = k.Disk, k.Net, k.Ops
	return r, true
}
