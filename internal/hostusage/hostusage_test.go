package hostusage

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// diskRM is one resource with hostmetrics' system.disk.io of one device.
func diskRM(at time.Time, read, write int64) pmetric.ResourceMetrics {
	rm := pmetric.NewResourceMetrics()
	s := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	s.SetName("system.disk.io")
	sum := s.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for dir, v := range map[string]int64{"read": read, "write": write} {
		dp := sum.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
		dp.SetIntValue(v)
		dp.Attributes().PutStr("device", "sda")
		dp.Attributes().PutStr("direction", dir)
	}
	return rm
}

// TestCounters: the first point of a counter only sets its baseline, later points add their
// increments to the totals and give a rate, a value below the previous one is a reset that
// counts from zero, and a point not newer than the previous is ignored.
func TestCounters(t *testing.T) {
	var h Host
	s := h.Read(diskRM(t0, 1000, 5000), 0)
	assert.False(t, s.HasDiskRate)
	assert.Equal(t, [2]int64{}, h.Totals.Disk)
	assert.True(t, h.HasDisk)

	s = h.Read(diskRM(t0.Add(2*time.Second), 3000, 9000), 0)
	assert.Equal(t, [2]int64{2000, 4000}, h.Totals.Disk)
	assert.Equal(t, [2]float64{1000, 2000}, s.DiskRate)

	s = h.Read(diskRM(t0.Add(2*time.Second), 9e9, 9e9), 0) // same time: ignored
	assert.False(t, s.HasDiskRate)
	assert.Equal(t, [2]int64{2000, 4000}, h.Totals.Disk)

	h.Read(diskRM(t0.Add(4*time.Second), 100, 200), 0) // reset
	assert.Equal(t, [2]int64{2100, 4200}, h.Totals.Disk)
}

// hostmetricsRM is one resource of everything hostmetrics' cpu, memory, disk and network
// scrapers send on a 2-CPU host with two disks and two interfaces, at second i.
func hostmetricsRM(i int) pmetric.ResourceMetrics {
	rm := pmetric.NewResourceMetrics()
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	at := pcommon.NewTimestampFromTime(t0.Add(time.Duration(i) * time.Second))
	sum := func(name string) pmetric.NumberDataPointSlice {
		m := ms.AppendEmpty()
		m.SetName(name)
		s := m.SetEmptySum()
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		return s.DataPoints()
	}
	point := func(dps pmetric.NumberDataPointSlice, v float64, kv ...string) {
		dp := dps.AppendEmpty()
		dp.SetTimestamp(at)
		dp.SetDoubleValue(v)
		for k := 0; k < len(kv); k += 2 {
			dp.Attributes().PutStr(kv[k], kv[k+1])
		}
	}
	cpu := sum("system.cpu.time")
	for _, c := range []string{"cpu0", "cpu1"} {
		for _, st := range []string{"idle", "interrupt", "nice", "softirq", "steal", "system", "user", "wait"} {
			point(cpu, float64(i), "cpu", c, "state", st)
		}
	}
	mem := sum("system.memory.usage")
	for _, st := range []string{"buffered", "cached", "inactive", "free", "slab_reclaimable", "slab_unreclaimable", "used"} {
		point(mem, 1e9, "state", st)
	}
	for _, name := range []string{"system.disk.io", "system.disk.operations"} {
		dps := sum(name)
		for _, d := range []string{"sda", "nvme0n1"} {
			point(dps, float64(i*1000), "device", d, "direction", "read")
			point(dps, float64(i*2000), "device", d, "direction", "write")
		}
	}
	net := sum("system.network.io")
	for _, d := range []string{"eth0", "lo"} {
		point(net, float64(i*1000), "device", d, "direction", "transmit")
		point(net, float64(i*2000), "device", d, "direction", "receive")
	}
	return rm
}

// BenchmarkRead: one hostmetrics scrape of a host normalized into a sample (the processor
// does it for every host resource).
func BenchmarkRead(b *testing.B) {
	rms := make([]pmetric.ResourceMetrics, 64)
	for i := range rms {
		rms[i] = hostmetricsRM(i)
	}
	var h Host
	h.Read(rms[0], 0)
	b.ReportAllocs()
	b.ResetTimer()
	n, base := 0, 0
	for i := 0; i < b.N; i++ {
		n++
		if n == len(rms) {
			b.StopTimer()
			base += len(rms)
			for k := range rms {
				rms[k] = hostmetricsRM(base + k)
			}
			n = 0
			b.StartTimer()
		}
		s := h.Read(rms[n], 0)
		if !s.HasCPU || !s.HasNetRate {
			b.Fatal("no CPU or network in the sample")
		}
	}
}
