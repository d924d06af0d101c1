// Command buildmon-bench runs the buildmon benchmark suite (`make bench`): the Go
// micro-benchmarks of the hot paths, each beside its baseline, and system measurements of the
// ocb-built distribution (idle cost, ingestion, checkpoint staleness, memory with 10,000
// builds, end-to-end latency). It prints one table of medians with ratios to the baselines and
// targets, and writes the same as JSON; `-compare old.json new.json` compares two runs.
//
// Knobs come from the environment (see bench/README.md): BENCH_COUNT, BENCH_TIME, BENCH_ONLY,
// BENCH_IDLE_SECONDS, BENCH_INGEST_SECONDS, BENCH_WORKERS, BENCH_BATCH_WORKERS,
// BENCH_BATCH_SIZE, BENCH_STALENESS_SECONDS, BENCH_MEMORY_BUILDS, BENCH_E2E_SAMPLES,
// BENCH_STRICT, BENCH_PPROF_DIR, BENCH_KEEP_TMP.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/results"
	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/sysbench"
	"github.com/buildmon/buildmon/exporter/checkpointexporter"
)

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}

// parts of a run, selectable with BENCH_ONLY / -only.
var allParts = []string{"go", "idle", "ingest", "staleness", "memory", "fleet"}

type options struct {
	repo, dist, config, out string
	router                  string
	count                   int
	benchtime               string
	only                    map[string]bool
	strict                  bool
	compare                 bool
	args                    []string
	settings                sysbench.Settings
	fleet                   sysbench.FleetSettings
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	o := options{settings: sysbench.DefaultSettings()}
	fs := flag.NewFlagSet("buildmon-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.repo, "repo", ".", "repository root (benchmarks run there)")
	fs.StringVar(&o.dist, "dist", "_build/otelcol-buildmon", "the ocb-built distribution")
	fs.StringVar(&o.config, "config", "testdata/config.yaml", "default config the bench copies (with fresh ports)")
	fs.StringVar(&o.router, "router", "_build-router/otelcol-router", "the fleet's router (make router), for the fleet part")
	fs.StringVar(&o.out, "out", "bench/results.json", "where the JSON results go")
	only := fs.String("only", os.Getenv("BENCH_ONLY"), "comma-separated parts to run: "+strings.Join(allParts, ","))
	fs.BoolVar(&o.compare, "compare", false, "compare two results files: -compare old.json new.json")
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.args = fs.Args()
	if o.compare {
		if len(o.args) != 2 {
			return o, errors.New("-compare takes two files: old.json new.json")
		}
		return o, nil
	}
	if len(o.args) > 0 {
		return o, fmt.Errorf("unexpected arguments %q", o.args)
	}
	o.only = map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		known := false
		for _, a := range allParts {
			known = known || a == p
		}
		if !known {
			return o, fmt.Errorf("BENCH_ONLY/-only: unknown part %q (want %s)", p, strings.Join(allParts, ","))
		}
		o.only[p] = true
	}
	if len(o.only) == 0 {
		for _, p := range allParts {
			o.only[p] = true
		}
	}
	var errs []error
	envInt := func(name string, dst *int, lo int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < lo {
				errs = append(errs, fmt.Errorf("%s=%q: want an integer of at least %d", name, v, lo))
				return
			}
			*dst = n
		}
	}
	envSeconds := func(name string, dst *time.Duration) {
		n := int(dst.Seconds())
		envInt(name, &n, 1)
		*dst = time.Duration(n) * time.Second
	}
	o.count = 5
	envInt("BENCH_COUNT", &o.count, 1)
	o.benchtime = os.Getenv("BENCH_TIME")
	if o.benchtime == "" {
		o.benchtime = "1s"
	}
	s := &o.settings
	envInt("BENCH_IDLE_SECONDS", &s.IdleSeconds, 10)
	envSeconds("BENCH_INGEST_SECONDS", &s.IngestDuration)
	envInt("BENCH_WORKERS", &s.Workers, 1)
	envInt("BENCH_BATCH_WORKERS", &s.BatchWorkers, 1)
	envInt("BENCH_BATCH_SIZE", &s.BatchSize, 2)
	envSeconds("BENCH_STALENESS_SECONDS", &s.StalenessDuration)
	envInt("BENCH_MEMORY_BUILDS", &s.MemoryBuilds, 1)
	envInt("BENCH_E2E_SAMPLES", &s.E2ESamples, 1)
	o.fleet = sysbench.DefaultFleetSettings()
	envSeconds("BENCH_FLEET_SECONDS", &o.fleet.ThroughputTime)
	envInt("BENCH_FLEET_RUNS", &o.fleet.RoutingRuns, 2)
	o.strict = os.Getenv("BENCH_STRICT") == "1"
	s.ProfileDir = os.Getenv("BENCH_PPROF_DIR")
	return o, errors.Join(errs...)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "buildmon-bench:", err)
		return 2
	}
	if o.compare {
		return compare(o.args[0], o.args[1], stdout, stderr)
	}

	report := &results.Report{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(o.repo), Settings: settings(o)}
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "[bench %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	fail := func(part string, err error) {
		report.Errors = append(report.Errors, fmt.Sprintf("%s: %v", part, err))
		logf("%s failed: %v", part, err)
	}

	if o.only["go"] {
		for _, s := range suites() {
			if ctx.Err() != nil {
				break
			}
			ms, problems := runSuite(ctx, o.repo, s, o.count, o.benchtime, stderr)
			report.Measures = append(report.Measures, ms...)
			for _, p := range problems {
				fail("go benchmarks", errors.New(p))
			}
		}
	}
	if o.only["idle"] || o.only["ingest"] || o.only["staleness"] || o.only["memory"] || o.only["fleet"] {
		if err := runSystem(ctx, o, report, logf, fail); err != nil {
			fail("system", err)
		}
	}

	sort.SliceStable(report.Measures, func(i, j int) bool { return report.Measures[i].Item < report.Measures[j].Item })
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err == nil {
		if err := report.WriteFile(o.out); err != nil {
			fail("results", err)
		} else {
			logf("results written to %s", o.out)
		}
	}
	fmt.Fprintf(stdout, "buildmon bench %s  rev %s  %d CPUs  %s  (count %d, benchtime %s, idle %ds)\n\n",
		report.Date, short(report.Machine.GitRevision), report.Machine.NumCPU, report.Machine.GoVersion, o.count, o.benchtime, o.settings.IdleSeconds)
	if err := report.PrintTable(stdout); err != nil {
		fmt.Fprintln(stderr, "buildmon-bench:", err)
		return 1
	}
	misses := report.Misses()
	fmt.Fprintf(stdout, "\n%d measures, %d with a target missed, %d parts not measured\n", len(report.Measures), len(misses), len(report.Errors))
	switch {
	case ctx.Err() != nil:
		return 130
	case len(report.Errors) > 0:
		return 1
	case o.strict && len(misses) > 0:
		return 1
	}
	return 0
}

