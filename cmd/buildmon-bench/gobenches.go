package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/gobench"
	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/results"
)

// benchRow turns the samples of one benchmark unit into a row of the table.
type benchRow struct {
	item   int
	key    string
	name   string
	bench  string   // benchmark name as printed, without -GOMAXPROCS
	units  []string // the unit to read; the first one the benchmark reports is used
	unit   string   // unit of the row (results.Format)
	scale  float64  // multiplies the values (0 = 1)
	better string
	// baseline, when set, is the benchmark measured beside it in the same run, same unit.
	baseline, baselineName string
	target                 *results.Target
}

// benchSuite is one `go test -bench` invocation.
type benchSuite struct {
	pkg       string // relative to the repository root
	pattern   string // -bench
	benchtime string // overrides -benchtime when set
	rows      []benchRow
}

func ratioAtMost(x float64) *results.Target { return &results.Target{On: "ratio", Op: "<=", Limit: x} }

func atMost(x float64) *results.Target { return &results.Target{On: "value", Op: "<=", Limit: x} }

// suites are the Go micro-benchmarks of the hot paths, written in the components' packages.
func suites() []benchSuite {
	const (
		scraper   = "./receiver/buildmonreceiver/internal/hostscraper"
		receiver  = "./receiver/buildmonreceiver"
		processor = "./processor/buildprogressprocessor"
		exporter  = "./exporter/checkpointexporter"
	)
	cpuUnits := []string{"cpu-ns/op", "ns/op"}
	return []benchSuite{
		{pkg: scraper, pattern: "^Benchmark(Scrape|ProcFloor|PdataFloor)(System|Resources)$", rows: []benchRow{
			{item: 1, key: "scrape/system/ns_per_op", name: "host scrape system: time/scrape", bench: "BenchmarkScrapeSystem", units: cpuUnits, unit: "ns", better: "lower",
				baseline: "BenchmarkProcFloorSystem", baselineName: "/proc floor", target: ratioAtMost(3)},
			{item: 1, key: "scrape/system/allocs_per_op", name: "host scrape system: allocs/scrape", bench: "BenchmarkScrapeSystem", units: []string{"allocs/op"}, unit: "allocs", better: "lower",
				baseline: "BenchmarkProcFloorSystem", baselineName: "/proc floor", target: ratioAtMost(3)},
			{item: 1, key: "scrape/system/allocs_vs_pdata", name: "host scrape system: allocs/scrape vs the batch built by hand with pdata", bench: "BenchmarkScrapeSystem", units: []string{"allocs/op"}, unit: "allocs", better: "lower",
				baseline: "BenchmarkPdataFloorSystem", baselineName: "pdata floor"},
			{item: 1, key: "scrape/system/bytes_per_op", name: "host scrape system: bytes/scrape", bench: "BenchmarkScrapeSystem", units: []string{"B/op"}, unit: "B", better: "lower",
				baseline: "BenchmarkProcFloorSystem", baselineName: "/proc floor"},
			{item: 1, key: "scrape/resources/ns_per_op", name: "host scrape resources: time/scrape", bench: "BenchmarkScrapeResources", units: cpuUnits, unit: "ns", better: "lower",
				baseline: "BenchmarkProcFloorResources", baselineName: "/proc floor", target: ratioAtMost(3)},
			{item: 1, key: "scrape/resources/allocs_per_op", name: "host scrape resources: allocs/scrape", bench: "BenchmarkScrapeResources", units: []string{"allocs/op"}, unit: "allocs", better: "lower",
				baseline: "BenchmarkProcFloorResources", baselineName: "/proc floor", target: ratioAtMost(3)},
			{item: 1, key: "scrape/resources/bytes_per_op", name: "host scrape resources: bytes/scrape", bench: "BenchmarkScrapeResources", units: []string{"B/op"}, unit: "B", better: "lower",
				baseline: "BenchmarkProcFloorResources", baselineName: "/proc floor"},
		}},
		{pkg: receiver, pattern: "^Benchmark(Floor)?(SingleEventRequests(WithStorage)?|NDJSONBatch)$", rows: []benchRow{
			{item: 3, key: "receiver/single/requests_per_second", name: "receiver in-process: single-event requests/s", bench: "BenchmarkSingleEventRequests", units: []string{"requests/s"}, unit: "req/s", better: "higher",
				baseline: "BenchmarkFloorSingleEventRequests", baselineName: "floor server"},
			{item: 3, key: "receiver/single_storage/requests_per_second", name: "receiver in-process, with storage: single-event requests/s", bench: "BenchmarkSingleEventRequestsWithStorage", units: []string{"requests/s"}, unit: "req/s", better: "higher",
				baseline: "BenchmarkFloorSingleEventRequests", baselineName: "floor server"},
			{item: 3, key: "receiver/single/allocs_per_op", name: "receiver in-process: allocs/single-event request", bench: "BenchmarkSingleEventRequests", units: []string{"allocs/op"}, unit: "allocs", better: "lower"},
			{item: 3, key: "receiver/batch/events_per_second", name: "receiver in-process: NDJSON events/s", bench: "BenchmarkNDJSONBatch", units: []string{"events/s"}, unit: "events/s", better: "higher",
				baseline: "BenchmarkFloorNDJSONBatch", baselineName: "floor server"},
		}},
		{pkg: processor, pattern: "^BenchmarkProcessor$", rows: []benchRow{
			{item: 4, key: "processor/builds=100/ns_per_op", name: "processor, 100 builds, 10 rules: time/batch", bench: "BenchmarkProcessor/builds=100/rules=10", units: []string{"ns/op"}, unit: "ns", better: "lower",
				baseline: "BenchmarkProcessor/PassThrough/builds=100", baselineName: "pass-through", target: ratioAtMost(1.25)},
			{item: 4, key: "processor/builds=100/datapoints_per_second", name: "processor, 100 builds, 10 rules: data points/s", bench: "BenchmarkProcessor/builds=100/rules=10", units: []string{"datapoints/s"}, unit: "dp/s", better: "higher",
				baseline: "BenchmarkProcessor/PassThrough/builds=100", baselineName: "pass-through"},
			{item: 4, key: "processor/builds=10000/ns_per_op", name: "processor, 10,000 builds, 10 rules: time/batch", bench: "BenchmarkProcessor/builds=10000/rules=10", units: []string{"ns/op"}, unit: "ns", better: "lower",
				baseline: "BenchmarkProcessor/PassThrough/builds=10000", baselineName: "pass-through", target: ratioAtMost(1.25)},
			{item: 4, key: "processor/floor_read_append/builds=100/ns_per_op", name: "read input + append output (Floor), 100 builds: time/batch", bench: "BenchmarkProcessor/Floor/builds=100", units: []string{"ns/op"}, unit: "ns", better: "lower",
				baseline: "BenchmarkProcessor/PassThrough/builds=100", baselineName: "pass-through"},
			{item: 4, key: "processor/floor_read_append/builds=10000/ns_per_op", name: "read input + append output (Floor), 10,000 builds: time/batch", bench: "BenchmarkProcessor/Floor/builds=10000", units: []string{"ns/op"}, unit: "ns", better: "lower",
				baseline: "BenchmarkProcessor/PassThrough/builds=10000", baselineName: "pass-through"},
			{item: 4, key: "processor/vs_floor/builds=10000/ns_per_op", name: "processor vs Floor (its own logic), 10,000 builds", bench: "BenchmarkProcessor/builds=10000/rules=10", units: []string{"ns/op"}, unit: "ns", better: "lower",
				baseline: "BenchmarkProcessor/Floor/builds=10000", baselineName: "Floor"},
			{item: 4, key: "processor/builds=10000/datapoints_per_second", name: "processor, 10,000 builds, 10 rules: data points/s", bench: "BenchmarkProcessor/builds=10000/rules=10", units: []string{"datapoints/s"}, unit: "dp/s", better: "higher",
				baseline: "BenchmarkProcessor/PassThrough/builds=10000", baselineName: "pass-through"},
		}},
		{pkg: processor, pattern: "^BenchmarkMemory10kBuilds$", benchtime: "1x", rows: []benchRow{
			{item: 6, key: "processor/memory/rules=0", name: "processor heap, 10,000 builds, no rules", bench: "BenchmarkMemory10kBuilds/rules=0", units: []string{"bytes/build"}, unit: "B", scale: 10000, better: "lower"},
			{item: 6, key: "processor/memory/rules=10", name: "processor heap, 10,000 builds, 10 rules + phase resources", bench: "BenchmarkMemory10kBuilds/rules=10,phase_resources", units: []string{"bytes/build"}, unit: "B", scale: 10000, better: "lower"},
		}},
		{pkg: processor, pattern: "^BenchmarkETAAccuracy$", benchtime: "1x", rows: []benchRow{
			{item: 9, key: "eta/fine/median_error_at_50", name: "ETA median |error| at 50 % progress, 10 steps per phase, 5 runs of history (% of build duration)", bench: "BenchmarkETAAccuracy/shape=fine/history=on", units: []string{"median-err-at-50%"}, unit: "%", better: "lower",
				baseline: "BenchmarkETAAccuracy/shape=fine/history=off", baselineName: "no history", target: atMost(15)},
			{item: 9, key: "eta/fine/worst_error_at_50", name: "ETA worst |error| at 50 % progress, 10 steps per phase, 5 runs of history (% of build duration)", bench: "BenchmarkETAAccuracy/shape=fine/history=on", units: []string{"worst-err-at-50%"}, unit: "%", better: "lower",
				baseline: "BenchmarkETAAccuracy/shape=fine/history=off", baselineName: "no history", target: atMost(25)},
			{item: 9, key: "eta/fine/median_error_at_90", name: "ETA median |error| at 90 % progress, 10 steps per phase, 5 runs of history (% of build duration)", bench: "BenchmarkETAAccuracy/shape=fine/history=on", units: []string{"median-err-at-90%"}, unit: "%", better: "lower",
				baseline: "BenchmarkETAAccuracy/shape=fine/history=off", baselineName: "no history", target: atMost(5)},
			{item: 9, key: "eta/fine/worst_error_at_90", name: "ETA worst |error| at 90 % progress, 10 steps per phase, 5 runs of history (% of build duration)", bench: "BenchmarkETAAccuracy/shape=fine/history=on", units: []string{"worst-err-at-90%"}, unit: "%", better: "lower",
				baseline: "BenchmarkETAAccuracy/shape=fine/history=off", baselineName: "no history", target: atMost(10)},
			{item: 9, key: "eta/coarse/median_error_at_50", name: "ETA median |error| at 50 % progress, one step per phase, 5 runs of history (% of build duration)", bench: "BenchmarkETAAccuracy/shape=coarse/history=on", units: []string{"median-err-at-50%"}, unit: "%", better: "lower",
				baseline: "BenchmarkETAAccuracy/shape=coarse/history=off", baselineName: "no history", target: atMost(15)},
			{item: 9, key: "eta/coarse/worst_error_at_50", name: "ETA worst |error| at 50 % progress, one step per phase, 5 runs of history (% of build duration)", bench: "BenchmarkETAAccuracy/shape=coarse/history=on", units: []string{"worst-err-at-50%"}, unit: "%", better: "lower",
				baseline: "BenchmarkETAAccuracy/shape=coarse/history=off", baselineName: "no history", target: atMost(25)},
			{item: 9, key: "eta/coarse/median_error_at_90", name: "ETA median |error| at 90 % progress, one step per phase, 5 runs of history (% of build duration)", bench: "BenchmarkETAAccuracy/shape=coarse/history=on", units: []string{"median-err-at-90%"}, unit: "%", better: "lower",
				baseline: "BenchmarkETAAccuracy/shape=coarse/history=off", baselineName: "no history", target: atMost(5)},
			{item: 9, key: "eta/coarse/worst_error_at_90", name: "ETA worst |error| at 90 % progress, one step per phase, 5 runs of history (% of build duration)", bench: "BenchmarkETAAccuracy/shape=coarse/history=on", units: []string{"worst-err-at-90%"}, unit: "%", better: "lower",
				baseline: "BenchmarkETAAccuracy/shape=coarse/history=off", baselineName: "no history", target: atMost(10)},
		}},
		{pkg: exporter, pattern: "^BenchmarkCheckpoint$", rows: []benchRow{
			{item: 5, key: "checkpoint/builds=100/ns_per_op", name: "checkpoint, 100 builds: time", bench: "BenchmarkCheckpoint/builds=100", units: []string{"ns/op"}, unit: "ns", better: "lower"},
			{item: 5, key: "checkpoint/builds=100/bytes", name: "checkpoint, 100 builds: bytes", bench: "BenchmarkCheckpoint/builds=100", units: checkpointBytesUnits, unit: "B", better: "lower"},
			{item: 5, key: "checkpoint/builds=10000/ns_per_op", name: "checkpoint, 10,000 builds: time", bench: "BenchmarkCheckpoint/builds=10000", units: []string{"ns/op"}, unit: "ns", better: "lower"},
			{item: 5, key: "checkpoint/builds=10000/bytes", name: "checkpoint, 10,000 builds: bytes", bench: "BenchmarkCheckpoint/builds=10000", units: checkpointBytesUnits, unit: "B", better: "lower"},
		}},
	}
}

