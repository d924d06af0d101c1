package hostscraper // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper"

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shirou/gopsutil/v4/disk"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/internal/metadata"
)

// resourcesScraper reads disks, network interfaces and filesystems: the seed's resource
// usage, every 5 s.
type resourcesScraper struct {
	hostBase
	diskstats, netDev procFile
	// mountinfo are the mount tables to read, the first that can be read; see
	// newResourcesScraper.
	mountinfo []procFile

	disks, interfaces *counterSet
	// disksAt and interfacesAt are when the counters in disks and interfaces were read.
	disksAt, interfacesAt time.Time
	mounts                *mountTable
	// usage is gopsutil's statfs; tests replace it to make filesystem sizes deterministic.
	usage func(ctx context.Context, path string) (*disk.UsageStat, error)
}

func newResourcesScraper(base hostBase, cfg *Config) (*resourcesScraper, error) {
	disks, err := newNameFilter("host.disks", cfg.Disks)
	if err != nil {
		return nil, err
	}
	interfaces, err := newNameFilter("host.interfaces", cfg.Interfaces)
	if err != nil {
		return nil, err
	}
	mountpoints, err := newNameFilter("host.filesystems", MatchConfig{
		Include: cfg.Filesystems.IncludeMountpoints, Exclude: cfg.Filesystems.ExcludeMountpoints,
	})
	if err != nil {
		return nil, err
	}
	s := &resourcesScraper{
		hostBase:   base,
		disks:      newCounterSet(disks),
		interfaces: newCounterSet(interfaces),
		usage:      disk.UsageWithContext,
	}
	s.mounts = newMountTable(s.path, mountpoints, newTypeFilter(cfg.Filesystems.IncludeTypes, cfg.Filesystems.ExcludeTypes))
	s.diskstats.path, s.netDev.path = s.path("/proc/diskstats"), s.path("/proc/net/dev")
	// Without root_path the scraper measures the mounts it can see itself. With root_path, the
	// host's / is mounted there and its init's mount table names what lies beneath; a procfs
	// that hides other processes still has the scraper's own.
	s.mountinfo = []procFile{{path: s.path("/proc/self/mountinfo")}}
	if s.root != "" {
		s.mountinfo = []procFile{{path: s.path("/proc/1/mountinfo")}, {path: s.path("/proc/self/mountinfo")}}
	}
	return s, nil
}

func (s *resourcesScraper) shutdown(context.Context) error {
	s.diskstats.close()
	s.netDev.close()
	for i := range s.mountinfo {
		s.mountinfo[i].close()
	}
	return nil
}

