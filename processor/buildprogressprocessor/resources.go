package buildprogressprocessor // import "github.com/buildmon/buildmon/processor/buildprogressprocessor"

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/internal/pdatacontract"
	"github.com/buildmon/buildmon/internal/schema"
)

// Kinds of cumulative host counters (counterKey.metric), indexing hostTotals.
const (
	counterDiskIO uint8 = iota
	counterNetworkIO
	counterDiskOps
)

// direction returns the hostTotals index of a direction attribute value, or -1.
func direction(v string) int {
	switch v {
	case schema.DiskRead, schema.NetworkTransmit:
		return 0
	case schema.DiskWrite, schema.NetworkReceive:
		return 1
	}
	return -1
}

// readHostUsage reads what phase attribution needs from one host metric: the busy CPU share
// and used memory of this sample, and the increments of the cumulative disk, network and
// disk-operation counters, summed over devices into the host's totals.
func (p *buildProgressProcessor) readHostUsage(h *hostState, name string, dps pmetric.NumberDataPointSlice, sample *hostSample) {
	switch name {
	case schema.MetricCPUUtilization:
		for k := 0; k < dps.Len(); k++ {
			dp := dps.At(k)
			if mode := pdatacontract.Str(dp.Attributes(), schema.AttrCPUMode); mode == schema.CPUModeBusy || mode == "" {
				sample.cpu, sample.hasCPU = pdatacontract.Value(dp), true
			}
		}
	case schema.MetricMemoryUsage:
		for k := 0; k < dps.Len(); k++ {
			dp := dps.At(k)
			if pdatacontract.Str(dp.Attributes(), schema.AttrMemoryState) == schema.MemoryStateUsed {
				sample.mem, sample.hasMem = pdatacontract.IntValue(dp), true
			}
		}
	case schema.MetricDiskIO:
		h.addCounters(counterDiskIO, dps, schema.AttrDevice, schema.AttrDiskDirection)
		h.hasDisk = true
	case schema.MetricNetworkIO:
		h.addCounters(counterNetworkIO, dps, schema.AttrInterface, schema.AttrNetworkDirection)
		h.hasNet = true
	case schema.MetricDiskOperations:
		h.addCounters(counterDiskOps, dps, schema.AttrDevice, schema.AttrDiskDirection)
		h.hasOps = true
	}
}

// addCounters adds the increments of cumulative per-device counters to the host's totals.
// The first value of a device only sets its baseline; a value below the previous one is a
// counter reset and counts from zero.
func (h *hostState) addCounters(kind uint8, dps pmetric.NumberDataPointSlice, deviceAttr, directionAttr string) {
	if h.counters == nil {
		h.counters = map[counterKey]int64{}
	}
	total := &h.totals.disk
	switch kind {
	case counterNetworkIO:
		total = &h.totals.net
	case counterDiskOps:
		total = &h.totals.ops
	}
	for k := 0; k < dps.Len(); k++ {
		dp := dps.At(k)
		dir := direction(pdatacontract.Str(dp.Attributes(), directionAttr))
		if dir < 0 {
			continue
		}
		key := counterKey{metric: kind, dir: uint8(dir), device: pdatacontract.Str(dp.Attributes(), deviceAttr)}
		v := pdatacontract.IntValue(dp)
		prev, seen := h.counters[key]
		if !seen {
			key.device = strings.Clone(key.device)
			h.counters[key] = v
			continue
		}
		delta := v - prev
		if delta < 0 {
			delta = v
		}
		total[dir] += delta
		h.counters[key] = v
	}
}

// attributeSample adds one host sample's CPU and memory to every phase running on the host.
func (p *buildProgressProcessor) attributeSample(h *hostState, s hostSample) {
	if !s.hasCPU && !s.hasMem {
		return
	}
	for b := range h.builds {
		for _, u := range b.usage {
			if u == nil {
				continue
			}
			if s.hasCPU {
				u.cpuSum += s.cpu
				u.cpuMax = max(u.cpuMax, s.cpu)
				u.cpuN++
			}
			if s.hasMem {
				u.memMax = max(u.memMax, s.mem)
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
	for dir := range 2 {
		r.disk[dir] = h.totals.disk[dir] - u.start.disk[dir]
		r.net[dir] = h.totals.net[dir] - u.start.net[dir]
		r.ops[dir] = h.totals.ops[dir] - u.start.ops[dir]
	}
	r.hasDisk, r.hasNet, r.hasOps = h.hasDisk, h.hasNet, h.hasOps
	return r, true
}