func runSystem(ctx context.Context, o options, report *results.Report, logf func(string, ...any), fail func(string, error)) error {
	dist, err := filepath.Abs(inRepo(o.repo, o.dist))
	if err != nil {
		return err
	}
	if _, err := os.Stat(dist); err != nil {
		return fmt.Errorf("distribution %s not built (make build): %w", dist, err)
	}
	cfg, err := os.ReadFile(inRepo(o.repo, o.config))
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "buildmon-bench-")
	if err != nil {
		return err
	}
	if os.Getenv("BENCH_KEEP_TMP") == "1" {
		logf("keeping the collectors' directories in %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	r := &sysbench.Runner{Bin: dist, DefaultConfig: cfg, TmpDir: tmp, Settings: o.settings, Logf: logf,
		ReadCheckpoint: checkpointexporter.ReadCheckpointProgress,
		FleetConfigDir: inRepo(o.repo, filepath.Join("testdata", "fleet")), FleetKnobs: o.fleet}
	if o.only["fleet"] {
		if r.RouterBin, err = filepath.Abs(inRepo(o.repo, o.router)); err != nil {
			return err
		}
	}
	for _, part := range []struct {
		name string
		run  func(context.Context) ([]results.Measure, error)
	}{
		{"idle", r.IdleAndE2E},
		{"ingest", r.Ingestion},
		{"staleness", r.Staleness},
		{"memory", r.Memory},
		{"fleet", r.Fleet},
	} {
		if !o.only[part.name] || ctx.Err() != nil {
			continue
		}
		ms, err := part.run(ctx)
		report.Measures = append(report.Measures, ms...)
		if err != nil {
			fail(part.name, err)
		}
	}
	return nil
}

// inRepo resolves a relative path against the repository root.
func inRepo(repo, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(repo, path)
}

func compare(oldPath, newPath string, stdout, stderr io.Writer) int {
	old, err := results.ReadFile(oldPath)
	if err != nil {
		fmt.Fprintln(stderr, "buildmon-bench:", err)
		return 2
	}
	cur, err := results.ReadFile(newPath)
	if err != nil {
		fmt.Fprintln(stderr, "buildmon-bench:", err)
		return 2
	}
	if err := results.PrintCompare(stdout, old, cur); err != nil {
		fmt.Fprintln(stderr, "buildmon-bench:", err)
		return 1
	}
	return 0
}

func settings(o options) map[string]string {
	s := o.settings
	return map[string]string{
		"count": strconv.Itoa(o.count), "benchtime": o.benchtime,
		"idle_seconds":    strconv.Itoa(s.IdleSeconds),
		"ingest_duration": s.IngestDuration.String(),
		"ingest_builds":   strconv.Itoa(s.IngestBuilds),
		"workers":         strconv.Itoa(s.Workers),
		"batch_workers":   strconv.Itoa(s.BatchWorkers),
		"batch_size":      strconv.Itoa(s.BatchSize),
		"staleness":       fmt.Sprintf("%d builds x %g Hz for %s", s.StalenessBuilds, s.StalenessHz, s.StalenessDuration),
		"memory_builds":   strconv.Itoa(s.MemoryBuilds),
		"e2e_samples":     strconv.Itoa(s.E2ESamples),
		"fleet":           fmt.Sprintf("%d routing runs per pipeline, %s of events", o.fleet.RoutingRuns, o.fleet.ThroughputTime),
		"parts":           strings.Join(keys(o.only), ","),
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for _, p := range allParts {
		if m[p] {
			out = append(out, p)
		}
	}
	return out
}

// machine describes this machine and checkout for the results file.
func machine(repo string) results.Machine {
	m := results.Machine{NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
	if out, err := exec.Command(goCommand(), "env", "GOVERSION").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(out))
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	m.GitRevision = git("rev-parse", "HEAD")
	m.GitDirty = git("status", "--porcelain", "--untracked-files=no") != ""
	return m
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
