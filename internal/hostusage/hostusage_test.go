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