// checkpointBytesUnits are the custom units the checkpoint benchmark may report its size in.
var checkpointBytesUnits = []string{"bytes/checkpoint", "B/checkpoint", "bytes/op", "bytes"}

// runSuite runs one suite with `go test` in repo and turns its output into rows; problems
// (package missing, benchmark missing, failures) come back as errors for the report.
func runSuite(ctx context.Context, repo string, s benchSuite, count int, benchtime string, progress io.Writer) ([]results.Measure, []string) {
	if _, err := os.Stat(filepath.Join(repo, s.pkg)); err != nil {
		return nil, []string{fmt.Sprintf("%s: package not present", s.pkg)}
	}
	if s.benchtime != "" {
		benchtime = s.benchtime
	}
	// The test binary is built once and run count times with -count 1: each round runs a
	// benchmark and its baseline back to back, so both see the same machine (which is shared),
	// instead of all rounds of one and then all rounds of the other.
	bin, err := os.MkdirTemp("", "buildmon-bench-go-")
	if err != nil {
		return nil, []string{err.Error()}
	}
	defer os.RemoveAll(bin)
	testBin := filepath.Join(bin, "bench.test")
	build := exec.CommandContext(ctx, goCommand(), "test", "-c", "-o", testBin, s.pkg)
	build.Dir = repo
	build.Stdout, build.Stderr = progress, progress
	fmt.Fprintf(progress, "go test -c %s\n", s.pkg)
	if err := build.Run(); err != nil {
		return nil, []string{fmt.Sprintf("%s: building the test binary: %v", s.pkg, err)}
	}
	args := []string{"-test.run", "^$", "-test.bench", s.pattern, "-test.benchmem", "-test.count", "1", "-test.benchtime", benchtime, "-test.timeout", "30m"}
	var out bytes.Buffer
	var runErr error
	for round := 1; round <= count && ctx.Err() == nil; round++ {
		fmt.Fprintf(progress, "%s round %d/%d: %s\n", s.pkg, round, count, strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, testBin, args...)
		// A test binary runs in its package's directory, as under go test (testdata).
		cmd.Dir = filepath.Join(repo, s.pkg)
		cmd.Stdout = io.MultiWriter(&out, progress)
		cmd.Stderr = progress
		if err := cmd.Run(); err != nil && runErr == nil {
			runErr = err
		}
	}
	parsed, err := gobench.Parse(&out)
	if err != nil {
		return nil, []string{fmt.Sprintf("%s: %v", s.pkg, err)}
	}
	var problems []string
	if runErr != nil {
		problems = append(problems, fmt.Sprintf("%s: -bench %s: %v %s", s.pkg, s.pattern, runErr, strings.Join(parsed.Failures, "; ")))
		if len(parsed.Results) == 0 {
			return nil, problems
		}
	}
	measures, missing := rowsFrom(parsed, s.rows)
	for _, m := range missing {
		problems = append(problems, fmt.Sprintf("%s: %s", s.pkg, m))
	}
	return measures, problems
}

