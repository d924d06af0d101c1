package sysbench

import (
	"context"
	"fmt"
	"time"

	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/procfs"
)

// Settings are the knobs of the system measurements (the bench runner fills them from
// BENCH_* environment variables).
type Settings struct {
	IdleSeconds       int           // item 2: how long the idle collector is sampled
	IngestDuration    time.Duration // item 3: each of the single and batch runs
	IngestBuilds      int           // item 3: builds the events go to
	Workers           int           // item 3: concurrent single-event requests
	BatchWorkers      int           // item 3: concurrent batch requests
	BatchSize         int           // item 3: events per NDJSON batch
	StalenessDuration time.Duration // item 5: how long 1,000 builds are updated
	StalenessBuilds   int           // item 5
	StalenessHz       float64       // item 5: updates per build per second
	MemoryBuilds      int           // item 6
	E2ESamples        int           // item 7

	// Waits that let the collector reach the state a measurement is about.
	IdleWarmup     time.Duration // item 2: start-up work skipped before idle sampling
	IdleWindow     time.Duration // item 2: span of one idle CPU sample
	MemorySettle   time.Duration // item 6: builds running before RSS is read
	StalenessDrain time.Duration // item 5: watching on after the last update

	// ProfileDir, when set, receives pprof profiles of the collector taken during the
	// ingestion, staleness and memory measurements (BENCH_PPROF_DIR).
	ProfileDir string
}

// DefaultSettings are what `make bench` runs unless told otherwise.
func DefaultSettings() Settings {
	return Settings{
		IdleSeconds:       60,
		IngestDuration:    10 * time.Second,
		IngestBuilds:      100,
		Workers:           16,
		BatchWorkers:      4,
		BatchSize:         1000,
		StalenessDuration: 30 * time.Second,
		StalenessBuilds:   1000,
		StalenessHz:       10,
		MemoryBuilds:      10000,
		E2ESamples:        50,
		IdleWarmup:        5 * time.Second,
		IdleWindow:        10 * time.Second,
		MemorySettle:      15 * time.Second,
		StalenessDrain:    5 * time.Second,
	}
}

// Runner runs the system measurements against one binary.
type Runner struct {
	Bin           string // the ocb-built distribution
	DefaultConfig []byte // testdata/config.yaml, copied with fresh ports
	TmpDir        string // collectors run in directories under it
	Settings      Settings
	Logf          func(format string, args ...any)
	// ReadCheckpoint decodes one checkpoint file into every build's overall progress (the
	// exporter's ReadCheckpointProgress); nil, or an error for every file, makes the staleness
	// measurement fall back to file mtimes.
	ReadCheckpoint func(path string) (map[string]float64, error)

	// RouterBin is the fleet's router (make router) and FleetConfigDir holds the fleet configs
	// (testdata/fleet), for item 8; FleetKnobs are its settings.
	RouterBin      string
	FleetConfigDir string
	FleetKnobs     FleetSettings
}

func (r *Runner) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}

// start renders the config with overrides and starts a collector with it.
func (r *Runner) start(ctx context.Context, name string, overrides []Override, env ...string) (*Collector, error) {
	base := r.DefaultConfig
	if r.Settings.ProfileDir != "" {
		var err error
		if base, err = AddPprof(base); err != nil {
			return nil, err
		}
	}
	cfg, ports, err := RenderConfig(base, overrides)
	if err != nil {
		return nil, err
	}
	c, err := StartCollector(ctx, r.Bin, r.TmpDir, name, cfg, ports, env...)
	if err != nil {
		return nil, fmt.Errorf("%s collector: %w", name, err)
	}
	r.logf("%s: collector pid %d in %s (events :%d, status :%d, prometheus :%d)", name, c.Pid(), c.Dir, ports.Events, ports.Status, ports.Prometheus)
	return c, nil
}

// stop stops a collector; its directory is removed with the runner's TmpDir.
func (r *Runner) stop(c *Collector) {
	CloseIdle()
	if err := c.Stop(); err != nil {
		r.logf("%v", err)
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// cpuRate is CPU seconds per wall-clock minute between two samples.
func cpuRate(a, b procfs.Sample) float64 {
	wall := b.At.Sub(a.At)
	if wall <= 0 {
		return 0
	}
	return (b.CPU - a.CPU).Seconds() / wall.Minutes()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
