package hostmetrics // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostmetrics"

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/net"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/scraper"
	"go.opentelemetry.io/collector/scraper/scrapererror"
	"go.opentelemetry.io/collector/scraper/scraperhelper"

	"github.com/buildmon/buildmon/internal/metadata"
)

// hostScraper reads one group of host metrics. Each group has its own controller, so each
// scraper is used by one goroutine at a time and needs no lock.
type hostScraper struct {
	root     string // root_path, "" for /
	hostname string
	mb       *metadata.MetricsBuilder
	now      func() time.Time
	// usage is disk.UsageWithContext; tests replace it to make filesystem sizes deterministic.
	usage   func(ctx context.Context, path string) (*disk.UsageStat, error)
	disks   matcher
	ifaces  matcher
	mounts  matcher
	fsTypes map[string]bool

	// State between scrapes, for CPU utilisation and rates.
	lastCPU   cpuTimes
	lastTime  time.Time
	lastDisks map[string]ioCounter
	lastNet   map[string]ioCounter
	disksNow  []ioCounter
	netNow    []ioCounter
}

// cpuTimes are the aggregate CPU seconds of all logical CPUs.
type cpuTimes struct{ total, idle float64 }

// ioCounter is a device's or interface's cumulative counters.
type ioCounter struct {
	name                  string
	readBytes, writeBytes uint64 // disks: bytes; interfaces: received/transmitted bytes
	readOps, writeOps     uint64 // disks only
}

func newHostScraper(cfg *Config, mbc metadata.MetricsBuilderConfig, set receiver.Settings) (*hostScraper, error) {
	hostname := cfg.Hostname
	if hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("host.hostname is not set and the host name is unknown: %w", err)
		}
		hostname = h
	}
	s := &hostScraper{
		root: cfg.RootPath, hostname: hostname, mb: metadata.NewMetricsBuilder(mbc, set), now: time.Now,
		usage:     disk.UsageWithContext,
		disks:     compile(cfg.Disks.Include, cfg.Disks.Exclude),
		ifaces:    compile(cfg.Interfaces.Include, cfg.Interfaces.Exclude),
		mounts:    compile(cfg.Filesystems.IncludeMountpoints, cfg.Filesystems.ExcludeMountpoints),
		fsTypes:   map[string]bool{},
		lastDisks: map[string]ioCounter{}, lastNet: map[string]ioCounter{},
	}
	for _, t := range cfg.Filesystems.ExcludeTypes {
		s.fsTypes[t] = true
	}
	return s, nil
}

func (s *hostScraper) path(p string) string { return filepath.Join(s.root+"/", p) }

// hostContext points gopsutil at root_path's proc, sys, etc, dev, run and var.
func (s *hostScraper) hostContext(ctx context.Context) context.Context {
	if s.root == "" {
		return ctx
	}
	return context.WithValue(ctx, common.EnvKey, common.EnvMap{
		common.HostProcEnvKey: s.path("proc"), common.HostSysEnvKey: s.path("sys"),
		common.HostEtcEnvKey: s.path("etc"), common.HostDevEnvKey: s.path("dev"),
		common.HostRunEnvKey: s.path("run"), common.HostVarEnvKey: s.path("var"),
	})
}

func (s *hostScraper) emit() pmetric.Metrics {
	rb := s.mb.NewResourceBuilder()
	rb.SetHostName(s.hostname)
	return s.mb.Emit(metadata.WithResource(rb.Emit()))
}

