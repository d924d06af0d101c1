package hostscraper // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper"

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/internal/metadata"
)

// resourcesScraper reads disks, network interfaces and filesystems: the seed's resource
// usage, every 5 s.
type resourcesScraper struct {
	hostBase

	disks, interfaces *counterSet
	// diskNames is scratch space: the disks of a reading in name order (gopsutil returns a
	// map), so that batches keep their shape from one scrape to the next.
	diskNames []string
	// disksAt and interfacesAt are when the counters in disks and interfaces were read.
	disksAt, interfacesAt time.Time
	mounts                *mountTable
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
	}
	s.mounts = newMountTable(s.path, mountpoints, newTypeFilter(cfg.Filesystems.IncludeTypes, cfg.Filesystems.ExcludeTypes))
	return s, nil
}

func (*resourcesScraper) shutdown(context.Context) error { return nil }

func (s *resourcesScraper) scrape(ctx context.Context) (pmetric.Metrics, error) {
	now := s.now()
	s.batch.begin(pcommon.NewTimestampFromTime(now))
	var errs []error
	metrics := &s.mbc.Metrics // what only switched-off metrics need is not read
	if metrics.SystemDiskIo.Enabled || metrics.SystemDiskOperations.Enabled || metrics.SystemDiskOperationsRate.Enabled {
		if err := s.scrapeDisks(ctx, now); err != nil {
			errs = append(errs, err)
		}
	}
	if metrics.SystemNetworkIo.Enabled || metrics.SystemNetworkIoRate.Enabled {
		if err := s.scrapeInterfaces(ctx, now); err != nil {
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
func (s *resourcesScraper) scrapeDisks(ctx context.Context, now time.Time) error {
	counters, err := s.src.diskIOCounters(ctx)
	if err != nil {
		s.disks.discard()
		return fmt.Errorf("reading disk counters: %w", err)
	}
	s.diskNames = s.diskNames[:0]
	for name := range counters {
		s.diskNames = append(s.diskNames, name)
	}
	slices.Sort(s.diskNames)
	elapsed := now.Sub(s.disksAt).Seconds()
	for _, name := range s.diskNames {
		d := counters[name]
		c := ioCounters{readBytes: d.ReadBytes, writeBytes: d.WriteBytes, readOps: d.ReadCount, writeOps: d.WriteCount}
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
func (s *resourcesScraper) scrapeInterfaces(ctx context.Context, now time.Time) error {
	counters, err := s.src.netIOCounters(ctx)
	if err != nil {
		s.interfaces.discard()
		return fmt.Errorf("reading network counters: %w", err)
	}
	elapsed := now.Sub(s.interfacesAt).Seconds()
	for i := range counters {
		n := &counters[i]
		if n.Name == "" {
			continue
		}
		c := ioCounters{readBytes: n.BytesRecv, writeBytes: n.BytesSent}
		e := s.interfaces.lookup(n.Name)
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
	parts, err := s.src.partitions(ctx)
	if err != nil && len(parts) == 0 {
		return fmt.Errorf("reading the mount table: %w", err)
	}
	var errs []error
	if err != nil {
		// Some OSes list what they could and say what they could not (a drive that does
		// not answer).
		errs = append(errs, fmt.Errorf("reading the mount table: %w", err))
	}
	for _, m := range s.mounts.update(parts) {
		if err := ctx.Err(); err != nil {
			// statfs of a hung network filesystem blocks; the rest waits for the next scrape.
			errs = append(errs, fmt.Errorf("filesystems from %s on: %w", m.mountpoint, err))
			break
		}
		u, err := s.src.usage(ctx, m.statPath)
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
