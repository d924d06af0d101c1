package gobench

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper
cpu: AMD EPYC
BenchmarkScrapeSystem-2      	   12345	     98765 ns/op	   20480 B/op	     150 allocs/op
BenchmarkScrapeSystem-2      	   12000	    101000 ns/op	   20480 B/op	     151 allocs/op
BenchmarkProcFloorSystem-2   	   50000	     30000 ns/op	    4096 B/op	      20 allocs/op
PASS
ok  	github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper	5.123s
goos: linux
goarch: amd64
pkg: github.com/buildmon/buildmon/exporter/checkpointexporter
cpu: AMD EPYC
BenchmarkCheckpoint/builds=100-2         	    1000	   1234567 ns/op	      52000 bytes/checkpoint	  100 B/op	  3 allocs/op
BenchmarkCheckpoint/builds=10000-2       	      10	 123456789 ns/op	    5200000 bytes/checkpoint	1.5e+06 B/op	  300 allocs/op
BenchmarkLogs-2
some log line from the benchmark
      100	     5000 ns/op	     2.50 MB/s
BenchmarkNoProcs	     100	       7 ns/op
--- FAIL: BenchmarkBroken-2
    broken_test.go:12: boom
FAIL	github.com/buildmon/buildmon/processor/buildprogressprocessor	0.5s
`

func TestParse(t *testing.T) {
	out, err := Parse(strings.NewReader(sample))
	require.NoError(t, err)
	require.Len(t, out.Results, 7)

	first := out.Results[0]
	assert.Equal(t, "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper", first.Pkg)
	assert.Equal(t, "BenchmarkScrapeSystem", first.Name)
	assert.Equal(t, 2, first.Procs)
	assert.Equal(t, int64(12345), first.Iterations)
	assert.Equal(t, map[string]float64{"ns/op": 98765, "B/op": 20480, "allocs/op": 150}, first.Values)

	assert.Equal(t, []float64{98765, 101000}, out.Samples("", "BenchmarkScrapeSystem", "ns/op"))
	assert.Equal(t, []float64{150, 151}, out.Samples(first.Pkg, "BenchmarkScrapeSystem", "allocs/op"))
	assert.Empty(t, out.Samples("other/pkg", "BenchmarkScrapeSystem", "ns/op"))

	ck := out.Samples("github.com/buildmon/buildmon/exporter/checkpointexporter", "BenchmarkCheckpoint/builds=10000", "bytes/checkpoint")
	assert.Equal(t, []float64{5200000}, ck)
	assert.Equal(t, []float64{1.5e6}, out.Samples("", "BenchmarkCheckpoint/builds=10000", "B/op"))

	logs := out.Results[5]
	assert.Equal(t, "BenchmarkLogs", logs.Name)
	assert.Equal(t, 2.5, logs.Values["MB/s"])

	noProcs := out.Results[6]
	assert.Equal(t, "BenchmarkNoProcs", noProcs.Name)
	assert.Equal(t, 1, noProcs.Procs)

	assert.Equal(t, "amd64", out.Config["goarch"])
	assert.Equal(t, "AMD EPYC", out.Config["cpu"])
	assert.Equal(t, []string{"--- FAIL: BenchmarkBroken-2", "FAIL\tgithub.com/buildmon/buildmon/processor/buildprogressprocessor\t0.5s"}, out.Failures)
	assert.Equal(t, []string{"BenchmarkScrapeSystem", "BenchmarkProcFloorSystem", "BenchmarkCheckpoint/builds=100",
		"BenchmarkCheckpoint/builds=10000", "BenchmarkLogs", "BenchmarkNoProcs"}, out.Names())
}

func TestParseSubBenchmarkNamesEndingInDigits(t *testing.T) {
	out, err := Parse(strings.NewReader("BenchmarkX/size-10-2   10   5 ns/op\n"))
	require.NoError(t, err)
	require.Len(t, out.Results, 1)
	assert.Equal(t, "BenchmarkX/size-10", out.Results[0].Name)
	assert.Equal(t, 2, out.Results[0].Procs)
}

func TestParseSkipsMalformedLines(t *testing.T) {
	out, err := Parse(strings.NewReader(strings.Join([]string{
		"BenchmarkA-2  notanumber  5 ns/op",
		"BenchmarkB-2  10  5",
		"BenchmarkC-2  10  x ns/op",
		"Benchmarking is fun: yes",
		"BenchmarkD-2  10  5 ns/op",
	}, "\n")))
	require.NoError(t, err)
	require.Len(t, out.Results, 1)
	assert.Equal(t, "BenchmarkD", out.Results[0].Name)
}
