package hostscraper

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

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
		{"", "/proc/stat", "/proc/stat"},
		{"/", "/proc/stat", "/proc/stat"},
		{"/hostfs", "/proc/stat", "/hostfs/proc/stat"},
		{"/hostfs/", "/proc/1/mountinfo", "/hostfs/proc/1/mountinfo"},
		{"/hostfs", "/work dir", "/hostfs/work dir"},
	}
	for _, tt := range tests {
		b := hostBase{root: tt.root}
		assert.Equal(t, tt.want, b.path(tt.p), "root %q, path %q", tt.root, tt.p)
	}
}

func newTestBase(t *testing.T, root string) hostBase {
	t.Helper()
	cfg := NewDefaultConfig()
	cfg.RootPath = root
	return newHostBase(&cfg, "h1", metadata.NewDefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type))
}

// The boot time comes from the btime line of the root's /proc/stat.
func TestHostBaseBootTime(t *testing.T) {
	b := newTestBase(t, fakeRoot(t))
	boot, err := b.bootTime()
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join("testdata", "root", "proc", "stat"))
	require.NoError(t, err)
	sec, err := parseBootTime(data)
	require.NoError(t, err)
	assert.Equal(t, time.Unix(sec, 0), boot)

	empty := newTestBase(t, t.TempDir())
	_, err = empty.bootTime()
	assert.ErrorIs(t, err, os.ErrNotExist, "no /proc/stat under the root")

	root := fakeRoot(t)
	writeProc(t, root, "stat", "cpu 1 2 3 4\n")
	noBtime := newTestBase(t, root)
	_, err = noBtime.bootTime()
	assert.EqualError(t, err, "/proc/stat has no btime line")
}

// Cumulative host metrics start at boot; without a boot time they still start, with the
// builder's own start time, and the scraper works.
func TestHostBaseStartTime(t *testing.T) {
	ts := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), nil)
	boot, err := ts.resources.bootTime()
	require.NoError(t, err)
	ts.advance(5 * time.Second)
	_ = ts.scrapeResources(t)
	ts.advance(5 * time.Second)
	md := ts.scrapeResources(t)
	found := false
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if m.Name() != "system.disk.io" {
					continue
				}
				for _, dp := range m.Sum().DataPoints().All() {
					found = true
					assert.Equal(t, boot.UTC(), dp.StartTimestamp().AsTime().UTC())
				}
			}
		}
	}
	assert.True(t, found, "system.disk.io points")

	b := newTestBase(t, t.TempDir())
	require.NoError(t, b.start(context.Background(), nil), "no boot time is logged, not fatal")
}

func TestPartial(t *testing.T) {
	assert.NoError(t, partial(nil))
	assert.NoError(t, partial([]error{}))

	errA, errB := errors.New("reading /proc/diskstats"), errors.New("statfs /data")
	err := partial([]error{errA, errB})
	var pe scrapererror.PartialScrapeError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 2, pe.Failed)
	assert.Equal(t, "reading /proc/diskstats\nstatfs /data", err.Error(), "every failed read is reported")
	assert.True(t, scrapererror.IsPartialScrapeError(err))
}

func TestCutLine(t *testing.T) {
	tests := []struct {
		in, line, rest string
	}{
		{"", "", ""},
		{"a", "a", ""},
		{"a\n", "a", ""},
		{"a\nb\n", "a", "b\n"},
		{"\nb", "", "b"},
		{"a\r\nb", "a\r", "b"},
	}
	for _, tt := range tests {
		line, rest := cutLine([]byte(tt.in))
		assert.Equal(t, tt.line, string(line), "%q", tt.in)
		assert.Equal(t, tt.rest, string(rest), "%q", tt.in)
	}
}

// meminfo values without a unit are bytes; lines without a colon and unknown keys are
// skipped; a key's last line wins.
func TestParseMemInfoUnitsAndNoise(t *testing.T) {
	m, err := parseMemInfo([]byte("garbage line\nMemTotal: 2048\nMemFree:\t512 kB\nUnknown: x\nCached: 1 kB\nCached: 2 kB\n"))
	require.NoError(t, err)
	assert.Equal(t, memInfo{total: 2048, free: 512 << 10, cached: 2 << 10}, m)

	_, err = parseMemInfo([]byte("MemTotal: 0 kB\n"))
	assert.EqualError(t, err, "/proc/meminfo has no MemTotal", "a zero total is no total")
	_, err = parseMemInfo([]byte("MemTotal: 100 kB\nBuffers: -1 kB\n"))
	assert.EqualError(t, err, `/proc/meminfo: Buffers: invalid number "-1"`)
}

