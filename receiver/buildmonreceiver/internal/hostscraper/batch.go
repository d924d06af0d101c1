package hostscraper // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper"

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/internal/metadata"
	"github.com/buildmon/buildmon/internal/pdatacontract"
)

// Why a template: the MetricsBuilder allocates about six objects per data point (a scratch
// point that it moves into the batch, its attributes, its value) and twenty per batch, while
// a host's batches keep their shape from one scrape to the next: the same metrics for the same
// disks, interfaces and filesystems, only values and times differ. Once a batch has the shape
// of the one before, batch keeps a private copy of the builder's output and makes the next
// batches of that shape by copying it and setting the values and the time: a copy allocates
// what the data points need and no more. The builder still makes every batch of a new shape,
// so metric names and units, switched-off metrics and attributes, the resource and its filters
// remain the generated code's business.

// hostMetric is one of the metrics the scrapers record.
type hostMetric uint8

const (
	cpuUtilization hostMetric = iota
	memoryUsage
	memoryUtilization
	diskIo
	diskOperations
	diskOperationsRate
	networkIo
	networkIoRate
	filesystemUsage
	filesystemUtilization
	numHostMetrics
)

// hostMetricNames find the metrics in the builder's output.
var hostMetricNames = [numHostMetrics]string{
	cpuUtilization:        metadata.MetricsInfo.SystemCPUUtilization.Name,
	memoryUsage:           metadata.MetricsInfo.SystemMemoryUsage.Name,
	memoryUtilization:     metadata.MetricsInfo.SystemMemoryUtilization.Name,
	diskIo:                metadata.MetricsInfo.SystemDiskIo.Name,
	diskOperations:        metadata.MetricsInfo.SystemDiskOperations.Name,
	diskOperationsRate:    metadata.MetricsInfo.SystemDiskOperationsRate.Name,
	networkIo:             metadata.MetricsInfo.SystemNetworkIo.Name,
	networkIoRate:         metadata.MetricsInfo.SystemNetworkIoRate.Name,
	filesystemUsage:       metadata.MetricsInfo.SystemFilesystemUsage.Name,
	filesystemUtilization: metadata.MetricsInfo.SystemFilesystemUtilization.Name,
}

// point is one recorded data point. Its metric and attributes, its shape, decide where it goes
// in a batch; its value does not.
type point struct {
	metric hostMetric
	// state is the enumerated attribute: CPU mode, memory or filesystem state, I/O direction.
	state int
	// name is the disk, the interface or the filesystem's device; mountpoint and fstype are
	// the filesystem's.
	name, mountpoint, fstype string
	intValue                 int64
	doubleValue              float64
}

func (p *point) sameShape(q *point) bool {
	return p.metric == q.metric && p.state == q.state && p.name == q.name &&
		p.mountpoint == q.mountpoint && p.fstype == q.fstype
}

// slot is where a point is in the template: its metric, and its index among that metric's
// data points.
type slot struct{ metric, point int }

// batch collects the data points of one scrape and makes them into pmetric.Metrics. A scraper
// owns its batch and uses it from one goroutine at a time.
type batch struct {
	mb       *metadata.MetricsBuilder
	resource metadata.ResourceMetricsOption // made once: the option is a closure

	ts     pcommon.Timestamp
	points []point // of the scrape in progress

	// shape holds the points of the previous batch (their values do not count); repeated is
	// set once two batches in a row had that shape.
	shape    []point
	repeated bool
	// template is a copy of the builder's output for shape, set when each point of the shape
	// is one data point of it; slots[i] is where shape[i] is.
	template    pmetric.Metrics
	hasTemplate bool
	slots       []slot
}

func newBatch(mb *metadata.MetricsBuilder, resource pcommon.Resource) batch {
	return batch{mb: mb, resource: metadata.WithResource(resource)}
}

// begin starts the batch of a scrape at time ts.
func (b *batch) begin(ts pcommon.Timestamp) {
	b.ts = ts
	b.points = b.points[:0]
}

func (b *batch) recordCPUUtilization(v float64, mode metadata.AttributeCPUMode) {
	b.points = append(b.points, point{metric: cpuUtilization, state: int(mode), doubleValue: v})
}

func (b *batch) recordMemoryUsage(v int64, state metadata.AttributeSystemMemoryState) {
	b.points = append(b.points, point{metric: memoryUsage, state: int(state), intValue: v})
}

func (b *batch) recordMemoryUtilization(v float64, state metadata.AttributeSystemMemoryState) {
	b.points = append(b.points, point{metric: memoryUtilization, state: int(state), doubleValue: v})
}

func (b *batch) recordDiskIo(v int64, disk string, dir metadata.AttributeDiskIoDirection) {
	b.points = append(b.points, point{metric: diskIo, state: int(dir), name: disk, intValue: v})
}

func (b *batch) recordDiskOperations(v int64, disk string, dir metadata.AttributeDiskIoDirection) {
	b.points = append(b.points, point{metric: diskOperations, state: int(dir), name: disk, intValue: v})
}

func (b *batch) recordDiskOperationsRate(v float64, disk string, dir metadata.AttributeDiskIoDirection) {
	b.points = append(b.points, point{metric: diskOperationsRate, state: int(dir), name: disk, doubleValue: v})
}

func (b *batch) recordNetworkIo(v int64, iface string, dir metadata.AttributeNetworkIoDirection) {
	b.points = append(b.points, point{metric: networkIo, state: int(dir), name: iface, intValue: v})
}

func (b *batch) recordNetworkIoRate(v float64, iface string, dir metadata.AttributeNetworkIoDirection) {
	b.points = append(b.points, point{metric: networkIoRate, state: int(dir), name: iface, doubleValue: v})
}

