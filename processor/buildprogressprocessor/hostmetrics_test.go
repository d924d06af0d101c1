package buildprogressprocessor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/internal/schema"
)

// hostmetricsIn is one scrape of the contrib hostmetricsreceiver (v0.160.0) on a host:
// cumulative counters as they stand at `at`.
type hostmetricsIn struct {
	name string
	at   time.Time
	// semconv writes the state and direction attributes under their semantic-convention
	// names (cpu.mode, system.memory.state, disk.io.direction, network.io.direction,
	// system.device, network.interface.name) instead of the receiver's (state, direction,
	// device), as an agent that follows the conventions does.
	semconv bool
	// perCPU adds the opt-in cpu attribute: cpuSeconds are then per CPU (cpu0 and cpu1 each).
	perCPU bool
	// utilization sends system.cpu.utilization (opt-in in hostmetrics) instead of
	// system.cpu.time: cpuBusy is then each CPU's user share and the rest idle.
	utilization bool

	cpuBusy, cpuIdle float64 // system.cpu.time seconds in user and idle (split with system and wait below)
	memUsed, memFree int64
	fsUsed, fsFree   int64
	diskRead         int64 // system.disk.io on sda and nvme0n1 each, read; write is twice that
	diskOps          int64 // system.disk.operations per device, read; write is twice that
	net              int64 // system.network.io on eth0, transmit; receive is three times that
}

// addHostmetrics appends the ResourceMetrics of one hostmetrics scrape: one per scraper, as
// the receiver emits them, each with host.name set by a resource processor.
func addHostmetrics(md pmetric.Metrics, h hostmetricsIn) {
	state, dir, dev, netDir, netDev, memState, fsState, fsMount := "state", "direction", "device", "direction", "device", "state", "state", "mountpoint"
	if h.semconv {
		state, dir, dev, netDir, netDev, memState, fsState, fsMount = schema.AttrCPUMode, schema.AttrDiskDirection, schema.AttrDevice,
			schema.AttrNetworkDirection, schema.AttrInterface, schema.AttrMemoryState, schema.AttrFilesystemState, schema.AttrMountpoint
	}
	scraper := func(name string) pmetric.ScopeMetrics {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr(schema.AttrHostName, h.name)
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName("github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver/internal/scraper/" + name)
		sm.Scope().SetVersion("0.160.0")
		return sm
	}
	cumulative := func(sm pmetric.ScopeMetrics, name, unit string, monotonic bool) pmetric.NumberDataPointSlice {
		s := newMetric(sm, name, unit).SetEmptySum()
		s.SetIsMonotonic(monotonic)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		return s.DataPoints()
	}
	withStart := func(dps pmetric.NumberDataPointSlice) {
		for i := 0; i < dps.Len(); i++ {
			dps.At(i).SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(-time.Hour)))
		}
	}

	cpu := scraper("cpuscraper")
	cpus := []string{""}
	if h.perCPU {
		cpus = []string{"cpu0", "cpu1"}
	}
	if h.utilization {
		dps := newMetric(cpu, schema.MetricCPUUtilization, "1").SetEmptyGauge().DataPoints()
		for _, c := range cpus {
			for _, st := range []struct {
				name string
				v    float64
			}{{"user", h.cpuBusy}, {"idle", 1 - h.cpuBusy}, {"system", 0}, {"wait", 0}} {
				kv := []string{state, st.name}
				if c != "" {
					kv = append(kv, "cpu", c)
				}
				doublePoint(dps, h.at, st.v, kv...)
			}
		}
	} else {
		dps := cumulative(cpu, "system.cpu.time", "s", true)
		for _, c := range cpus {
			for _, st := range []struct {
				name string
				v    float64
			}{{"user", h.cpuBusy * 0.75}, {"system", h.cpuBusy * 0.25}, {"idle", h.cpuIdle * 0.9}, {"wait", h.cpuIdle * 0.1}, {"steal", 0}} {
				kv := []string{state, st.name}
				if c != "" {
					kv = append(kv, "cpu", c)
				}
				doublePoint(dps, h.at, st.v, kv...)
			}
		}
		withStart(dps)
	}

	mem := cumulative(scraper("memoryscraper"), schema.MetricMemoryUsage, "By", false)
	for _, st := range []struct {
		name string
		v    int64
	}{{"used", h.memUsed}, {"free", h.memFree}, {"buffered", 0}, {"cached", 0}, {"slab_reclaimable", 1 << 30}, {"slab_unreclaimable", 1 << 30}} {
		intPoint(mem, h.at, st.v, memState, st.name)
	}

	fs := cumulative(scraper("filesystemscraper"), schema.MetricFilesystemUsage, "By", false)
	for _, st := range []struct {
		name string
		v    int64
	}{{"used", h.fsUsed}, {"free", h.fsFree}, {"reserved", 0}} {
		intPoint(fs, h.at, st.v, "device", "/dev/sda1", "mode", "rw", fsMount, "/", "type", "ext4", fsState, st.name)
	}

	disk := scraper("diskscraper")
	io := cumulative(disk, schema.MetricDiskIO, "By", true)
	ops := cumulative(disk, schema.MetricDiskOperations, "{operations}", true)
	for _, d := range []string{"sda", "nvme0n1"} {
		intPoint(io, h.at, h.diskRead, dev, d, dir, "read")
		intPoint(io, h.at, 2*h.diskRead, dev, d, dir, "write")
		intPoint(ops, h.at, h.diskOps, dev, d, dir, "read")
		intPoint(ops, h.at, 2*h.diskOps, dev, d, dir, "write")
	}
	withStart(io)
	withStart(ops)

	netIO := cumulative(scraper("networkscraper"), schema.MetricNetworkIO, "By", true)
	intPoint(netIO, h.at, h.net, netDev, "eth0", netDir, "transmit")
	intPoint(netIO, h.at, 3*h.net, netDev, "eth0", netDir, "receive")
	withStart(netIO)
}

