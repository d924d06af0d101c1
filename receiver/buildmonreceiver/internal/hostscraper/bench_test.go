//go:build linux

package hostscraper

import (
	"bytes"
	"context"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/buildmon/buildmon/internal/metadata"
)

// The scrape benchmarks run the scrapers through gopsutil on this machine's /proc with the
// default config, after one scrape that fills the caches and baselines (a scraper runs for
// days: the steady state is what costs). Beside each is its floor: the same counters read by
// hand without gopsutil, pdata or the collector — os.ReadFile of the same files, bytes.Fields,
// the counters picked out, statfs of the mount points the scraper measures. The ratio is what
// gopsutil's parsing (a string per line and per field, the udev and device-mapper files per
// disk, /proc/filesystems) and pdata cost on top of reading the files. Whether that matters
// at the configured intervals is measured on the running distribution (bench item 2, idle
// CPU-s per minute; the receiver README has the numbers of both paths). BenchmarkPdataFloorSystem
// builds the system batch by hand with plain pdata calls from its values
// (TestHandBuiltSystemBatch checks it is byte for byte the scraper's): what pdata alone costs.

func benchScrapers(b *testing.B) (*systemScraper, *resourcesScraper) {
	b.Helper()
	cfg := NewDefaultConfig()
	set := receivertest.NewNopSettings(metadata.Type)
	mbc := metadata.NewDefaultMetricsBuilderConfig()
	src := newGopsutilSource("")
	system := newSystemScraper(newHostBase(&cfg, "bench", mbc, set, src))
	resources, err := newResourcesScraper(newHostBase(&cfg, "bench", mbc, set, src), &cfg)
	if err != nil {
		b.Fatal(err)
	}
	for _, start := range []func() error{
		func() error { return system.start(context.Background(), nil) },
		func() error { return resources.start(context.Background(), nil) },
	} {
		if err := start(); err != nil {
			b.Fatal(err)
		}
	}
	return system, resources
}

