package state

import (
	"github.com/buildmon/buildmon/internal/phaseusage"
	"github.com/buildmon/buildmon/internal/wire"
)

// Resources: the exporter attributes what a host spends to the phases running on it, from
// the host metrics it receives, with phaseusage, the algorithm the buildprogress processor
// uses for its opt-in build.phase.* metrics. Reports prefer the processor's figures when
// they arrive (Phase.Resources); the exporter's own (Phase.HostUsage) fill in without them.
//
// Per running phase the state holds one phaseusage.Phase (a few numbers), per host the
// totals of its newest reading. Neither is in checkpoints: after a restart the host reader
// starts again (the first reading of each counter only sets its baseline), and a phase that
// was running is attributed what its host spent from the first host reading after the
// restart on.

// startUsage begins attributing to a phase that started running on b's host, from the
// host's newest reading. Without one (the host sent nothing yet, or not since a restart),
// the host's first reading starts it (attributeHost).
func (s *Store) startUsage(b *Build, p *Phase) {
	p.usage = nil
	h := s.hosts[b.Host]
	if b.Host == "" || h == nil || h.usage.Seq == 0 {
		return
	}
	u := phaseusage.Start(h.usage.Totals, h.usage.Seq)
	p.usage = &u
}

// endUsage ends attributing to a phase that ended: what its host spent since it started
// becomes its HostUsage, stamped with the end's timestamp. It reports whether HostUsage
// changed.
func (s *Store) endUsage(b *Build, p *Phase) bool {
	u := p.usage
	p.usage = nil
	h := s.hosts[b.Host]
	if u == nil || h == nil {
		return false
	}
	r, ok := u.End(h.usage.Totals, h.usage.Kinds, h.usage.Seq)
	if !ok {
		return false
	}
	hu := usageResources(r, max(p.State.T, 1))
	if hu == p.HostUsage {
		return false
	}
	p.HostUsage = hu
	return true
}

// stopUsage drops the accumulators of b's phases (b finished, or moved to another host).
func stopUsage(b *Build) {
	for _, p := range b.Phases {
		p.usage = nil
	}
}

// attributeHost takes a host reading: its totals, if newer than the host's, and its sample
// (CPU, memory in use) for every phase running on the host. A running phase without an
// accumulator starts one here with the reading's totals, so this reading's sample counts
// for it but the counter increases before it do not.
func (s *Store) attributeHost(h *Host, o *HostObservation) {
	if o.Usage.Seq == 0 {
		return
	}
	if o.Usage.Seq > h.usage.Seq {
		h.usage = o.Usage
	}
	for _, b := range s.running[h.Name] {
		for _, p := range b.Phases {
			if p.State.V != PhaseRunning {
				continue
			}
			if p.usage == nil {
				u := phaseusage.Start(h.usage.Totals, o.Usage.Seq-1)
				p.usage = &u
			}
			p.usage.Add(o.CPU.V, o.CPU.OK, o.MemUsed.V, o.MemUsed.OK)
		}
	}
}

// usageResources are a phaseusage figure set as the state keeps it, stamped ts.
func usageResources(r phaseusage.Usage, ts int64) PhaseResources {
	var out PhaseResources
	if r.HasCPU {
		out.CPUAvg, out.CPUMax = Stamped[float64]{V: r.CPUAvg, T: ts}, Stamped[float64]{V: r.CPUMax, T: ts}
	}
	if r.HasMem {
		out.MemoryMax = Stamped[int64]{V: r.MemMax, T: ts}
	}
	pair := func(read, write *Stamped[int64], v [2]int64, has bool) {
		if has {
			*read, *write = Stamped[int64]{V: v[phaseusage.Read], T: ts}, Stamped[int64]{V: v[phaseusage.Write], T: ts}
		}
	}
	pair(&out.DiskRead, &out.DiskWrite, r.Disk, r.HasDisk)
	pair(&out.NetTransmit, &out.NetReceive, r.Net, r.HasNet)
	pair(&out.DiskOpsRead, &out.DiskOpsWrite, r.Ops, r.HasOps)
	return out
}

// EffectiveResources returns the figures a phase's report shows and their source: the
// processor's when any arrived, else the exporter's own.
func EffectiveResources(p *Phase) (PhaseResources, string) {
	switch {
	case p.Resources.Any():
		return p.Resources, wire.ResourcesProcessor
	case p.HostUsage.Any():
		return p.HostUsage, wire.ResourcesHostMetrics
	}
	return PhaseResources{}, wire.ResourcesNone
}

// ResourcesView is figures as the reports and the status API show them: source none
// without any.
func ResourcesView(r PhaseResources, source string) wire.PhaseResources {
	if !r.Any() {
		return wire.PhaseResources{Source: wire.ResourcesNone}
	}
	return wire.PhaseResources{Source: source,
		CPUUtilizationAvg: r.CPUAvg.Ptr(), CPUUtilizationMax: r.CPUMax.Ptr(), MemoryUsageMaxBytes: r.MemoryMax.Ptr(),
		DiskReadBytes: r.DiskRead.Ptr(), DiskWriteBytes: r.DiskWrite.Ptr(),
		NetworkTransmitBytes: r.NetTransmit.Ptr(), NetworkReceiveBytes: r.NetReceive.Ptr(),
		DiskReadOperations: r.DiskOpsRead.Ptr(), DiskWriteOperations: r.DiskOpsWrite.Ptr()}
}

// phaseResourcesView is a phase's resources in its status: an ended phase's as in its
// report, the running phase's so far (what End would give now); nil while pending or
// unknown.
func (s *Store) phaseResourcesView(b *Build, p *Phase) *wire.PhaseResources {
	r, source := EffectiveResources(p)
	if p.State.V == PhaseRunning && p.usage != nil {
		if h := s.hosts[b.Host]; h != nil {
			if u, ok := p.usage.End(h.usage.Totals, h.usage.Kinds, h.usage.Seq); ok {
				r, source = usageResources(u, max(h.UpdatedAt, 1)), wire.ResourcesHostMetrics
			}
		}
	}
	if !r.Any() {
		return nil
	}
	v := ResourcesView(r, source)
	return &v
}
