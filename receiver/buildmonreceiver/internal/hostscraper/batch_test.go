package hostscraper

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/filter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/buildmon/buildmon/internal/metadata"
	"github.com/buildmon/buildmon/internal/pdatacontract"
)

// newTestBatch is a started batch as a scraper's: host.name h1, a fixed start time.
func newTestBatch(mbc metadata.MetricsBuilderConfig) batch {
	mb := metadata.NewMetricsBuilder(mbc, receivertest.NewNopSettings(metadata.Type), metadata.WithStartTime(1000))
	rb := mb.NewResourceBuilder()
	rb.SetHostName("h1")
	return newBatch(mb, rb.Emit())
}

// recordShape records a batch of one of three shapes, with values that depend on n.
func recordShape(b *batch, shape string, n int) {
	v := int64(n)
	f := float64(n) / 10
	sda := &mountEntry{device: "/dev/sda1", mountpoint: "/", fstype: "ext4"}
	if shape != "no cpu" {
		b.recordCPUUtilization(f, metadata.AttributeCPUModeBusy)
	}
	for _, st := range []metadata.AttributeSystemMemoryState{
		metadata.AttributeSystemMemoryStateUsed, metadata.AttributeSystemMemoryStateFree,
		metadata.AttributeSystemMemoryStateCached, metadata.AttributeSystemMemoryStateBuffered,
	} {
		b.recordMemoryUsage(v+int64(st), st)
		b.recordMemoryUtilization(f+float64(st), st)
	}
	disks := []string{"sda"}
	if shape == "two disks" {
		disks = append(disks, "nvme0n1")
	}
	for i, d := range disks {
		for _, dir := range []metadata.AttributeDiskIoDirection{metadata.AttributeDiskIoDirectionRead, metadata.AttributeDiskIoDirectionWrite} {
			b.recordDiskIo(v*512+int64(i), d, dir)
			b.recordDiskOperations(v+int64(dir), d, dir)
			b.recordDiskOperationsRate(f+float64(i), d, dir)
		}
	}
	b.recordNetworkIo(v*3, "eth0", metadata.AttributeNetworkIoDirectionReceive)
	b.recordNetworkIo(v*4, "eth0", metadata.AttributeNetworkIoDirectionTransmit)
	b.recordNetworkIoRate(f*3, "eth0", metadata.AttributeNetworkIoDirectionReceive)
	b.recordNetworkIoRate(f*4, "eth0", metadata.AttributeNetworkIoDirectionTransmit)
	b.recordFilesystemUsage(v*100, sda, metadata.AttributeSystemFilesystemStateUsed)
	b.recordFilesystemUsage(v*200, sda, metadata.AttributeSystemFilesystemStateFree)
	b.recordFilesystemUsage(50, sda, metadata.AttributeSystemFilesystemStateReserved)
	b.recordFilesystemUtilization(f/100, sda)
}