// rowsFrom builds the rows of a suite from parsed output, and lists what was missing.
func rowsFrom(out *gobench.Output, rows []benchRow) ([]results.Measure, []string) {
	var measures []results.Measure
	var missing []string
	for _, row := range rows {
		samples, unit := pick(out, row.bench, row.units)
		if len(samples) == 0 {
			missing = append(missing, fmt.Sprintf("benchmark %s (%s) not found", row.bench, strings.Join(row.units, " or ")))
			continue
		}
		scale(samples, row.scale)
		m := results.New(row.item, row.key, row.name, row.unit, row.better, samples)
		if unit != row.units[0] {
			m = m.WithNote(fmt.Sprintf("from %s (the benchmark reports no %s)", unit, row.units[0]))
		}
		if row.baseline != "" {
			base := out.Samples("", row.baseline, unit)
			if len(base) == 0 {
				missing = append(missing, fmt.Sprintf("baseline benchmark %s (%s) not found", row.baseline, unit))
			}
			scale(base, row.scale)
			m = m.WithBaseline(row.baselineName, base)
		}
		if row.target != nil {
			m = m.WithTarget(row.target.On, row.target.Op, row.target.Limit)
		}
		measures = append(measures, m)
	}
	return measures, missing
}

func pick(out *gobench.Output, bench string, units []string) ([]float64, string) {
	for _, u := range units {
		if s := out.Samples("", bench, u); len(s) > 0 {
			return s, u
		}
	}
	return nil, ""
}

func scale(xs []float64, f float64) {
	if f == 0 || f == 1 {
		return
	}
	for i := range xs {
		xs[i] *= f
	}
}

// goCommand is the go tool that runs the benchmarks: $GO as the Makefile passes it, else go.
func goCommand() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}
