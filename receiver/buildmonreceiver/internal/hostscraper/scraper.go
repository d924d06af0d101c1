package hostscraper // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper"

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/scraper/scrapererror"
	"go.uber.org/zap"

	"github.com/buildmon/buildmon/internal/metadata"
)

// hostBase is what both scrapers share: where the host's files are, its name, and the
// MetricsBuilder. Each scraper has its own controller, which calls it from one goroutine at a
// time, so no scraper state needs a lock.
type hostBase struct {
	root     string // root_path; "" is /
	hostname string
	mbc      metadata.MetricsBuilderConfig
	set      receiver.Settings
	now      func() time.Time
	buf      []byte // the content of the proc file read last

	// batch is made in start: its builder's start time is the host's boot time, since the
	// cumulative counters count from boot.
	batch batch
}

func newHostBase(cfg *Config, hostname string, mbc metadata.MetricsBuilderConfig, set receiver.Settings) hostBase {
	return hostBase{root: cfg.RootPath, hostname: hostname, mbc: mbc, set: set, now: time.Now, buf: make([]byte, 0, 8<<10)}
}

// path returns the host's path p (absolute) under root_path.
func (b *hostBase) path(p string) string { return filepath.Join("/", b.root, p) }

func (b *hostBase) start(context.Context, component.Host) error {
	var opts []metadata.MetricBuilderOption
	if boot, err := b.bootTime(); err != nil {
		b.set.Logger.Warn("host boot time unknown; cumulative host metrics start now", zap.Error(err))
	} else {
		opts = append(opts, metadata.WithStartTime(pcommon.NewTimestampFromTime(boot)))
	}
	mb := metadata.NewMetricsBuilder(b.mbc, b.set, opts...)
	rb := mb.NewResourceBuilder()
	rb.SetHostName(b.hostname)
	b.batch = newBatch(mb, rb.Emit())
	return nil
}

func (b *hostBase) bootTime() (time.Time, error) {
	stat := procFile{path: b.path("/proc/stat")}
	defer stat.close()
	data, err := stat.read(&b.buf)
	if err != nil {
		return time.Time{}, err
	}
	sec, err := parseBootTime(data)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(sec, 0), nil
}

// partial reports failed reads as a partial scrape error: scraperhelper still sends what was
// read, while it drops a batch returned with any other error.
func partial(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return scrapererror.NewPartialScrapeError(errors.Join(errs...), len(errs))
}

// systemScraper reads CPU and memory: the seed's system stats, every second.
type systemScraper struct {
	hostBase
	stat, meminfo procFile

	// lastCPU holds the CPU times of the previous scrape when hasCPU is set.
	lastCPU cpuTimes
	hasCPU  bool
}

func newSystemScraper(base hostBase) *systemScraper {
	s := &systemScraper{hostBase: base}
	s.stat.path, s.meminfo.path = s.path("/proc/stat"), s.path("/proc/meminfo")
	return s
}

func (s *systemScraper) shutdown(context.Context) error {
	s.stat.close()
	s.meminfo.close()
	return nil
}

func (s *systemScraper) scrape(context.Context) (pmetric.Metrics, error) {
	s.batch.begin(pcommon.NewTimestampFromTime(s.now()))
	var errs []error
	metrics := &s.mbc.Metrics // a file that only switched-off metrics need is not read
	if metrics.SystemCPUUtilization.Enabled {
		if err := s.scrapeCPU(); err != nil {
			errs = append(errs, err)
		}
	}
	if metrics.SystemMemoryUsage.Enabled || metrics.SystemMemoryUtilization.Enabled {
		if err := s.scrapeMemory(); err != nil {
			errs = append(errs, err)
		}
	}
	return s.batch.emit(), partial(errs)
}

// scrapeCPU records the busy share of all CPUs since the previous scrape. The first scrape
// only takes the baseline: a share since boot would say little about the build running now.
func (s *systemScraper) scrapeCPU() error {
	data, err := s.stat.read(&s.buf)
	if err != nil {
		return fmt.Errorf("reading CPU times: %w", err)
	}
	t, err := parseCPUTimes(data)
	if err != nil {
		return err
	}
	prev, hadPrev := s.lastCPU, s.hasCPU
	s.lastCPU, s.hasCPU = t, true
	switch {
	case !hadPrev:
		return nil
	case t.total < prev.total || t.busy < prev.busy:
		return nil // the counters went back (a restored VM): measure from here
	case t.total == prev.total:
		s.lastCPU = prev // within one clock tick: measure the next scrape from the old baseline
		return nil
	}
	busy := float64(t.busy-prev.busy) / float64(t.total-prev.total)
	s.batch.recordCPUUtilization(min(busy, 1), metadata.AttributeCPUModeBusy)
	return nil
}

// scrapeMemory records used, free, cached and buffered memory, which add up to the total: as
// the contrib hostmetrics receiver does on Linux, cached includes the reclaimable slab and
// used is the rest.
func (s *systemScraper) scrapeMemory() error {
	data, err := s.meminfo.read(&s.buf)
	if err != nil {
		return fmt.Errorf("reading memory: %w", err)
	}
	m, err := parseMemInfo(data)
	if err != nil {
		return err
	}
	cached := m.cached + m.sReclaimable
	used := max(int64(m.total)-int64(m.free)-int64(m.buffers)-int64(cached), 0)
	total := float64(m.total)
	for _, st := range [...]struct {
		v     int64
		state metadata.AttributeSystemMemoryState
	}{
		{used, metadata.AttributeSystemMemoryStateUsed},
		{int64(m.free), metadata.AttributeSystemMemoryStateFree},
		{int64(cached), metadata.AttributeSystemMemoryStateCached},
		{int64(m.buffers), metadata.AttributeSystemMemoryStateBuffered},
	} {
		s.batch.recordMemoryUsage(st.v, st.state)
		s.batch.recordMemoryUtilization(float64(st.v)/total, st.state)
	}
	return nil
}