// scrapeSystem reads CPU and memory.
func (s *hostScraper) scrapeSystem(ctx context.Context) (pmetric.Metrics, error) {
	ctx = s.hostContext(ctx)
	ts := pcommon.NewTimestampFromTime(s.now())
	var errs []error
	// gopsutil reports a missing or unreadable /proc/stat as no CPUs, not as an error.
	if times, err := cpu.TimesWithContext(ctx, false); err != nil || len(times) == 0 {
		errs = append(errs, fmt.Errorf("reading CPU times: %w", cmp.Or(err, errors.New("no data"))))
	} else {
		c := times[0]
		// Guest time is already counted in user and nice.
		t := cpuTimes{
			total: c.User + c.Nice + c.System + c.Idle + c.Iowait + c.Irq + c.Softirq + c.Steal,
			idle:  c.Idle + c.Iowait,
		}
		prev := s.lastCPU // zero on the first scrape: utilisation since boot
		if t.total < prev.total || t.idle < prev.idle {
			prev = cpuTimes{} // counters went back (a new root, a restored VM): measure since boot
		}
		if dt := t.total - prev.total; dt > 0 {
			busy := (dt - (t.idle - prev.idle)) / dt
			s.mb.RecordSystemCPUUtilizationDataPoint(ts, min(max(busy, 0), 1), metadata.AttributeCPUModeBusy)
		}
		s.lastCPU = t
	}
	if vm, err := mem.VirtualMemoryWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("reading memory: %w", err))
	} else if vm.Total > 0 {
		// As hostmetrics does on Linux; gopsutil's Cached already includes SReclaimable.
		used := int64(vm.Total) - int64(vm.Free) - int64(vm.Buffers) - int64(vm.Cached)
		for _, st := range []struct {
			v    int64
			attr metadata.AttributeSystemMemoryState
		}{
			{max(used, 0), metadata.AttributeSystemMemoryStateUsed},
			{int64(vm.Free), metadata.AttributeSystemMemoryStateFree},
			{int64(vm.Cached), metadata.AttributeSystemMemoryStateCached},
			{int64(vm.Buffers), metadata.AttributeSystemMemoryStateBuffered},
		} {
			s.mb.RecordSystemMemoryUsageDataPoint(ts, st.v, st.attr)
			s.mb.RecordSystemMemoryUtilizationDataPoint(ts, float64(st.v)/float64(vm.Total), st.attr)
		}
	}
	return s.emit(), partial(errs)
}

// scrapeResources reads filesystems, disks and network interfaces.
func (s *hostScraper) scrapeResources(ctx context.Context) (pmetric.Metrics, error) {
	ctx = s.hostContext(ctx)
	now := s.now()
	ts := pcommon.NewTimestampFromTime(now)
	elapsed := now.Sub(s.lastTime).Seconds()
	first := s.lastTime.IsZero()
	var errs []error

	if counters, err := disk.IOCountersWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("reading disk counters: %w", err))
	} else {
		s.disksNow = s.disksNow[:0]
		for name, c := range counters {
			if s.disks.match(name) {
				s.disksNow = append(s.disksNow, ioCounter{name: name, readBytes: c.ReadBytes, writeBytes: c.WriteBytes, readOps: c.ReadCount, writeOps: c.WriteCount})
			}
		}
		for _, d := range s.disksNow {
			s.mb.RecordSystemDiskIoDataPoint(ts, int64(d.readBytes), d.name, metadata.AttributeDiskIoDirectionRead)
			s.mb.RecordSystemDiskIoDataPoint(ts, int64(d.writeBytes), d.name, metadata.AttributeDiskIoDirectionWrite)
			s.mb.RecordSystemDiskOperationsDataPoint(ts, int64(d.readOps), d.name, metadata.AttributeDiskIoDirectionRead)
			s.mb.RecordSystemDiskOperationsDataPoint(ts, int64(d.writeOps), d.name, metadata.AttributeDiskIoDirectionWrite)
			if prev, ok := s.lastDisks[d.name]; ok && !first && elapsed > 0 && d.readOps >= prev.readOps && d.writeOps >= prev.writeOps {
				s.mb.RecordSystemDiskOperationsRateDataPoint(ts, float64(d.readOps-prev.readOps)/elapsed, d.name, metadata.AttributeDiskIoDirectionRead)
				s.mb.RecordSystemDiskOperationsRateDataPoint(ts, float64(d.writeOps-prev.writeOps)/elapsed, d.name, metadata.AttributeDiskIoDirectionWrite)
			}
		}
		remember(s.lastDisks, s.disksNow)
	}
	if counters, err := net.IOCountersWithContext(ctx, true); err != nil {
		errs = append(errs, fmt.Errorf("reading network counters: %w", err))
	} else {
		s.netNow = s.netNow[:0]
		for _, c := range counters {
			if s.ifaces.match(c.Name) {
				s.netNow = append(s.netNow, ioCounter{name: c.Name, readBytes: c.BytesRecv, writeBytes: c.BytesSent})
			}
		}
		for _, n := range s.netNow {
			s.mb.RecordSystemNetworkIoDataPoint(ts, int64(n.readBytes), n.name, metadata.AttributeNetworkIoDirectionReceive)
			s.mb.RecordSystemNetworkIoDataPoint(ts, int64(n.writeBytes), n.name, metadata.AttributeNetworkIoDirectionTransmit)
			if prev, ok := s.lastNet[n.name]; ok && !first && elapsed > 0 && n.readBytes >= prev.readBytes && n.writeBytes >= prev.writeBytes {
				s.mb.RecordSystemNetworkIoRateDataPoint(ts, float64(n.readBytes-prev.readBytes)/elapsed, n.name, metadata.AttributeNetworkIoDirectionReceive)
				s.mb.RecordSystemNetworkIoRateDataPoint(ts, float64(n.writeBytes-prev.writeBytes)/elapsed, n.name, metadata.AttributeNetworkIoDirectionTransmit)
			}
		}
		remember(s.lastNet, s.netNow)
	}
	if err := s.scrapeFilesystems(ctx, ts); err != nil {
		errs = append(errs, err)
	}
	s.lastTime = now
	return s.emit(), partial(errs)
}

