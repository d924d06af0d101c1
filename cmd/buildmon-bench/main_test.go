package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/gobench"
	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/results"
)

const scraperOutput = `pkg: github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper
BenchmarkScrapeSystem-2        	   1000	     90000 ns/op	   8000 B/op	     120 allocs/op
BenchmarkScrapeSystem-2        	   1000	    100000 ns/op	   8000 B/op	     120 allocs/op
BenchmarkScrapeSystem-2        	   1000	    110000 ns/op	   8000 B/op	     120 allocs/op
BenchmarkProcFloorSystem-2     	   5000	     40000 ns/op	   2000 B/op	      30 allocs/op
BenchmarkProcFloorSystem-2     	   5000	     50000 ns/op	   2000 B/op	      30 allocs/op
BenchmarkProcFloorSystem-2     	   5000	     60000 ns/op	   2000 B/op	      30 allocs/op
BenchmarkScrapeResources-2     	   1000	    300000 ns/op	  40000 B/op	     500 allocs/op
`

func TestRowsFrom(t *testing.T) {
	out, err := gobench.Parse(strings.NewReader(scraperOutput))
	require.NoError(t, err)
	measures, missing := rowsFrom(out, suites()[0].rows)

	byKey := map[string]results.Measure{}
	for _, m := range measures {
		byKey[m.Key] = m
	}
	ns := byKey["scrape/system/ns_per_op"]
	assert.Equal(t, 100000.0, ns.Median)
	require.NotNil(t, ns.Ratio)
	assert.InDelta(t, 2.0, *ns.Ratio, 1e-9)
	assert.True(t, *ns.Pass)
	allocs := byKey["scrape/system/allocs_per_op"]
	assert.InDelta(t, 4.0, *allocs.Ratio, 1e-9)
	assert.False(t, *allocs.Pass, "4x the floor's allocations misses <= 3x")
	assert.Nil(t, byKey["scrape/system/bytes_per_op"].Pass, "no target on bytes")

	// Resources ran without its floor: the row is there, without ratio, and the target misses.
	res := byKey["scrape/resources/ns_per_op"]
	assert.Nil(t, res.Ratio)
	assert.False(t, *res.Pass)
	assert.Contains(t, strings.Join(missing, "\n"), "baseline benchmark BenchmarkProcFloorResources (ns/op) not found")
}

func TestRowsFromCustomUnitsAndScale(t *testing.T) {
	out, err := gobench.Parse(strings.NewReader(`BenchmarkMemory10kBuilds/rules=0-2   1   5 ns/op   1600 bytes/build
BenchmarkCheckpoint/builds=100-2   100   2000000 ns/op   52000 B/checkpoint
`))
	require.NoError(t, err)
	var rows []benchRow
	for _, s := range suites() {
		rows = append(rows, s.rows...)
	}
	measures, missing := rowsFrom(out, rows)
	byKey := map[string]results.Measure{}
	for _, m := range measures {
		byKey[m.Key] = m
	}
	assert.Equal(t, 16e6, byKey["processor/memory/rules=0"].Median, "bytes/build x 10,000 builds")
	ck := byKey["checkpoint/builds=100/bytes"]
	assert.Equal(t, 52000.0, ck.Median)
	assert.Contains(t, ck.Note, "B/checkpoint")
	assert.Contains(t, strings.Join(missing, "\n"), "BenchmarkCheckpoint/builds=10000 (ns/op) not found")
}

func TestParseOptions(t *testing.T) {
	t.Setenv("BENCH_COUNT", "3")
	t.Setenv("BENCH_IDLE_SECONDS", "20")
	t.Setenv("BENCH_INGEST_SECONDS", "4")
	t.Setenv("BENCH_ONLY", "go, idle")
	o, err := parseOptions(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 3, o.count)
	assert.Equal(t, 20, o.settings.IdleSeconds)
	assert.Equal(t, 4*time.Second, o.settings.IngestDuration)
	assert.Equal(t, map[string]bool{"go": true, "idle": true}, o.only)
	assert.Equal(t, "1s", o.benchtime)

	t.Setenv("BENCH_ONLY", "")
	t.Setenv("BENCH_IDLE_SECONDS", "5")
	t.Setenv("BENCH_COUNT", "x")
	_, err = parseOptions(nil, io.Discard)
	require.ErrorContains(t, err, "BENCH_COUNT")
	require.ErrorContains(t, err, "BENCH_IDLE_SECONDS")

	t.Setenv("BENCH_COUNT", "")
	t.Setenv("BENCH_IDLE_SECONDS", "")
	_, err = parseOptions([]string{"-only", "everything"}, io.Discard)
	require.ErrorContains(t, err, "unknown part")
	_, err = parseOptions([]string{"-compare", "a.json"}, io.Discard)
	require.ErrorContains(t, err, "two files")
	o, err = parseOptions(nil, io.Discard)
	require.NoError(t, err)
	assert.Len(t, o.only, len(allParts))
}