// TestBatchTemplate runs batches of changing shapes, values and times through a batch and
// through the MetricsBuilder alone: the batches are the same, byte for byte, whether they come
// from the template or the builder.
func TestBatchTemplate(t *testing.T) {
	shapes := []string{"one disk", "one disk", "one disk", "one disk", "two disks", "one disk", "one disk", "one disk", "no cpu", "no cpu", "no cpu"}
	for _, tc := range []struct {
		name   string
		mutate func(*metadata.MetricsBuilderConfig)
		// template is whether repeated shapes come from the template.
		template bool
	}{
		{name: "default", template: true},
		{name: "metrics switched off", template: true, mutate: func(c *metadata.MetricsBuilderConfig) {
			c.Metrics.SystemDiskIo.Enabled = false
			c.Metrics.SystemMemoryUtilization.Enabled = false
		}},
		{name: "host.name switched off", template: true, mutate: func(c *metadata.MetricsBuilderConfig) {
			c.ResourceAttributes.HostName.Enabled = false
		}},
		{name: "attribute switched off, points stay apart", template: true, mutate: func(c *metadata.MetricsBuilderConfig) {
			c.Metrics.SystemNetworkIo.EnabledAttributes = []metadata.SystemNetworkIoMetricAttributeKey{metadata.SystemNetworkIoMetricAttributeKeyNetworkIoDirection}
		}},
		{name: "attribute switched off, points aggregated", template: false, mutate: func(c *metadata.MetricsBuilderConfig) {
			c.Metrics.SystemDiskIo.EnabledAttributes = []metadata.SystemDiskIoMetricAttributeKey{metadata.SystemDiskIoMetricAttributeKeySystemDevice}
			c.Metrics.SystemDiskIo.AggregationStrategy = metadata.AggregationStrategyAvg
		}},
		{name: "resource filtered out", template: false, mutate: func(c *metadata.MetricsBuilderConfig) {
			c.ResourceAttributes.HostName.MetricsExclude = []filter.Config{{Strict: "h1"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mbc := metadata.NewDefaultMetricsBuilderConfig()
			if tc.mutate != nil {
				tc.mutate(&mbc)
			}
			got, want := newTestBatch(mbc), newTestBatch(mbc)
			for n, shape := range shapes {
				ts := pcommon.Timestamp(1e9 * (n + 1))
				got.begin(ts)
				recordShape(&got, shape, n)
				want.begin(ts)
				recordShape(&want, shape, n)

				fromTemplate := got.hasTemplate && got.sameShape()
				assertSameMetrics(t, want.build(), got.emit(), fmt.Sprintf("batch %d (%s)", n, shape))
				// The third batch of a shape in a row is the first from the template.
				third := n >= 2 && shapes[n-2] == shape && shapes[n-1] == shape
				assert.Equal(t, tc.template && third, fromTemplate, "batch %d (%s): from the template", n, shape)
			}
		})
	}
}

// assertSameMetrics compares two batches as sent: same order, values and times.
func assertSameMetrics(t *testing.T, want, got pmetric.Metrics, msg string) {
	t.Helper()
	var m pmetric.JSONMarshaler
	w, err := m.MarshalMetrics(want)
	require.NoError(t, err)
	g, err := m.MarshalMetrics(got)
	require.NoError(t, err)
	assert.JSONEq(t, string(w), string(g), msg)
}

// A batch from the template shares nothing with the template or with the batch before it.
func TestBatchTemplateCopies(t *testing.T) {
	b := newTestBatch(metadata.NewDefaultMetricsBuilderConfig())
	var batches []pmetric.Metrics
	for n := range 4 {
		b.begin(pcommon.Timestamp(n))
		recordShape(&b, "one disk", n)
		batches = append(batches, b.emit())
	}
	require.True(t, b.hasTemplate)
	template := pmetric.NewMetrics()
	b.template.CopyTo(template)
	// A consumer may change what it was sent.
	batches[3].ResourceMetrics().At(0).Resource().Attributes().PutStr("host.name", "changed")
	batches[3].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).SetName("changed")

	b.begin(pcommon.Timestamp(4))
	recordShape(&b, "one disk", 4)
	md := b.emit()
	assert.Equal(t, "h1", md.ResourceMetrics().At(0).Resource().Attributes().AsRaw()["host.name"])
	assertSameMetrics(t, template, b.template, "the template is left as it was")
	for n, md := range batches[:3] {
		for _, m := range md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().All() {
			for _, dp := range numberDataPoints(m).All() {
				assert.Equal(t, pcommon.Timestamp(n), dp.Timestamp(), "batch %d, %s", n, m.Name())
			}
		}
	}
}

// numberDataPoints returns the data points of a sum or a gauge, and none for other types.
func numberDataPoints(m pmetric.Metric) pmetric.NumberDataPointSlice {
	if dps, ok := pdatacontract.NumberPoints(m); ok {
		return dps
	}
	return pmetric.NewNumberDataPointSlice()
}
