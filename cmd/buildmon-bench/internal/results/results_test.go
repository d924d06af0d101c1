package results

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMeasureRatioAndTarget(t *testing.T) {
	m := New(1, "scrape/system/ns", "scrape system CPU time", "ns", "lower", []float64{300, 100, 200}).
		WithBaseline("floor", []float64{50, 100, 70}).
		WithTarget("ratio", "<=", 3)
	assert.Equal(t, 200.0, m.Median)
	require.NotNil(t, m.Baseline)
	assert.Equal(t, 70.0, *m.Baseline)
	require.NotNil(t, m.Ratio)
	assert.InDelta(t, 200.0/70, *m.Ratio, 1e-12)
	require.NotNil(t, m.Pass)
	assert.True(t, *m.Pass, "2.86x <= 3x")

	m = m.WithBaseline("floor", []float64{60})
	m = m.WithTarget("ratio", "<=", 3)
	assert.False(t, *m.Pass, "3.33x > 3x")

	v := New(3, "ingest/single/rps", "single-event requests/s", "req/s", "higher", []float64{25000}).WithTarget("value", ">=", 20000)
	assert.True(t, *v.Pass)
	assert.Nil(t, v.Ratio)
	v = New(3, "ingest/single/rps", "single-event requests/s", "req/s", "higher", []float64{19999}).WithTarget("value", ">=", 20000)
	assert.False(t, *v.Pass)

	// A ratio target without a baseline cannot be met.
	nb := New(4, "k", "n", "", "lower", []float64{1}).WithTarget("ratio", "<=", 1.25)
	assert.False(t, *nb.Pass)
	// No baseline samples: no baseline.
	assert.Nil(t, New(4, "k", "n", "", "lower", []float64{1}).WithBaseline("x", nil).Baseline)
	// A zero baseline gives no ratio.
	assert.Nil(t, New(4, "k", "n", "", "lower", []float64{1}).WithBaseline("x", []float64{0}).Ratio)
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{12345.6, "ns", "12.3 µs"},
		{999, "ns", "999 ns"},
		{1.5e9, "ns", "1.5 s"},
		{2.25e6, "ns", "2.25 ms"},
		{80 << 20, "B", "80 MiB"},
		{1536, "B", "1.5 KiB"},
		{512, "B", "512 B"},
		{3 << 30, "B", "3 GiB"},
		{2048, "B/s", "2 KiB/s"},
		{523456.7, "events/s", "523,457 events/s"},
		{-1234567, "", "-1,234,567"},
		{0.123456, "CPU-s/min", "0.123 CPU-s/min"},
		{0.5, "%", "0.5%"},
		{0, "", "0"},
		{math.NaN(), "ns", "n/a"},
	} {
		assert.Equal(t, tc.want, Format(tc.v, tc.unit), "%v %s", tc.v, tc.unit)
	}
}

func sampleReport() *Report {
	return &Report{
		Date:    "2025-01-01T00:00:00Z",
		Machine: Machine{NumCPU: 2, GoVersion: "go1.26.8", GitRevision: "abc"},
		Measures: []Measure{
			New(1, "scrape/system/ns", "scrape system CPU time", "ns", "lower", []float64{1000, 1100, 900}).
				WithBaseline("floor", []float64{400, 420, 410}).WithTarget("ratio", "<=", 3),
			New(2, "idle/rss", "idle peak RSS", "B", "lower", []float64{100 << 20}).
				WithTarget("value", "<=", 80<<20).WithNote("VmHWM over 60 s"),
			New(7, "e2e/p50", "e2e latency p50", "ns", "lower", []float64{5e6}),
		},
		Errors: []string{"item 5 staleness: exporter missing"},
	}
}

func TestPrintTable(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, sampleReport().PrintTable(&buf))
	out := buf.String()
	lines := strings.Split(out, "\n")
	assert.Regexp(t, `^item\s+measure\s+median\s+baseline\s+ratio\s+target\s+result$`, lines[0])
	assert.Regexp(t, `^1\s+scrape system CPU time\s+1 µs\s+410 ns \(floor\)\s+2\.44x\s+<= 3x\s+pass$`, lines[1])
	assert.Regexp(t, `^2\s+idle peak RSS\s+100 MiB\s+-\s+-\s+<= 80 MiB\s+MISS$`, lines[2])
	assert.Regexp(t, `^7\s+e2e latency p50\s+5 ms\s+-\s+-\s+-\s+-$`, lines[3])
	assert.Contains(t, out, "[2] idle peak RSS: VmHWM over 60 s")
	assert.Contains(t, out, "not measured: item 5 staleness: exporter missing")
	require.Len(t, sampleReport().Misses(), 1)
	assert.Equal(t, "idle/rss", sampleReport().Misses()[0].Key)
}

func TestJSONRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.json")
	r := sampleReport()
	require.NoError(t, r.WriteFile(path))
	got, err := ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, r, got)

	_, err = ReadFile(filepath.Join(t.TempDir(), "missing.json"))
	require.Error(t, err)
}

func TestCompare(t *testing.T) {
	old := &Report{Measures: []Measure{
		New(1, "a", "faster", "ns", "lower", []float64{100, 101, 102, 99, 100}),
		New(1, "b", "noise", "ns", "lower", []float64{100, 110, 90, 105, 95}),
		New(3, "c", "throughput", "req/s", "higher", []float64{1000}),
		New(3, "d", "flat", "req/s", "higher", []float64{1000}),
		New(6, "gone", "gone", "B", "lower", []float64{1}),
	}}
	cur := &Report{Measures: []Measure{
		New(1, "a", "faster", "ns", "lower", []float64{50, 51, 52, 49, 50}),
		New(1, "b", "noise", "ns", "lower", []float64{101, 109, 91, 104, 96}),
		New(3, "c", "throughput", "req/s", "higher", []float64{800}),
		New(3, "d", "flat", "req/s", "higher", []float64{1020}),
		New(7, "new", "new", "ns", "lower", []float64{1}),
	}}
	deltas, onlyOld, onlyNew := Compare(old, cur)
	require.Len(t, deltas, 4)
	assert.Equal(t, []string{"gone"}, onlyOld)
	assert.Equal(t, []string{"new"}, onlyNew)

	assert.InDelta(t, 0.5, deltas[0].Ratio, 0.001)
	assert.Less(t, deltas[0].P, 0.05)
	assert.Equal(t, "better", deltas[0].Verdict)
	assert.Greater(t, deltas[1].P, 0.05)
	assert.Equal(t, "~", deltas[1].Verdict)
	assert.True(t, math.IsNaN(deltas[2].P))
	assert.Equal(t, "worse", deltas[2].Verdict, "20% less throughput")
	assert.Equal(t, "~", deltas[3].Verdict, "2% apart without samples to test")

	var buf bytes.Buffer
	require.NoError(t, PrintCompare(&buf, old, cur))
	out := buf.String()
	assert.Regexp(t, `1\s+faster\s+100 ns\s+50 ns\s+0\.500\s+-50\.0%\s+p=0\.01\d\s+better`, out)
	assert.Regexp(t, `3\s+throughput\s+1,000 req/s\s+800 req/s\s+0\.800\s+-20\.0%\s+worse`, out)
	assert.Contains(t, out, "only in old: gone")
	assert.Contains(t, out, "only in new: new")
}
