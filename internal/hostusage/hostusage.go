// Package hostusage reads what a host spends from its host metrics, whichever source sent
// them: the buildmon receiver's host scraper or the contrib hostmetricsreceiver (and agents
// that send its shape over OTLP), with attribute names old (state, direction, device) or
// semantic-convention (cpu.mode, system.memory.state, network.io.direction, …). It is the
// one place that normalizes host metrics: the buildprogress processor's alert aliases
// (cpu_usage, memory_usage, disk_usage, network_bandwidth, io_operations) and per-phase
// resource attribution (internal/phaseusage, in the processor and the checkpoint exporter)
// both read a Sample, and Host keeps the cumulative disk, network and operation totals phases
// are attributed from.
package hostusage // import "github.com/buildmon/buildmon/internal/hostusage"

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/internal/pdatacontract"
	"github.com/buildmon/buildmon/internal/phaseusage"
	"github.com/buildmon/buildmon/internal/schema"
)

// Directions index the [2] arrays of Totals and Sample: read (disk) or transmit (network)
// first, write or receive second (as in phaseusage).
const (
	Read     = phaseusage.Read
	Transmit = phaseusage.Transmit
	Write    = phaseusage.Write
	Receive  = phaseusage.Receive
)

// Metrics of the contrib hostmetricsreceiver that the buildmon schema does not have.
const (
	// MetricCPUTime is hostmetrics' cumulative CPU seconds per state (and per CPU when its
	// cpu attribute is enabled); the busy share is derived from its increments.
	MetricCPUTime = "system.cpu.time"
)

// Attribute names of the contrib hostmetricsreceiver (before the semantic conventions).
const (
	attrState      = "state"
	attrDirection  = "direction"
	attrDevice     = "device"
	attrCPU        = "cpu"
	attrMountpoint = "mountpoint"
)

// Totals are a host's cumulative byte and operation counts, summed from the increments of
// its per-device counters, so counter resets and new devices do not distort differences.
// They are what phaseusage attributes phases from.
type Totals = phaseusage.Totals

// Sample is what one host resource says about the host at its newest point.
type Sample struct {
	// TS is the newest timestamp of the points read.
	TS pcommon.Timestamp

	CPU    float64 // busy share of all CPUs, 0–1
	HasCPU bool

	MemUsed    int64 // bytes in state used
	HasMemUsed bool
	// MemTotal is the sum of the memory states that do not overlap (hostmetrics' slab and
	// inactive states are parts of others).
	MemTotal    int64
	HasMemTotal bool
	MemUtil     float64 // used share of memory, 0–1
	HasMemUtil  bool

	FSUtil    float64 // the fullest filesystem's used share, 0–1
	FSMount   string  // its mountpoint (shares memory with the pdata read)
	HasFSUtil bool

	// Rates per second summed over devices: from the source's own rate gauges
	// (system.network.io.rate, system.disk.operations.rate) when it sends them, otherwise
	// derived from the increments of the cumulative counters.
	NetRate, OpsRate, DiskRate          [2]float64
	HasNetRate, HasOpsRate, HasDiskRate bool
}

// Bandwidth is the network bytes per second in both directions (the seed's
// network_bandwidth); ok is false when the sample has none.
func (s *Sample) Bandwidth() (float64, bool) {
	return s.NetRate[0] + s.NetRate[1], s.HasNetRate
}

// IOPS is the disk operations per second in both directions (the seed's io_operations).
func (s *Sample) IOPS() (float64, bool) { return s.OpsRate[0] + s.OpsRate[1], s.HasOpsRate }

// Counter kinds.
const (
	kindDisk uint8 = iota
	kindNet
	kindOps
	kindCPU
)

type counterKey struct {
	kind uint8
	dir  uint8
	// device is the device or interface; for CPU time, the cpu (or "").
	device string
	state  string // CPU time's state

}

type counter struct {
	v  float64
	ts pcommon.Timestamp
}

// Host is the state that reading a host's metrics needs between samples: the last value of
// every cumulative counter and the totals summed from their increments. The zero value is
// ready to use. It is not safe for concurrent use.
type Host struct {
	Totals Totals
	// HasDisk, HasNet and HasOps are set once the host sent that kind of counter.
	HasDisk, HasNet, HasOps bool

	counters map[counterKey]counter
}