func hostmetricsBatch(builds []buildIn, hosts ...hostmetricsIn) pmetric.Metrics {
	md := pmetric.NewMetrics()
	for _, b := range builds {
		addBuild(md, b)
	}
	for _, h := range hosts {
		addHostmetrics(md, h)
	}
	return md
}

// TestStandardHostMetrics feeds the processor host metrics shaped exactly as the contrib
// hostmetricsreceiver v0.160.0 emits them (one resource per scraper, cumulative counters,
// old and semantic-convention attribute names, per CPU or summed): every alias reads them,
// a CRITICAL cpu_usage rule pauses the host's build, and the phase's resource report is
// computed from the counters' increments.
func TestStandardHostMetrics(t *testing.T) {
	for _, tc := range []struct {
		name                         string
		semconv, perCPU, utilization bool
	}{
		{name: "cpu time, old attribute names"},
		{name: "cpu time, semantic conventions", semconv: true},
		{name: "cpu time per CPU", perCPU: true},
		{name: "utilization per CPU", perCPU: true, utilization: true},
		{name: "utilization, semantic conventions", utilization: true, semconv: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.PhaseResources.Enabled = true
			cfg.Rules = []RuleConfig{
				{Name: "cpu", Metric: "cpu_usage", Aggregation: "last", Thresholds: ThresholdsConfig{Critical: ptr(0.8)}},
				{Name: "mem", Metric: "memory_usage", Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(0.5)}},
				{Name: "disk", Metric: "disk_usage", Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(0.5)}},
				{Name: "net", Metric: "network_bandwidth", Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(1)}},
				{Name: "iops", Metric: "io_operations", Aggregation: "last", Thresholds: ThresholdsConfig{Warning: ptr(1)}},
			}
			h := newHarness(t, cfg)
			scrape := func(at time.Time, k int64, busy float64) hostmetricsIn {
				return hostmetricsIn{name: "h1", at: at, semconv: tc.semconv, perCPU: tc.perCPU, utilization: tc.utilization,
					cpuBusy: busy, cpuIdle: 1000 + float64(k)*2 - busy,
					memUsed: 3 << 30, memFree: 1 << 30, fsUsed: 60, fsFree: 40,
					diskRead: 1000 * k, diskOps: 10 * k, net: 500 * k}
			}
			// The phase starts with the counters' baselines (and, for utilization, a first
			// sample of the same share).
			first := 0.0
			if tc.utilization {
				first = 0.9
			}
			h.consume(t0, hostmetricsBatch([]buildIn{runningBuild("b-1", "h1", t0, 0)}, scrape(t0, 0, first)))
			// 10 s later: in cpu time, 9 of 10 s busy (with idle 1 s); utilization 0.9.
			at := t0.Add(10 * time.Second)
			busy := 9.0
			if tc.utilization {
				busy = 0.9
			}
			in := scrape(at, 10, busy)
			in.cpuIdle = 1001 // idle+wait grew by 1 s of 10
			if tc.utilization {
				in.cpuIdle = 0
			}
			out := h.consume(at, hostmetricsBatch([]buildIn{runningBuild("b-1", "h1", at, 5)}, in))

			values := derived(t, out, schema.AttrHostName, "h1")[schema.MetricAlertValue]
			value := func(rule string) float64 {
				v, ok := pointValue(t, values, schema.AttrAlertRule, rule)
				require.True(t, ok, "no value for rule %s", rule)
				return v
			}
			assert.InDelta(t, 0.9, value("cpu"), 1e-9, "busy share")
			assert.InDelta(t, 0.75, value("mem"), 1e-9, "used of used+free+buffered+cached")
			assert.InDelta(t, 0.6, value("disk"), 1e-9, "used of used+free+reserved")
			// eth0: 5000 B transmitted and 15000 received in 10 s.
			assert.InDelta(t, 2000, value("net"), 1e-9, "bytes/s both directions")
			// two devices, 100 reads and 200 writes each in 10 s.
			assert.InDelta(t, 60, value("iops"), 1e-9, "operations/s both directions")
			active, ok := activeAlert(t, out, schema.AttrHostName, "h1", "cpu", "CRITICAL", "firing")
			require.True(t, ok)
			assert.Equal(t, 1.0, active)
			assert.Equal(t, int64(1), derived(t, out, schema.AttrRunID, "b-1")[schema.MetricBuildPaused].At(0).IntValue(), "CRITICAL pauses the host's build")

			// The phase ends in the next batch, before that batch's scrape: its report holds
			// the increments from t0 to t0+10s over both devices.
			at2 := t0.Add(20 * time.Second)
			in2 := scrape(at2, 20, 2*busy)
			in2.cpuIdle = 1002
			if tc.utilization {
				in2.cpuBusy, in2.cpuIdle = 0.9, 0
			}
			done := runningBuild("b-1", "h1", at2, 10)
			done.phases[0].state = "completed"
			out = h.consume(at2, hostmetricsBatch([]buildIn{done}, in2))
			got := derived(t, out, schema.AttrRunID, "b-1")
			v := func(metric string, kv ...string) float64 {
				x, ok := pointValue(t, got[metric], append([]string{schema.AttrPhase, "BUILD"}, kv...)...)
				require.True(t, ok, "no %s %v in the phase report", metric, kv)
				return x
			}
			assert.InDelta(t, 0.9, v(schema.MetricPhaseCPUAvg), 1e-9)
			assert.Equal(t, float64(3<<30), v(schema.MetricPhaseMemoryMax))
			assert.Equal(t, 2*10000.0, v(schema.MetricPhaseDiskIO, schema.AttrDiskDirection, "read"))
			assert.Equal(t, 2*20000.0, v(schema.MetricPhaseDiskIO, schema.AttrDiskDirection, "write"))
			assert.Equal(t, 2*100.0, v(schema.MetricPhaseDiskOperations, schema.AttrDiskDirection, "read"))
			assert.Equal(t, 2*200.0, v(schema.MetricPhaseDiskOperations, schema.AttrDiskDirection, "write"))
			assert.Equal(t, 5000.0, v(schema.MetricPhaseNetworkIO, schema.AttrNetworkDirection, "transmit"))
			assert.Equal(t, 15000.0, v(schema.MetricPhaseNetworkIO, schema.AttrNetworkDirection, "receive"))
		})
	}
}