func BenchmarkScrapeSystem(b *testing.B) {
	s, _ := benchScrapers(b)
	ctx := context.Background()
	if _, err := s.scrape(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		// In production a second passes between scrapes, so CPU time has moved and the
		// batch holds the CPU point; here scrapes come faster than a clock tick, so the
		// baseline is reset to keep the batch as it is in production.
		s.lastCPU = cpuTimes{}
		if _, err := s.scrape(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProcFloorSystem(b *testing.B) {
	b.ReportAllocs()
	var sink uint64
	for b.Loop() {
		stat, err := os.ReadFile("/proc/stat")
		if err != nil {
			b.Fatal(err)
		}
		line, _, _ := bytes.Cut(stat, []byte{'\n'})
		for _, f := range bytes.Fields(line)[1:] {
			sink += atou(f)
		}
		meminfo, err := os.ReadFile("/proc/meminfo")
		if err != nil {
			b.Fatal(err)
		}
		for line := range bytes.Lines(meminfo) {
			key, rest, _ := bytes.Cut(line, []byte{':'})
			switch string(key) {
			case "MemTotal", "MemFree", "Buffers", "Cached", "SReclaimable":
				sink += atou(bytes.TrimSpace(rest))
			}
		}
	}
	_ = sink
}

// systemBatch is what one system batch holds: its resource, scope and metric metadata, taken
// from a batch the scraper made, and its values.
type systemBatch struct {
	schemaURL, host, scope, version string
	names, descriptions, units      [3]string
	start, ts                       pcommon.Timestamp
	cpu                             float64
	states                          [4]string
	usage                           [4]int64
	utilization                     [4]float64
}

// systemBatchOf reads a system batch of CPU busy, memory usage and utilization by state.
func systemBatchOf(md pmetric.Metrics) (systemBatch, bool) {
	var v systemBatch
	if md.ResourceMetrics().Len() != 1 || md.ResourceMetrics().At(0).ScopeMetrics().Len() != 1 {
		return v, false
	}
	rm := md.ResourceMetrics().At(0)
	sm := rm.ScopeMetrics().At(0)
	host, _ := rm.Resource().Attributes().Get("host.name")
	v.schemaURL, v.host, v.scope, v.version = rm.SchemaUrl(), host.Str(), sm.Scope().Name(), sm.Scope().Version()
	ms := sm.Metrics()
	if ms.Len() != 3 || ms.At(0).Gauge().DataPoints().Len() != 1 ||
		ms.At(1).Sum().DataPoints().Len() != 4 || ms.At(2).Gauge().DataPoints().Len() != 4 {
		return v, false
	}
	for i := range 3 {
		v.names[i], v.descriptions[i], v.units[i] = ms.At(i).Name(), ms.At(i).Description(), ms.At(i).Unit()
	}
	cpu := ms.At(0).Gauge().DataPoints().At(0)
	v.start, v.ts, v.cpu = cpu.StartTimestamp(), cpu.Timestamp(), cpu.DoubleValue()
	for i := range 4 {
		usage, util := ms.At(1).Sum().DataPoints().At(i), ms.At(2).Gauge().DataPoints().At(i)
		state, _ := usage.Attributes().Get("system.memory.state")
		v.states[i], v.usage[i], v.utilization[i] = state.Str(), usage.IntValue(), util.DoubleValue()
	}
	return v, true
}

// handBuilt makes the batch with plain pdata calls, every slice allocated at its final size:
// the fewest allocations pdata needs for it, whoever builds it.
func (v *systemBatch) handBuilt() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.SetSchemaUrl(v.schemaURL)
	rm.Resource().Attributes().PutStr("host.name", v.host)
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(v.scope)
	sm.Scope().SetVersion(v.version)
	ms := sm.Metrics()
	ms.EnsureCapacity(3)
	metric := func(i int) pmetric.Metric {
		m := ms.AppendEmpty()
		m.SetName(v.names[i])
		m.SetDescription(v.descriptions[i])
		m.SetUnit(v.units[i])
		return m
	}
	point := func(dps pmetric.NumberDataPointSlice, key, attr string) pmetric.NumberDataPoint {
		dp := dps.AppendEmpty()
		dp.SetStartTimestamp(v.start)
		dp.SetTimestamp(v.ts)
		dp.Attributes().PutStr(key, attr)
		return dp
	}
	cpu := metric(0).SetEmptyGauge().DataPoints()
	cpu.EnsureCapacity(1)
	point(cpu, "cpu.mode", "busy").SetDoubleValue(v.cpu)
	sum := metric(1).SetEmptySum()
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	usage := sum.DataPoints()
	usage.EnsureCapacity(4)
	for i := range 4 {
		point(usage, "system.memory.state", v.states[i]).SetIntValue(v.usage[i])
	}
	util := metric(2).SetEmptyGauge().DataPoints()
	util.EnsureCapacity(4)
	for i := range 4 {
		point(util, "system.memory.state", v.states[i]).SetDoubleValue(v.utilization[i])
	}
	return md
}

// scrapeSystemBatch starts a system scraper and scrapes until its batch holds the CPU point
// (the first scrape only takes the CPU baseline); it returns that batch and what it holds.
func scrapeSystemBatch(tb testing.TB) (pmetric.Metrics, systemBatch) {
	tb.Helper()
	cfg := NewDefaultConfig()
	s := newSystemScraper(newHostBase(&cfg, "bench", metadata.NewDefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type), newGopsutilSource("")))
	require.NoError(tb, s.start(context.Background(), nil))
	for range 3 {
		s.lastCPU = cpuTimes{} // as if a clock tick had passed since the baseline
		md, err := s.scrape(context.Background())
		require.NoError(tb, err)
		if v, ok := systemBatchOf(md); ok {
			return md, v
		}
	}
	tb.Fatal("the system scraper never emitted a batch with the CPU point and four memory states")
	return pmetric.Metrics{}, systemBatch{}
}

// TestHandBuiltSystemBatch checks that BenchmarkPdataFloorSystem builds exactly the batch
// that the system scraper emits, byte for byte.
func TestHandBuiltSystemBatch(t *testing.T) {
	md, v := scrapeSystemBatch(t)
	var m pmetric.ProtoMarshaler
	want, err := m.MarshalMetrics(md)
	require.NoError(t, err)
	got, err := m.MarshalMetrics(v.handBuilt())
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// BenchmarkPdataFloorSystem builds the system batch by hand from values (handBuilt): what
// pdata alone costs for it, the part of BenchmarkScrapeSystem that no scraper can avoid.
func BenchmarkPdataFloorSystem(b *testing.B) {
	_, v := scrapeSystemBatch(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = v.handBuilt()
	}
}

func BenchmarkScrapeResources(b *testing.B) {
	_, s := benchScrapers(b)
	ctx := context.Background()
	if _, err := s.scrape(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.scrape(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProcFloorResources reads diskstats, net/dev and the mount table, and statfs's the
// mount points that the scraper measures.
func BenchmarkProcFloorResources(b *testing.B) {
	_, s := benchScrapers(b)
	if _, err := s.scrape(context.Background()); err != nil {
		b.Fatal(err)
	}
	var mountpoints []string
	for _, m := range s.mounts.chosen {
		mountpoints = append(mountpoints, m.statPath)
	}
	b.ReportAllocs()
	var sink uint64
	for b.Loop() {
		diskstats, err := os.ReadFile("/proc/diskstats")
		if err != nil {
			b.Fatal(err)
		}
		for line := range bytes.Lines(diskstats) {
			if f := bytes.Fields(line); len(f) >= 10 {
				sink += atou(f[3]) + atou(f[5]) + atou(f[7]) + atou(f[9])
			}
		}
		netdev, err := os.ReadFile("/proc/net/dev")
		if err != nil {
			b.Fatal(err)
		}
		for line := range bytes.Lines(netdev) {
			if _, rest, ok := bytes.Cut(line, []byte{':'}); ok {
				if f := bytes.Fields(rest); len(f) >= 9 {
					sink += atou(f[0]) + atou(f[8])
				}
			}
		}
		mountinfo, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			b.Fatal(err)
		}
		for line := range bytes.Lines(mountinfo) {
			if f := bytes.Fields(line); len(f) >= 5 {
				sink += uint64(len(f[4]))
			}
		}
		for _, m := range mountpoints {
			var st syscall.Statfs_t
			if err := syscall.Statfs(m, &st); err == nil {
				sink += st.Blocks
			}
		}
	}
	_ = sink
}

func atou(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}