func (s *resourcesScraper) scrape(ctx context.Context) (pmetric.Metrics, error) {
	now := s.now()
	s.batch.begin(pcommon.NewTimestampFromTime(now))
	var errs []error
	metrics := &s.mbc.Metrics // a file that only switched-off metrics need is not read
	if metrics.SystemDiskIo.Enabled || metrics.SystemDiskOperations.Enabled || metrics.SystemDiskOperationsRate.Enabled {
		if err := s.scrapeDisks(now); err != nil {
			errs = append(errs, err)
		}
	}
	if metrics.SystemNetworkIo.Enabled || metrics.SystemNetworkIoRate.Enabled {
		if err := s.scrapeInterfaces(now); err != nil {
			errs = append(errs, err)
		}
	}
	if metrics.SystemFilesystemUsage.Enabled || metrics.SystemFilesystemUtilization.Enabled {
		if err := s.scrapeFilesystems(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return s.batch.emit(), partial(errs)
}

// scrapeDisks records each selected disk's bytes and operations since boot, and its
// operations per second since the previous scrape.
func (s *resourcesScraper) scrapeDisks(now time.Time) error {
	data, err := s.diskstats.read(&s.buf)
	if err != nil {
		s.disks.discard()
		return fmt.Errorf("reading disk counters: %w", err)
	}
	elapsed := now.Sub(s.disksAt).Seconds()
	for len(data) > 0 {
		var line []byte
		line, data = cutLine(data)
		name, c, ok := parseDiskstatsLine(line)
		if !ok {
			continue
		}
		e := s.disks.lookup(name)
		if e.keep {
			read, write := metadata.AttributeDiskIoDirectionRead, metadata.AttributeDiskIoDirectionWrite
			s.batch.recordDiskIo(int64(c.readBytes), e.name, read)
			s.batch.recordDiskIo(int64(c.writeBytes), e.name, write)
			s.batch.recordDiskOperations(int64(c.readOps), e.name, read)
			s.batch.recordDiskOperations(int64(c.writeOps), e.name, write)
			if e.hasLast && elapsed > 0 {
				// A counter that went back was reset (the device was re-created): no rate
				// for this interval.
				if c.readOps >= e.last.readOps {
					s.batch.recordDiskOperationsRate(float64(c.readOps-e.last.readOps)/elapsed, e.name, read)
				}
				if c.writeOps >= e.last.writeOps {
					s.batch.recordDiskOperationsRate(float64(c.writeOps-e.last.writeOps)/elapsed, e.name, write)
				}
			}
		}
		e.last, e.hasLast = c, true
		s.disks.store(e)
	}
	s.disks.rotate()
	s.disksAt = now
	return nil
}

// scrapeInterfaces records each selected interface's bytes since boot and its bytes per
// second since the previous scrape.
func (s *resourcesScraper) scrapeInterfaces(now time.Time) error {
	data, err := s.netDev.read(&s.buf)
	if err != nil {
		s.interfaces.discard()
		return fmt.Errorf("reading network counters: %w", err)
	}
	elapsed := now.Sub(s.interfacesAt).Seconds()
	for len(data) > 0 {
		var line []byte
		line, data = cutLine(data)
		name, c, ok := parseNetDevLine(line)
		if !ok {
			continue
		}
		e := s.interfaces.lookup(name)
		if e.keep {
			rx, tx := metadata.AttributeNetworkIoDirectionReceive, metadata.AttributeNetworkIoDirectionTransmit
			s.batch.recordNetworkIo(int64(c.readBytes), e.name, rx)
			s.batch.recordNetworkIo(int64(c.writeBytes), e.name, tx)
			if e.hasLast && elapsed > 0 {
				if c.readBytes >= e.last.readBytes {
					s.batch.recordNetworkIoRate(float64(c.readBytes-e.last.readBytes)/elapsed, e.name, rx)
				}
				if c.writeBytes >= e.last.writeBytes {
					s.batch.recordNetworkIoRate(float64(c.writeBytes-e.last.writeBytes)/elapsed, e.name, tx)
				}
			}
		}
		e.last, e.hasLast = c, true
		s.interfaces.store(e)
	}
	s.interfaces.rotate()
	s.interfacesAt = now
	return nil
}

// scrapeFilesystems records used, free and reserved bytes of each selected filesystem and
// its utilization, used / (used + free) as df shows it: reserved blocks are not available
// to a build, so a filesystem whose free space is gone is full.
func (s *resourcesScraper) scrapeFilesystems(ctx context.Context) error {
	var data []byte
	var err error
	for i := range s.mountinfo {
		if data, err = s.mountinfo[i].read(&s.buf); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("reading the mount table: %w", err)
	}
	var errs []error
	for _, m := range s.mounts.update(data) {
		if err := ctx.Err(); err != nil {
			// statfs of a hung network filesystem blocks; the rest waits for the next scrape.
			errs = append(errs, fmt.Errorf("filesystems from %s on: %w", m.mountpoint, err))
			break
		}
		u, err := s.usage(ctx, m.statPath)
		if err != nil {
			errs = append(errs, fmt.Errorf("filesystem %s: %w", m.mountpoint, err))
			continue
		}
		if u.Total == 0 || u.Used+u.Free == 0 {
			continue // no blocks to speak of (some FUSE and network filesystems)
		}
		reserved := u.Total - min(u.Used+u.Free, u.Total)
		s.batch.recordFilesystemUsage(int64(u.Used), m, metadata.AttributeSystemFilesystemStateUsed)
		s.batch.recordFilesystemUsage(int64(u.Free), m, metadata.AttributeSystemFilesystemStateFree)
		s.batch.recordFilesystemUsage(int64(reserved), m, metadata.AttributeSystemFilesystemStateReserved)
		s.batch.recordFilesystemUtilization(float64(u.Used)/float64(u.Used+u.Free), m)
	}
	return errors.Join(errs...)
}