func TestCompareMode(t *testing.T) {
	dir := t.TempDir()
	old := &results.Report{Date: "d1", Measures: []results.Measure{
		results.New(3, "ingest/single_requests_per_second", "single-event requests/s", "req/s", "higher", []float64{10000, 10100, 9900}),
	}}
	cur := &results.Report{Date: "d2", Measures: []results.Measure{
		results.New(3, "ingest/single_requests_per_second", "single-event requests/s", "req/s", "higher", []float64{20000, 20100, 19900}),
	}}
	oldPath, newPath := filepath.Join(dir, "old.json"), filepath.Join(dir, "new.json")
	require.NoError(t, old.WriteFile(oldPath))
	require.NoError(t, cur.WriteFile(newPath))

	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--compare", oldPath, newPath}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	assert.Regexp(t, `3\s+single-event requests/s\s+10,000 req/s\s+20,000 req/s\s+2\.000\s+\+100\.0%\s+p=0\.\d+\s+`, stdout.String())

	code = run(context.Background(), []string{"-compare", oldPath, filepath.Join(dir, "missing.json")}, &stdout, &stderr)
	assert.Equal(t, 2, code)
}

func TestRunReportsMissingDistribution(t *testing.T) {
	t.Setenv("BENCH_ONLY", "idle")
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-repo", dir, "-out", filepath.Join(dir, "r.json")}, &stdout, &stderr)
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout.String(), "not measured: system: distribution")
	r, err := results.ReadFile(filepath.Join(dir, "r.json"))
	require.NoError(t, err)
	assert.Len(t, r.Errors, 1)
	assert.Positive(t, r.Machine.NumCPU)
	assert.NotEmpty(t, r.Machine.GoVersion)
}

// Item 9 reads the ETA harness's custom units: the error with history against the error
// without, and the bounds as targets on the value.
func TestRowsFromETAAccuracy(t *testing.T) {
	out, err := gobench.Parse(strings.NewReader(`BenchmarkETAAccuracy/shape=fine/history=off-2    1  893337937 ns/op  33.37 median-err-at-50%  5.776 median-err-at-90%  47.02 worst-err-at-50%  7.336 worst-err-at-90%
BenchmarkETAAccuracy/shape=fine/history=on-2     1  831501125 ns/op  2.733 median-err-at-50%  0.5048 median-err-at-90%  10.98 worst-err-at-50%  2.578 worst-err-at-90%
BenchmarkETAAccuracy/shape=coarse/history=off-2  1  491441187 ns/op  34.24 median-err-at-50%  5.776 median-err-at-90%  42.58 worst-err-at-50%  7.336 worst-err-at-90%
BenchmarkETAAccuracy/shape=coarse/history=on-2   1 1623022452 ns/op  7.842 median-err-at-50%  0.5048 median-err-at-90%  27.45 worst-err-at-50%  2.578 worst-err-at-90%
`))
	require.NoError(t, err)
	var rows []benchRow
	for _, s := range suites() {
		if s.pattern == "^BenchmarkETAAccuracy$" {
			rows = s.rows
		}
	}
	require.Len(t, rows, 8)
	measures, missing := rowsFrom(out, rows)
	assert.Empty(t, missing)
	byKey := map[string]results.Measure{}
	for _, m := range measures {
		byKey[m.Key] = m
	}
	fine := byKey["eta/fine/median_error_at_50"]
	assert.InDelta(t, 2.733, fine.Median, 1e-9)
	require.NotNil(t, fine.Ratio)
	assert.InDelta(t, 2.733/33.37, *fine.Ratio, 1e-9)
	assert.True(t, *fine.Pass, "within 15 %")
	assert.False(t, *byKey["eta/coarse/worst_error_at_50"].Pass, "27.45 misses 25 %")
	assert.True(t, *byKey["eta/coarse/worst_error_at_90"].Pass)
}