// Kinds returns which counters the host has sent.
func (h *Host) Kinds() phaseusage.Kinds {
	return phaseusage.Kinds{Disk: h.HasDisk, Net: h.HasNet, Ops: h.HasOps}
}

// Read reads the host metrics of one resource into a sample and adds the increments of its
// cumulative counters to h.Totals. Points without a time count as observed at now.
func (h *Host) Read(rm pmetric.ResourceMetrics, now pcommon.Timestamp) Sample {
	var s Sample
	var r reading
	sms := rm.ScopeMetrics()
	for i := 0; i < sms.Len(); i++ {
		ms := sms.At(i).Metrics()
		for j := 0; j < ms.Len(); j++ {
			m := ms.At(j)
			dps, ok := pdatacontract.NumberPoints(m)
			if !ok || dps.Len() == 0 {
				continue
			}
			h.readMetric(&s, &r, m.Name(), dps, now)
		}
	}
	r.finish(&s)
	return s
}

// reading is what Read gathers over the metrics of one resource before it decides.
type reading struct {
	cpuUtilBusy, cpuUtilAll float64
	cpuUtilCPUs             map[string]struct{}
	cpuUtilOurs             bool // a cpu.mode=busy point (the buildmon receiver's shape)
	hasCPUUtil              bool
	cpuTimeBusy, cpuTimeAll float64
	hasCPUTime              bool

	memUsed, memAll float64
	hasMemUsage     bool

	fsUsed, fsAll map[string]float64 // per device/mountpoint, from system.filesystem.usage

	netRate, opsRate         [2]float64
	hasNetRate, hasOpsRate   bool // from the source's own rate gauges
	netDeriv, opsDeriv       [2]float64
	diskDeriv                [2]float64
	hasNetDeriv, hasOpsDeriv bool
	hasDiskDeriv             bool
}

// busyState reports whether CPU time in a state (cpu.mode) counts as busy: everything but
// idle and waiting for IO, as the buildmon receiver counts it.
func busyState(st string) bool {
	switch st {
	case "idle", "wait", "iowait":
		return false
	}
	return true
}

// str returns the first of the attributes named that the map has.
func str(attrs pcommon.Map, names ...string) string {
	for _, n := range names {
		if v, ok := attrs.Get(n); ok {
			return pdatacontract.String(v)
		}
	}
	return ""
}

