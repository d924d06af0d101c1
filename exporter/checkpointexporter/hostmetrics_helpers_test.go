package checkpointexporter

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	schemametadata "github.com/buildmon/buildmon/internal/metadata"
	"github.com/buildmon/buildmon/internal/schema"
)

// hostCounters are a host's cumulative counters as they stand at one scrape, for each of two
// disks (sda, nvme0n1) and two interfaces (eth0, eth1): a phase's figures are twice the
// increase of each.
type hostCounters struct {
	diskRead, diskWrite int64
	opsRead, opsWrite   int64
	netTx, netRx        int64
}

// hostmetricsScrape is one scrape of the contrib hostmetricsreceiver (v0.160.0): one
// ResourceMetrics per scraper, host.name set by a resource processor, cumulative counters.
type hostmetricsScrape struct {
	name string
	at   time.Time
	// semconv writes the attributes under their semantic-convention names (cpu.mode,
	// system.memory.state, disk.io.direction, system.device, …) instead of hostmetrics' own
	// (state, direction, device).
	semconv bool
	// cpuBusy and cpuIdle are system.cpu.time seconds (of all CPUs) in busy and idle states.
	cpuBusy, cpuIdle float64
	memUsed, memFree int64
	hostCounters
}

func newMetric(sm pmetric.ScopeMetrics, name, unit string) pmetric.Metric {
	m := sm.Metrics().AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	return m
}

func numberPoint(dps pmetric.NumberDataPointSlice, at time.Time, v float64, integer bool, kv ...string) {
	dp := dps.AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
	dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(-time.Hour)))
	if integer {
		dp.SetIntValue(int64(v))
	} else {
		dp.SetDoubleValue(v)
	}
	for i := 0; i < len(kv); i += 2 {
		dp.Attributes().PutStr(kv[i], kv[i+1])
	}
}

func (s hostmetricsScrape) metrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	s.appendTo(md)
	return md
}

func (s hostmetricsScrape) appendTo(md pmetric.Metrics) {
	state, dir, dev, netDir, netDev, memState := "state", "direction", "device", "direction", "device", "state"
	if s.semconv {
		state, dir, dev, netDir, netDev, memState = schema.AttrCPUMode, schema.AttrDiskDirection, schema.AttrDevice,
			schema.AttrNetworkDirection, schema.AttrInterface, schema.AttrMemoryState
	}
	scraper := func(name string) pmetric.ScopeMetrics {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr(schema.AttrHostName, s.name)
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName("github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver/internal/scraper/" + name)
		sm.Scope().SetVersion("0.160.0")
		return sm
	}
	cumulative := func(sm pmetric.ScopeMetrics, name, unit string, monotonic bool) pmetric.NumberDataPointSlice {
		sum := newMetric(sm, name, unit).SetEmptySum()
		sum.SetIsMonotonic(monotonic)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		return sum.DataPoints()
	}
	cpu := cumulative(scraper("cpuscraper"), "system.cpu.time", "s", true)
	for _, c := range []string{"cpu0", "cpu1"} {
		for st, v := range map[string]float64{"user": s.cpuBusy * 0.375, "system": s.cpuBusy * 0.125, "idle": s.cpuIdle * 0.45, "wait": s.cpuIdle * 0.05} {
			numberPoint(cpu, s.at, v, false, state, st, "cpu", c)
		}
	}
	mem := cumulative(scraper("memoryscraper"), schema.MetricMemoryUsage, "By", false)
	for st, v := range map[string]int64{"used": s.memUsed, "free": s.memFree, "buffered": 0, "cached": 0, "slab_reclaimable": 1 << 30} {
		numberPoint(mem, s.at, float64(v), true, memState, st)
	}
	disk := scraper("diskscraper")
	io := cumulative(disk, schema.MetricDiskIO, "By", true)
	ops := cumulative(disk, schema.MetricDiskOperations, "{operations}", true)
	for _, d := range []string{"sda", "nvme0n1"} {
		numberPoint(io, s.at, float64(s.diskRead), true, dev, d, dir, "read")
		numberPoint(io, s.at, float64(s.diskWrite), true, dev, d, dir, "write")
		numberPoint(ops, s.at, float64(s.opsRead), true, dev, d, dir, "read")
		numberPoint(ops, s.at, float64(s.opsWrite), true, dev, d, dir, "write")
	}
	net := cumulative(scraper("networkscraper"), schema.MetricNetworkIO, "By", true)
	for _, d := range []string{"eth0", "eth1"} {
		numberPoint(net, s.at, float64(s.netTx), true, netDev, d, netDir, "transmit")
		numberPoint(net, s.at, float64(s.netRx), true, netDev, d, netDir, "receive")
	}
}

// receiverScrape is one scrape of the buildmon receiver's host scraper: busy CPU share,
// memory by state, and per-device counters with their rates.
type receiverScrape struct {
	name    string
	at      time.Time
	cpu     float64
	memUsed int64
	memFree int64
	hostCounters
}

func (s receiverScrape) metrics() pmetric.Metrics {
	mb := metricsBuilder()
	ts := pcommon.NewTimestampFromTime(s.at)
	mb.RecordSystemCPUUtilizationDataPoint(ts, s.cpu, schemametadata.AttributeCPUModeBusy)
	mb.RecordSystemMemoryUsageDataPoint(ts, s.memUsed, schemametadata.AttributeSystemMemoryStateUsed)
	mb.RecordSystemMemoryUsageDataPoint(ts, s.memFree, schemametadata.AttributeSystemMemoryStateFree)
	total := float64(s.memUsed + s.memFree)
	mb.RecordSystemMemoryUtilizationDataPoint(ts, float64(s.memUsed)/total, schemametadata.AttributeSystemMemoryStateUsed)
	mb.RecordSystemFilesystemUsageDataPoint(ts, 60, "sda1", "/", "ext4", schemametadata.AttributeSystemFilesystemStateUsed)
	mb.RecordSystemFilesystemUsageDataPoint(ts, 40, "sda1", "/", "ext4", schemametadata.AttributeSystemFilesystemStateFree)
	mb.RecordSystemFilesystemUtilizationDataPoint(ts, 0.6, "sda1", "/", "ext4")
	for _, d := range []string{"sda", "nvme0n1"} {
		mb.RecordSystemDiskIoDataPoint(ts, s.diskRead, d, schemametadata.AttributeDiskIoDirectionRead)
		mb.RecordSystemDiskIoDataPoint(ts, s.diskWrite, d, schemametadata.AttributeDiskIoDirectionWrite)
		mb.RecordSystemDiskOperationsDataPoint(ts, s.opsRead, d, schemametadata.AttributeDiskIoDirectionRead)
		mb.RecordSystemDiskOperationsDataPoint(ts, s.opsWrite, d, schemametadata.AttributeDiskIoDirectionWrite)
	}
	for _, d := range []string{"eth0", "eth1"} {
		mb.RecordSystemNetworkIoDataPoint(ts, s.netTx, d, schemametadata.AttributeNetworkIoDirectionTransmit)
		mb.RecordSystemNetworkIoDataPoint(ts, s.netRx, d, schemametadata.AttributeNetworkIoDirectionReceive)
	}
	rb := mb.NewResourceBuilder()
	rb.SetHostName(s.name)
	return mb.Emit(schemametadata.WithResource(rb.Emit()))
}
