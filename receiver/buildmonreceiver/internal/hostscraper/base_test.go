package hostscraper

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/collector/scraper/scrapererror"

	"github.com/buildmon/buildmon/internal/metadata"
)

func TestHostBasePath(t *testing.T) {
	tests := []struct {
		root, p, want string
	}{
		{"", "/", "/"},
		{"", "/work dir", "/work dir"},
		{"", "C:", "C:"}, // a Windows drive as gopsutil names it
		{"/hostfs", "/", "/hostfs"},
		{"/hostfs/", "/data", "/hostfs/data"},
		{"/hostfs", "/work dir", "/hostfs/work dir"},
	}
	for _, tt := range tests {
		b := hostBase{root: tt.root}
		assert.Equal(t, tt.want, b.path(tt.p), "root %q, path %q", tt.root, tt.p)
	}
}

func newTestBase(t *testing.T, src hostSource) hostBase {
	t.Helper()
	cfg := NewDefaultConfig()
	return newHostBase(&cfg, "h1", metadata.NewDefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type), src)
}

func TestHostBaseBootTime(t *testing.T) {
	b := newTestBase(t, linuxSource())
	boot, err := b.bootTime(context.Background())
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), boot.UTC())

	for _, tt := range []struct {
		boot uint64
		err  error
		want string
	}{
		{0, errors.New("no btime"), "reading the boot time: no btime"},
		{0, nil, "invalid boot time 0"},
		{1 << 62, nil, "invalid boot time 4611686018427387904"},
	} {
		src := linuxSource()
		src.boot = tt.boot
		src.errs = map[string]error{"boot": tt.err}
		b := newTestBase(t, src)
		_, err := b.bootTime(context.Background())
		assert.EqualError(t, err, tt.want)
	}
}

// Cumulative host metrics start at boot; without a boot time they still start, with the
// builder's own start time, and the scraper works.
func TestHostBaseStartTime(t *testing.T) {
	ts := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), nil)
	ts.advance(5 * time.Second)
	_ = ts.scrapeResources(t)
	ts.advance(5 * time.Second)
	assertTimestamps(t, ts.scrapeResources(t), ts.now)

	src := linuxSource()
	src.errs = map[string]error{"boot": errors.New("no btime")}
	b := newTestBase(t, src)
	require.NoError(t, b.start(context.Background(), nil), "no boot time is logged, not fatal")
}

func TestPartial(t *testing.T) {
	assert.NoError(t, partial(nil))
	assert.NoError(t, partial([]error{}))

	errA, errB := errors.New("reading disk counters"), errors.New("statfs /data")
	err := partial([]error{errA, errB})
	var pe scrapererror.PartialScrapeError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 2, pe.Failed)
	assert.Equal(t, "reading disk counters\nstatfs /data", err.Error(), "every failed read is reported")
	assert.True(t, scrapererror.IsPartialScrapeError(err))
}

// Two scrapes at the same instant (or a clock that went back) give counters but no rates:
// never a division by zero or a negative interval.
func TestScrapeRatesNeedTimeToPass(t *testing.T) {
	ts := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), nil)
	sda := func(reads uint64) {
		ts.src.disks = map[string]disk.IOCountersStat{"sda": {Name: "sda", ReadCount: reads, WriteCount: 100}}
	}
	sda(100)
	ts.scrapeResources(t)
	sda(200)
	p := points(ts.scrapeResources(t))
	assert.Empty(t, p["system.disk.operations.rate"], "no time passed")
	assert.Equal(t, map[string]float64{"sda/read": 200, "sda/write": 100}, p["system.disk.operations"])

	ts.advance(-time.Second)
	sda(300)
	p = points(ts.scrapeResources(t))
	assert.Empty(t, p["system.disk.operations.rate"], "the clock went back")

	ts.advance(2 * time.Second)
	sda(500)
	p = points(ts.scrapeResources(t))
	assert.Equal(t, map[string]float64{"sda/read": 100, "sda/write": 0}, p["system.disk.operations.rate"])
}

// Devices and interfaces the filters exclude, and nameless interfaces, leave no points.
func TestScrapeSkipsExcluded(t *testing.T) {
	ts := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), func(c *Config) {
		c.Disks = MatchConfig{Exclude: []string{"^loop"}}
		c.Interfaces = MatchConfig{Exclude: []string{"^lo$"}}
	})
	ts.src.disks = map[string]disk.IOCountersStat{
		"loop0": linuxDisk("loop0", 1, 2, 1, 2),
		"sda":   linuxDisk("sda", 1, 2, 1, 2),
	}
	ts.src.nics = ts.src.nics[:0]
	ts.src.nics = append(ts.src.nics, linuxSource().nics[:2]...)
	ts.src.nics[1].BytesRecv, ts.src.nics[1].BytesSent = 7, 9
	ts.src.nics = append(ts.src.nics, ts.src.nics[1])
	ts.src.nics[2].Name = ""
	p := points(ts.scrapeResources(t))
	assert.Equal(t, map[string]float64{"sda/read": 1024, "sda/write": 1024}, p["system.disk.io"])
	assert.Equal(t, map[string]float64{"eth0/receive": 7, "eth0/transmit": 9}, p["system.network.io"])
}