func (h *Host) readMetric(s *Sample, r *reading, name string, dps pmetric.NumberDataPointSlice, now pcommon.Timestamp) {
	for k := 0; k < dps.Len(); k++ {
		s.TS = max(s.TS, pdatacontract.Timestamp(dps.At(k), now))
	}
	switch name {
	case schema.MetricCPUUtilization:
		for k := 0; k < dps.Len(); k++ {
			dp := dps.At(k)
			v, ok := pdatacontract.FiniteValue(dp)
			if !ok {
				continue
			}
			mode := str(dp.Attributes(), schema.AttrCPUMode, attrState)
			switch {
			case mode == schema.CPUModeBusy || mode == "":
				// The buildmon receiver's shape: one busy share of all CPUs.
				if !r.cpuUtilOurs || v > r.cpuUtilBusy {
					r.cpuUtilBusy = v
				}
				r.cpuUtilOurs, r.hasCPUUtil = true, true
			case !r.cpuUtilOurs:
				if r.cpuUtilCPUs == nil {
					r.cpuUtilCPUs = map[string]struct{}{}
				}
				r.cpuUtilCPUs[str(dp.Attributes(), attrCPU)] = struct{}{}
				if busyState(mode) {
					r.cpuUtilBusy += v
				}
				r.cpuUtilAll += v
				r.hasCPUUtil = true
			}
		}
	case MetricCPUTime:
		for k := 0; k < dps.Len(); k++ {
			dp := dps.At(k)
			mode := str(dp.Attributes(), schema.AttrCPUMode, attrState)
			key := counterKey{kind: kindCPU, device: str(dp.Attributes(), attrCPU), state: mode}
			d, ok := h.increment(key, dp, now)
			if !ok {
				continue
			}
			if busyState(mode) {
				r.cpuTimeBusy += d.v
			}
			r.cpuTimeAll += d.v
			r.hasCPUTime = true
		}
	case schema.MetricMemoryUsage:
		for k := 0; k < dps.Len(); k++ {
			dp := dps.At(k)
			v, ok := pdatacontract.FiniteValue(dp)
			if !ok {
				continue
			}
			switch st := str(dp.Attributes(), schema.AttrMemoryState, attrState); st {
			case schema.MemoryStateUsed:
				s.MemUsed, s.HasMemUsed = int64(v), true
				r.memUsed += v
				r.memAll += v
			case "slab_reclaimable", "slab_unreclaimable", "inactive":
				// Parts of other states (hostmetrics on Linux): counting them would count twice.
			default:
				r.memAll += v
			}
			r.hasMemUsage = true
		}
	case schema.MetricMemoryUtilization:
		for k := 0; k < dps.Len(); k++ {
			dp := dps.At(k)
			if v, ok := pdatacontract.FiniteValue(dp); ok && str(dp.Attributes(), schema.AttrMemoryState, attrState) == schema.MemoryStateUsed {
				s.MemUtil, s.HasMemUtil = v, true
			}
		}
	case schema.MetricFilesystemUtilization:
		for k := 0; k < dps.Len(); k++ {
			dp := dps.At(k)
			if v, ok := pdatacontract.FiniteValue(dp); ok && (!s.HasFSUtil || v > s.FSUtil) {
				s.FSUtil, s.HasFSUtil = v, true
				s.FSMount = str(dp.Attributes(), schema.AttrMountpoint, attrMountpoint)
			}
		}
	case schema.MetricFilesystemUsage:
		for k := 0; k < dps.Len(); k++ {
			dp := dps.At(k)
			v, ok := pdatacontract.FiniteValue(dp)
			if !ok {
				continue
			}
			if r.fsAll == nil {
				r.fsUsed, r.fsAll = map[string]float64{}, map[string]float64{}
			}
			fs := str(dp.Attributes(), schema.AttrMountpoint, attrMountpoint)
			if str(dp.Attributes(), schema.AttrFilesystemState, attrState) == "used" {
				r.fsUsed[fs] += v
			}
			r.fsAll[fs] += v
		}
	case schema.MetricDiskIO:
		h.HasDisk = true
		r.hasDiskDeriv = h.addCounters(kindDisk, dps, now, &h.Totals.Disk, &r.diskDeriv, schema.AttrDiskDirection) || r.hasDiskDeriv
	case schema.MetricNetworkIO:
		h.HasNet = true
		r.hasNetDeriv = h.addCounters(kindNet, dps, now, &h.Totals.Net, &r.netDeriv, schema.AttrNetworkDirection) || r.hasNetDeriv
	case schema.MetricDiskOperations:
		h.HasOps = true
		r.hasOpsDeriv = h.addCounters(kindOps, dps, now, &h.Totals.Ops, &r.opsDeriv, schema.AttrDiskDirection) || r.hasOpsDeriv
	case schema.MetricNetworkIORate:
		r.hasNetRate = addRates(dps, &r.netRate, schema.AttrNetworkDirection) || r.hasNetRate
	case schema.MetricDiskOperationsRate:
		r.hasOpsRate = addRates(dps, &r.opsRate, schema.AttrDiskDirection) || r.hasOpsRate
	}
}

