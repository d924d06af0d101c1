// Package selfprotect keeps the collector within a budget of its own CPU share and memory:
// a Controller reads the process's usage at each check and, while the collector is over
// budget, engages one shedding measure more per check, in a fixed order; once usage has been
// well under budget for a few checks in a row, it releases one measure per check, in reverse.
// The components ask it which measures are active and shed what those measures name. It is
// plain Go: the usage comes from a Reader (gopsutil's process package in production, fake
// readings in tests) and time from the caller.
package selfprotect // import "github.com/buildmon/buildmon/internal/selfprotect"

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shirou/gopsutil/v4/process"
)

// Measure is one way of shedding the collector's own work. The measures engage in the order
// of their values and release in reverse; none of them touches lifecycle events or alerts.
type Measure int

// The measures, in the order they engage.
const (
	// StepSpanSampling sends one step span in N; the others are counted, not sent.
	StepSpanSampling Measure = iota + 1
	// HostScrapeStretch stretches the host metrics' collection intervals.
	HostScrapeStretch
	// ReemissionSlowdown stretches the periodic re-emission of every tracked build (changed
	// builds are still emitted at once).
	ReemissionSlowdown
)

// Measures are all measures in the order they engage.
var Measures = []Measure{StepSpanSampling, HostScrapeStretch, ReemissionSlowdown}

// String is the measure's name, the value of the self_protection.measure attribute.
func (m Measure) String() string {
	switch m {
	case StepSpanSampling:
		return "step_span_sampling"
	case HostScrapeStretch:
		return "host_scrape_stretch"
	case ReemissionSlowdown:
		return "reemission_slowdown"
	}
	return fmt.Sprintf("measure(%d)", int(m))
}

// Usage is one reading of the process's own resources.
type Usage struct {
	CPU time.Duration // user and system CPU time since the process started
	RSS uint64        // resident memory, bytes
	At  time.Time     // when it was read; zero: at the check's time
}

// Reader reads the process's own usage.
type Reader interface {
	Read(ctx context.Context) (Usage, error)
}

// processReader reads this process's usage with gopsutil.
type processReader struct{ p *process.Process }

// NewProcessReader returns a Reader of this process's CPU time and resident memory
// (gopsutil: /proc/self on Linux, the OS's process APIs elsewhere).
func NewProcessReader() (Reader, error) {
	p, err := process.NewProcess(int32(os.Getpid())) //nolint:gosec // a pid fits int32
	if err != nil {
		return nil, fmt.Errorf("reading the collector's own process: %w", err)
	}
	return processReader{p: p}, nil
}

func (r processReader) Read(ctx context.Context) (Usage, error) {
	t, err := r.p.TimesWithContext(ctx)
	if err != nil {
		return Usage{}, fmt.Errorf("reading the collector's CPU time: %w", err)
	}
	m, err := r.p.MemoryInfoWithContext(ctx)
	if err != nil {
		return Usage{}, fmt.Errorf("reading the collector's memory: %w", err)
	}
	return Usage{CPU: time.Duration((t.User + t.System) * float64(time.Second)), RSS: m.RSS, At: time.Now()}, nil
}

// Budget is what the collector may use. A zero CPUShare or MemoryBytes sets no bound on it.
type Budget struct {
	// CPUShare is the share of the host's CPU time, all cores together (0.25 on a 4-core host
	// is one core's worth), averaged over a check interval.
	CPUShare float64
	// MemoryBytes bounds the resident memory.
	MemoryBytes uint64
	// ReleaseRatio: usage counts as calm only below budget × ReleaseRatio (0 < r < 1), so that
	// a collector just under its budget does not toggle its measures at every check.
	ReleaseRatio float64
	// ReleaseChecks is how many calm checks in a row release one measure.
	ReleaseChecks int
}

// Reading is what a check saw, for logs and tests.
type Reading struct {
	CPUShare float64 // since the previous check; 0 at the first
	RSS      uint64
	Over     bool // over budget: one measure more
	Calm     bool // under budget × ReleaseRatio
}

// Change is a measure that a check engaged or released.
type Change struct {
	Measure Measure
	Active  bool
	Reading Reading
}

// Controller decides which measures are active. Check runs from one goroutine; Active and
// Level may be called from any.
type Controller struct {
	budget Budget
	reader Reader
	cpus   int

	level atomic.Int32 // the active measures are Measures[:level]

	mu      sync.Mutex // guards the fields below, Check's state
	last    Usage
	lastAt  time.Time
	hasLast bool
	calm    int // calm checks in a row
}

// NewController returns a Controller with no measure active. cpus is the host's CPU count
// (runtime.NumCPU() when 0).
func NewController(budget Budget, reader Reader, cpus int) *Controller {
	if cpus <= 0 {
		cpus = runtime.NumCPU()
	}
	if budget.ReleaseChecks < 1 {
		budget.ReleaseChecks = 1
	}
	return &Controller{budget: budget, reader: reader, cpus: cpus}
}

// Level is the number of active measures.
func (c *Controller) Level() int { return int(c.level.Load()) }

// Active reports whether measure m is active.
func (c *Controller) Active(m Measure) bool { return int(m) <= c.Level() }

// Check reads the usage at now (or when the reader says it read it) and moves one step: a measure more when over budget, a
// measure less after ReleaseChecks calm checks in a row. It returns the change, if any. A
// failed read changes nothing.
func (c *Controller) Check(ctx context.Context, now time.Time) (*Change, error) {
	u, err := c.reader.Read(ctx)
	if err != nil {
		return nil, err
	}
	if !u.At.IsZero() {
		now = u.At
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rd := Reading{RSS: u.RSS}
	cpuKnown := false
	if c.hasLast && now.After(c.lastAt) && u.CPU >= c.last.CPU {
		wall := now.Sub(c.lastAt).Seconds() * float64(c.cpus)
		rd.CPUShare = (u.CPU - c.last.CPU).Seconds() / wall
		cpuKnown = true
	}
	c.last, c.lastAt, c.hasLast = u, now, true

	b := c.budget
	overCPU := b.CPUShare > 0 && cpuKnown && rd.CPUShare > b.CPUShare
	overMem := b.MemoryBytes > 0 && u.RSS > b.MemoryBytes
	rd.Over = overCPU || overMem
	calmCPU := b.CPUShare <= 0 || (cpuKnown && rd.CPUShare < b.CPUShare*b.ReleaseRatio)
	calmMem := b.MemoryBytes <= 0 || float64(u.RSS) < float64(b.MemoryBytes)*b.ReleaseRatio
	rd.Calm = calmCPU && calmMem

	level := c.Level()
	switch {
	case rd.Over:
		c.calm = 0
		if level < len(Measures) {
			c.level.Store(int32(level + 1)) //nolint:gosec // at most len(Measures)
			return &Change{Measure: Measures[level], Active: true, Reading: rd}, nil
		}
	case rd.Calm:
		c.calm++
		if level > 0 && c.calm >= b.ReleaseChecks {
			c.calm = 0
			c.level.Store(int32(level - 1)) //nolint:gosec // at least 0
			return &Change{Measure: Measures[level-1], Active: false, Reading: rd}, nil
		}
	default:
		c.calm = 0
	}
	return nil, nil
}