// partial reports failed reads as a partial scrape error: what was read is still sent, since
// scraperhelper drops a batch returned with any other error.
func partial(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return scrapererror.NewPartialScrapeError(errors.Join(errs...), len(errs))
}

func remember(m map[string]ioCounter, now []ioCounter) {
	clear(m)
	for _, c := range now {
		m[c.name] = c
	}
}

// scrapeFilesystems reads the mount table of root_path's PID 1 and statfs of each selected
// mount point under root_path.
func (s *hostScraper) scrapeFilesystems(ctx context.Context, ts pcommon.Timestamp) error {
	parts, err := disk.PartitionsWithContext(ctx, false)
	if err != nil && len(parts) == 0 {
		return fmt.Errorf("listing filesystems: %w", err)
	}
	seen := make([]string, 0, len(parts))
	var errs []error
	for _, p := range parts {
		if s.fsTypes[p.Fstype] || !s.mounts.match(p.Mountpoint) || slices.Contains(seen, p.Mountpoint) {
			continue
		}
		seen = append(seen, p.Mountpoint)
		u, err := s.usage(ctx, s.path(p.Mountpoint))
		if err != nil {
			errs = append(errs, fmt.Errorf("filesystem %s: %w", p.Mountpoint, err))
			continue
		}
		if u.Total == 0 {
			continue
		}
		reserved := int64(u.Total) - int64(u.Used) - int64(u.Free)
		if reserved < 0 {
			reserved = 0
		}
		s.mb.RecordSystemFilesystemUsageDataPoint(ts, int64(u.Used), p.Device, p.Mountpoint, p.Fstype, metadata.AttributeSystemFilesystemStateUsed)
		s.mb.RecordSystemFilesystemUsageDataPoint(ts, int64(u.Free), p.Device, p.Mountpoint, p.Fstype, metadata.AttributeSystemFilesystemStateFree)
		s.mb.RecordSystemFilesystemUsageDataPoint(ts, reserved, p.Device, p.Mountpoint, p.Fstype, metadata.AttributeSystemFilesystemStateReserved)
		s.mb.RecordSystemFilesystemUtilizationDataPoint(ts, float64(u.Used)/float64(u.Total), p.Device, p.Mountpoint, p.Fstype)
	}
	return errors.Join(errs...)
}

// hostReceiver runs the two controllers as one component.
type hostReceiver struct{ controllers []component.Component }

func (h *hostReceiver) Start(ctx context.Context, host component.Host) error {
	for i, c := range h.controllers {
		if err := c.Start(ctx, host); err != nil {
			for _, started := range h.controllers[:i] {
				_ = started.Shutdown(ctx)
			}
			return err
		}
	}
	return nil
}

func (h *hostReceiver) Shutdown(ctx context.Context) error {
	var errs []error
	for _, c := range h.controllers {
		errs = append(errs, c.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// NewReceiver returns a component that scrapes CPU and memory every system.collection_interval
// and filesystems, disks and network every resources.collection_interval into next.
func NewReceiver(cfg *Config, mbc metadata.MetricsBuilderConfig, set receiver.Settings, next consumer.Metrics) (component.Component, error) {
	var controllers []component.Component
	for _, g := range []struct {
		name   string
		ctl    *scraperhelper.ControllerConfig
		scrape func(*hostScraper) scraper.ScrapeMetricsFunc
	}{
		{"system", &cfg.System, func(s *hostScraper) scraper.ScrapeMetricsFunc { return s.scrapeSystem }},
		{"resources", &cfg.Resources, func(s *hostScraper) scraper.ScrapeMetricsFunc { return s.scrapeResources }},
	} {
		hs, err := newHostScraper(cfg, mbc, set)
		if err != nil {
			return nil, err
		}
		sc, err := scraper.NewMetrics(g.scrape(hs))
		if err != nil {
			return nil, err
		}
		ctl, err := scraperhelper.NewMetricsController(g.ctl, set, next, scraperhelper.AddMetricsScraper(component.MustNewType(g.name), sc))
		if err != nil {
			return nil, err
		}
		controllers = append(controllers, ctl)
	}
	return &hostReceiver{controllers: controllers}, nil
}