// finish decides the sample's derived figures once every metric of the resource was read.
func (r *reading) finish(s *Sample) {
	switch {
	case r.hasCPUUtil && r.cpuUtilOurs:
		s.CPU, s.HasCPU = r.cpuUtilBusy, true
	case r.hasCPUUtil && r.cpuUtilAll > 0:
		// Per-state shares of each CPU (or of all, averaged): the busy states summed and
		// averaged over the CPUs.
		s.CPU, s.HasCPU = min(1, r.cpuUtilBusy/float64(max(1, len(r.cpuUtilCPUs)))), true
	case r.hasCPUTime && r.cpuTimeAll > 0:
		s.CPU, s.HasCPU = min(1, max(0, r.cpuTimeBusy/r.cpuTimeAll)), true
	}
	if r.hasMemUsage {
		s.MemTotal, s.HasMemTotal = int64(r.memAll), true
	}
	if !s.HasMemUtil && r.hasMemUsage && r.memAll > 0 {
		s.MemUtil, s.HasMemUtil = r.memUsed/r.memAll, true
	}
	if !s.HasFSUtil {
		for fs, all := range r.fsAll {
			if all <= 0 {
				continue
			}
			if u := r.fsUsed[fs] / all; !s.HasFSUtil || u > s.FSUtil {
				s.FSUtil, s.FSMount, s.HasFSUtil = u, fs, true
			}
		}
	}
	switch {
	case r.hasNetRate:
		s.NetRate, s.HasNetRate = r.netRate, true
	case r.hasNetDeriv:
		s.NetRate, s.HasNetRate = r.netDeriv, true
	}
	switch {
	case r.hasOpsRate:
		s.OpsRate, s.HasOpsRate = r.opsRate, true
	case r.hasOpsDeriv:
		s.OpsRate, s.HasOpsRate = r.opsDeriv, true
	}
	s.DiskRate, s.HasDiskRate = r.diskDeriv, r.hasDiskDeriv
}

// direction returns the index of a direction attribute value, or -1.
func direction(v string) int {
	switch v {
	case schema.DiskRead, schema.NetworkTransmit:
		return 0
	case schema.DiskWrite, schema.NetworkReceive:
		return 1
	}
	return -1
}

// increment returns the increase of a cumulative counter since its previous point and the
// seconds between them; ok is false for its first point (which only sets the baseline) and
// for a point not newer than the previous. A value below the previous one is a counter reset
// and counts from zero.
func (h *Host) increment(key counterKey, dp pmetric.NumberDataPoint, now pcommon.Timestamp) (d counter, ok bool) {
	v, fin := pdatacontract.FiniteValue(dp)
	if !fin {
		return d, false
	}
	ts := pdatacontract.Timestamp(dp, now)
	if h.counters == nil {
		h.counters = map[counterKey]counter{}
	}
	prev, seen := h.counters[key]
	if !seen {
		key.device, key.state = strings.Clone(key.device), strings.Clone(key.state)
		h.counters[key] = counter{v: v, ts: ts}
		return d, false
	}
	if ts <= prev.ts {
		return d, false
	}
	h.counters[key] = counter{v: v, ts: ts}
	d = counter{v: v - prev.v, ts: ts - prev.ts}
	if d.v < 0 {
		d.v = v
	}
	return d, true
}

// addCounters adds the increments of cumulative per-device counters to total and their
// rates per second to rate; it returns whether any rate was derived.
func (h *Host) addCounters(kind uint8, dps pmetric.NumberDataPointSlice, now pcommon.Timestamp, total *[2]int64, rate *[2]float64, directionAttr string) bool {
	derived := false
	for k := 0; k < dps.Len(); k++ {
		dp := dps.At(k)
		dir := direction(str(dp.Attributes(), directionAttr, attrDirection))
		if dir < 0 {
			continue
		}
		key := counterKey{kind: kind, dir: uint8(dir), device: str(dp.Attributes(), schema.AttrDevice, schema.AttrInterface, attrDevice)}
		d, ok := h.increment(key, dp, now)
		if !ok {
			continue
		}
		total[dir] += int64(d.v)
		if secs := float64(d.ts) / 1e9; secs > 0 {
			rate[dir] += d.v / secs
			derived = true
		}
	}
	return derived
}

// addRates sums the points of a rate gauge per direction; it returns whether it read any.
func addRates(dps pmetric.NumberDataPointSlice, rate *[2]float64, directionAttr string) bool {
	read := false
	for k := 0; k < dps.Len(); k++ {
		dp := dps.At(k)
		dir := direction(str(dp.Attributes(), directionAttr, attrDirection))
		v, ok := pdatacontract.FiniteValue(dp)
		if dir < 0 || !ok {
			continue
		}
		rate[dir] += v
		read = true
	}
	return read
}
