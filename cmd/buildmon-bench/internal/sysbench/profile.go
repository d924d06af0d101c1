package sysbench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// profiler fetches pprof profiles from a collector's pprof extension into Settings.ProfileDir
// while a measurement runs, so a missed target comes with the profile that explains it.
type profiler struct {
	r    *Runner
	c    *Collector
	done chan struct{}
}

// cpuProfile starts fetching a CPU profile of d into <ProfileDir>/<name>.cpu.pprof; wait()
// returns when it is written. Without ProfileDir or a pprof extension it does nothing.
func (r *Runner) cpuProfile(ctx context.Context, c *Collector, name string, d time.Duration) *profiler {
	p := &profiler{r: r, c: c, done: make(chan struct{})}
	if r.Settings.ProfileDir == "" || c.Ports.Pprof == 0 || d < time.Second {
		close(p.done)
		return p
	}
	go func() {
		defer close(p.done)
		secs := int(d / time.Second)
		r.fetchProfile(ctx, c, "/debug/pprof/profile?seconds="+strconv.Itoa(secs), name+".cpu.pprof")
	}()
	return p
}

func (p *profiler) wait() { <-p.done }

// heapProfile writes the collector's heap profile to <ProfileDir>/<name>.heap.pprof.
func (r *Runner) heapProfile(ctx context.Context, c *Collector, name string) {
	if r.Settings.ProfileDir == "" || c.Ports.Pprof == 0 {
		return
	}
	r.fetchProfile(ctx, c, "/debug/pprof/heap?gc=1", name+".heap.pprof")
}

func (r *Runner) fetchProfile(ctx context.Context, c *Collector, path, file string) {
	code, body, err := get(ctx, URL(c.Ports.Pprof, path))
	if err == nil && code != 200 {
		err = fmt.Errorf("GET %s: %d", path, code)
	}
	if err == nil {
		err = os.MkdirAll(r.Settings.ProfileDir, 0o755)
	}
	out := filepath.Join(r.Settings.ProfileDir, file)
	if err == nil {
		err = os.WriteFile(out, body, 0o644)
	}
	if err != nil {
		r.logf("profile %s: %v", file, err)
		return
	}
	r.logf("profile written to %s", out)
}