func TestParseBootTimeBounds(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"btime 0\n", 0, ""},
		{"btime   1767225600  \n", 1767225600, ""},
		{"intr 1 2\nbtime 4611686018427387903", 1<<62 - 1, ""},
		{"btime 4611686018427387904\n", 0, `/proc/stat: invalid btime "4611686018427387904"`},
		{"btime -5\n", 0, `/proc/stat: invalid btime "-5"`},
		{"xbtime 5\n", 0, "/proc/stat has no btime line"},
		{"", 0, "/proc/stat has no btime line"},
	}
	for _, tt := range tests {
		got, err := parseBootTime([]byte(tt.in))
		if tt.err != "" {
			assert.EqualError(t, err, tt.err, "%q", tt.in)
			continue
		}
		require.NoError(t, err, "%q", tt.in)
		assert.Equal(t, tt.want, got, "%q", tt.in)
	}
}

// Two scrapes at the same instant (or a clock that went back) give counters but no rates:
// never a division by zero or a negative interval.
func TestScrapeRatesNeedTimeToPass(t *testing.T) {
	ts := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), nil)
	writeProc(t, ts.root, "diskstats", "   8 0 sda 100 0 0 0 100 0 0 0 0 0 0\n")
	ts.scrapeResources(t)
	writeProc(t, ts.root, "diskstats", "   8 0 sda 200 0 0 0 100 0 0 0 0 0 0\n")
	p := points(ts.scrapeResources(t))
	assert.Empty(t, p["system.disk.operations.rate"], "no time passed")
	assert.Equal(t, map[string]float64{"sda/read": 200, "sda/write": 100}, p["system.disk.operations"])

	ts.advance(-time.Second)
	writeProc(t, ts.root, "diskstats", "   8 0 sda 300 0 0 0 100 0 0 0 0 0 0\n")
	p = points(ts.scrapeResources(t))
	assert.Empty(t, p["system.disk.operations.rate"], "the clock went back")

	ts.advance(2 * time.Second)
	writeProc(t, ts.root, "diskstats", "   8 0 sda 500 0 0 0 100 0 0 0 0 0 0\n")
	p = points(ts.scrapeResources(t))
	assert.Equal(t, map[string]float64{"sda/read": 100, "sda/write": 0}, p["system.disk.operations.rate"])
}

// Malformed lines and devices the filters exclude leave no points; the others are read.
func TestScrapeSkipsMalformedAndExcluded(t *testing.T) {
	ts := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), func(c *Config) {
		c.Disks = MatchConfig{Exclude: []string{"^loop"}}
		c.Interfaces = MatchConfig{Exclude: []string{"^lo$"}}
	})
	writeProc(t, ts.root, "diskstats", "garbage\n   7 0 loop0 1 0 2 0 1 0 2 0 0 0 0\n   8 0 sda 1 0 2 0 1 0 2 0 0 0 0\n   8 1 sdb x 0 2 0 1 0 2 0 0 0 0\n")
	writeProc(t, ts.root, "net/dev", "Inter-|\n face |\n    lo: 1 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0\n  eth0: 7 0 0 0 0 0 0 0 9 0 0 0 0 0 0 0\n  bad line\n")
	p := points(ts.scrapeResources(t))
	assert.Equal(t, map[string]float64{"sda/read": 1024, "sda/write": 1024}, p["system.disk.io"])
	assert.Equal(t, map[string]float64{"eth0/receive": 7, "eth0/transmit": 9}, p["system.network.io"])
}

// The four memory states add up to the total, and used never goes below zero when the
// kernel's counters overlap (free + buffers + cached above the total).
func TestScrapeMemoryStates(t *testing.T) {
	tests := []struct {
		name    string
		meminfo string
		want    map[string]float64
	}{
		{
			name:    "states add up to the total",
			meminfo: "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 200 kB\nSReclaimable: 50 kB\n",
			want:    map[string]float64{"used": 600 << 10, "free": 100 << 10, "cached": 250 << 10, "buffered": 50 << 10},
		},
		{
			name:    "no slab line",
			meminfo: "MemTotal: 1000 kB\nMemFree: 500 kB\nBuffers: 0 kB\nCached: 100 kB\n",
			want:    map[string]float64{"used": 400 << 10, "free": 500 << 10, "cached": 100 << 10, "buffered": 0},
		},
		{
			name:    "overlapping counters",
			meminfo: "MemTotal: 1000 kB\nMemFree: 900 kB\nBuffers: 100 kB\nCached: 100 kB\n",
			want:    map[string]float64{"used": 0, "free": 900 << 10, "cached": 100 << 10, "buffered": 100 << 10},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestScrapers(t, metadata.NewDefaultMetricsBuilderConfig(), nil)
			writeProc(t, ts.root, "meminfo", tt.meminfo)
			p := points(ts.scrapeSystem(t))
			assert.Equal(t, tt.want, p["system.memory.usage"])
			for state, v := range tt.want {
				assert.InDelta(t, v/(1000<<10), p["system.memory.utilization"][state], 1e-12, state)
			}
		})
	}
}
