package buildprogressprocessor // import "github.com/buildmon/buildmon/processor/buildprogressprocessor"

import (
	"github.com/buildmon/buildmon/internal/hostusage"
)

// attributeSample adds one host sample's CPU and memory to every phase running on the host.
func (p *buildProgressProcessor) attributeSample(h *hostState, s *hostusage.Sample) {
	if !s.HasCPU && !s.HasMemUsed {
		return
	}
	for b := range h.builds {
		for _, u := range b.usage {
			if u == nil {
				continue
			}
			if s.HasCPU {
				u.cpuSum += s.CPU
				u.cpuMax = max(u.cpuMax, s.CPU)
				u.cpuN++
			}
			if s.HasMemUsed {
				u.memMax = max(u.memMax, s.MemUsed)
				u.memSeen = true
			}
		}
	}
}

// report returns the resource use of a phase that just ended on host h; ok is false when no
// host sample arrived while it ran.
func (u *phaseUsage) report(phase string, h *hostState) (r phaseReport, ok bool) {
	if h == nil || h.samples <= u.samples {
		return r, false
	}
	r.phase = phase
	if u.cpuN > 0 {
		r.cpuAvg, r.cpuMax, r.hasCPU = u.cpuSum/float64(u.cpuN), u.cpuMax, true
	}
	r.memMax, r.hasMem = u.memMax, u.memSeen
	t := &h.usage.Totals
	for dir := range 2 {
		r.disk[dir] = t.Disk[dir] - u.start.Disk[dir]
		r.net[dir] = t.Net[dir] - u.start.Net[dir]
		r.ops[dir] = t.Ops[dir] - u.start.Ops[dir]
	}
	r.hasDisk, r.hasNet, r.hasOps = h.usage.HasDisk, h.usage.HasNet, h.usage.HasOps
	return r, true
}