func (b *batch) recordFilesystemUsage(v int64, m *mountEntry, state metadata.AttributeSystemFilesystemState) {
	b.points = append(b.points, point{
		metric: filesystemUsage, state: int(state), name: m.device, mountpoint: m.mountpoint, fstype: m.fstype, intValue: v,
	})
}

func (b *batch) recordFilesystemUtilization(v float64, m *mountEntry) {
	b.points = append(b.points, point{
		metric: filesystemUtilization, name: m.device, mountpoint: m.mountpoint, fstype: m.fstype, doubleValue: v,
	})
}

// emit returns the batch's metrics: a copy of the template when the batch has its shape, else
// the builder's.
func (b *batch) emit() pmetric.Metrics {
	if !b.sameShape() {
		b.shape = append(b.shape[:0], b.points...)
		b.repeated, b.hasTemplate, b.template = false, false, pmetric.Metrics{}
		return b.build()
	}
	if b.hasTemplate {
		return b.fromTemplate()
	}
	md := b.build()
	if !b.repeated {
		// The second batch of this shape in a row: a shape that changes at every scrape
		// never costs a copy.
		b.repeated = true
		b.keepTemplate(md)
	}
	return md
}

func (b *batch) sameShape() bool {
	if len(b.points) != len(b.shape) {
		return false
	}
	for i := range b.points {
		if !b.points[i].sameShape(&b.shape[i]) {
			return false
		}
	}
	return true
}

// build records the points with the MetricsBuilder and emits them.
func (b *batch) build() pmetric.Metrics {
	for i := range b.points {
		p := &b.points[i]
		switch p.metric {
		case cpuUtilization:
			b.mb.RecordSystemCPUUtilizationDataPoint(b.ts, p.doubleValue, metadata.AttributeCPUMode(p.state))
		case memoryUsage:
			b.mb.RecordSystemMemoryUsageDataPoint(b.ts, p.intValue, metadata.AttributeSystemMemoryState(p.state))
		case memoryUtilization:
			b.mb.RecordSystemMemoryUtilizationDataPoint(b.ts, p.doubleValue, metadata.AttributeSystemMemoryState(p.state))
		case diskIo:
			b.mb.RecordSystemDiskIoDataPoint(b.ts, p.intValue, p.name, metadata.AttributeDiskIoDirection(p.state))
		case diskOperations:
			b.mb.RecordSystemDiskOperationsDataPoint(b.ts, p.intValue, p.name, metadata.AttributeDiskIoDirection(p.state))
		case diskOperationsRate:
			b.mb.RecordSystemDiskOperationsRateDataPoint(b.ts, p.doubleValue, p.name, metadata.AttributeDiskIoDirection(p.state))
		case networkIo:
			b.mb.RecordSystemNetworkIoDataPoint(b.ts, p.intValue, p.name, metadata.AttributeNetworkIoDirection(p.state))
		case networkIoRate:
			b.mb.RecordSystemNetworkIoRateDataPoint(b.ts, p.doubleValue, p.name, metadata.AttributeNetworkIoDirection(p.state))
		case filesystemUsage:
			b.mb.RecordSystemFilesystemUsageDataPoint(b.ts, p.intValue, p.name, p.mountpoint, p.fstype, metadata.AttributeSystemFilesystemState(p.state))
		case filesystemUtilization:
			b.mb.RecordSystemFilesystemUtilizationDataPoint(b.ts, p.doubleValue, p.name, p.mountpoint, p.fstype)
		}
	}
	return b.mb.Emit(b.resource)
}

// keepTemplate keeps a copy of md, the builder's output for shape, if each point of the shape
// is one data point of it: not when the builder left the resource out (its filters), nor when
// it aggregated points whose attributes are equal once some are switched off. The points of a
// switched-off metric have no data point and get no slot.
func (b *batch) keepTemplate(md pmetric.Metrics) {
	rms := md.ResourceMetrics()
	if rms.Len() != 1 || rms.At(0).ScopeMetrics().Len() != 1 {
		return
	}
	metrics := rms.At(0).ScopeMetrics().At(0).Metrics()
	var at, count [numHostMetrics]int // at is the metric's index + 1, 0 when it is not in md
	for i := range metrics.Len() {
		m := metrics.At(i)
		if _, ok := pdatacontract.NumberPoints(m); !ok {
			return
		}
		found := false
		for k, name := range hostMetricNames {
			if m.Name() == name && at[k] == 0 {
				at[k], found = i+1, true
				break
			}
		}
		if !found {
			return
		}
	}
	b.slots = b.slots[:0]
	for i := range b.shape {
		k := b.shape[i].metric
		b.slots = append(b.slots, slot{metric: at[k] - 1, point: count[k]})
		count[k]++
	}
	for k := range at {
		if at[k] == 0 {
			continue
		}
		if dps, _ := pdatacontract.NumberPoints(metrics.At(at[k] - 1)); dps.Len() != count[k] {
			return
		}
	}
	b.template = pmetric.NewMetrics()
	md.CopyTo(b.template)
	b.hasTemplate = true
}

// fromTemplate makes the batch from a copy of the template.
func (b *batch) fromTemplate() pmetric.Metrics {
	md := pmetric.NewMetrics()
	b.template.CopyTo(md)
	metrics := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i, s := range b.slots {
		if s.metric < 0 {
			continue // switched off
		}
		dps, _ := pdatacontract.NumberPoints(metrics.At(s.metric))
		dp := dps.At(s.point)
		dp.SetTimestamp(b.ts)
		if p := &b.points[i]; dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
			dp.SetIntValue(p.intValue)
		} else {
			dp.SetDoubleValue(p.doubleValue)
		}
	}
	return md
}
