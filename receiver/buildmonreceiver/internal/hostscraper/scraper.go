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

// hostBase is what both scrapers share: where the host's / is, its name, the source of its
// readings and the MetricsBuilder. Each scraper has its own controller, which calls it from one
// goroutine at a time, so no scraper state needs a lock.
type hostBase struct {
	root     string // root_path; "" is the collector's own view of the host
	hostname string
	mbc      metadata.MetricsBuilderConfig
	set      receiver.Settings
	now      func() time.Time
	src      hostSource

	// batch is made in start: its builder's start time is the host's boot time, since the
	// cumulative counters count from boot.
	batch batch
}

func newHostBase(cfg *Config, hostname string, mbc metadata.MetricsBuilderConfig, set receiver.Settings, src hostSource) hostBase {
	return hostBase{root: cfg.RootPath, hostname: hostname, mbc: mbc, set: set, now: time.Now, src: src}
}

// path returns the path p of the host (a mount point) as the collector reaches it: under
// root_path when one is set, else p itself (a Windows drive such as C: included).
func (b *hostBase) path(p string) string {
	if b.root == "" {
		return p
	}
	return filepath.Join(b.root, p)
}

func (b *hostBase) start(ctx context.Context, _ component.Host) error {
	var opts []metadata.MetricBuilderOption
	if boot, err := b.bootTime(ctx); err != nil {
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

func (b *hostBase) bootTime(ctx context.Context) (time.Time, error) {
	sec, err := b.src.bootTime(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the boot time: %w", err)
	}
	if sec == 0 || sec >= 1<<62 {
		return time.Time{}, fmt.Errorf("invalid boot time %d", sec)
	}
	return time.Unix(int64(sec), 0), nil
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

	// lastCPU holds the CPU times of the previous scrape when hasCPU is set.
	lastCPU cpuTimes
	hasCPU  bool
}

func newSystemScraper(base hostBase) *systemScraper {
	return &systemScraper{hostBase: base}
}

func (*systemScraper) shutdown(context.Context) error { return nil }

func (s *systemScraper) scrape(ctx context.Context) (pmetric.Metrics, error) {
	s.batch.begin(pcommon.NewTimestampFromTime(s.now()))
	var errs []error
	metrics := &s.mbc.Metrics // what only switched-off metrics need is not read
	if metrics.SystemCPUUtilization.Enabled {
		if err := s.scrapeCPU(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if metrics.SystemMemoryUsage.Enabled || metrics.SystemMemoryUtilization.Enabled {
		if err := s.scrapeMemory(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return s.batch.emit(), partial(errs)
}

// scrapeCPU records the busy share of all CPUs since the previous scrape. The first scrape
// only takes the baseline: a share since boot would say little about the build running now.
func (s *systemScraper) scrapeCPU(ctx context.Context) error {
	times, err := s.src.cpuTimes(ctx)
	if err != nil {
		return fmt.Errorf("reading CPU times: %w", err)
	}
	if len(times) == 0 {
		return errors.New("reading CPU times: no CPU")
	}
	t := cpuTimesOf(s.src.goos(), &times[0])
	prev, hadPrev := s.lastCPU, s.hasCPU
	s.lastCPU, s.hasCPU = t, true
	if !hadPrev {
		return nil
	}
	busy, ok := busyShare(prev, t)
	if !ok {
		if t.total == prev.total && t.busy >= prev.busy {
			s.lastCPU = prev // within one clock tick: measure the next scrape from the old baseline
		}
		return nil // else the counters went back (a restored VM): measure from here
	}
	s.batch.recordCPUUtilization(busy, metadata.AttributeCPUModeBusy)
	return nil
}

// scrapeMemory records used, free, cached and buffered memory, which add up to the total
// (memoryStatesOf says what each is on each OS).
func (s *systemScraper) scrapeMemory(ctx context.Context) error {
	m, err := s.src.virtualMemory(ctx)
	if err != nil {
		return fmt.Errorf("reading memory: %w", err)
	}
	if m.Total == 0 {
		return errors.New("reading memory: the total is 0")
	}
	st := memoryStatesOf(s.src.goos(), m)
	total := float64(m.Total)
	for _, p := range [...]struct {
		v     uint64
		state metadata.AttributeSystemMemoryState
	}{
		{st.used, metadata.AttributeSystemMemoryStateUsed},
		{st.free, metadata.AttributeSystemMemoryStateFree},
		{st.cached, metadata.AttributeSystemMemoryStateCached},
		{st.buffered, metadata.AttributeSystemMemoryStateBuffered},
	} {
		s.batch.recordMemoryUsage(int64(p.v), p.state)
		s.batch.recordMemoryUtilization(float64(p.v)/total, p.state)
	}
	return nil
}
