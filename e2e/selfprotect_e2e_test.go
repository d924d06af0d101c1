//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buildmon/buildmon/cmd/buildmon-load/loadgen"
	"github.com/buildmon/buildmon/internal/wire"
)

type selfProtectConfig struct {
	Ports          ports
	Dir            string
	ReportInterval string
	MaxBuilds      int
	CPUShare       float64
	CheckInterval  string
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat: 100 on every Linux
// architecture the project builds for.
const clockTicks = 100

// cpuTime is the user and system CPU time of process pid so far (/proc/<pid>/stat).
func cpuTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name may hold spaces; the fields after it are space-separated.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, err1 := strconv.ParseInt(fields[11], 10, 64) // field 14 of the line
	stime, err2 := strconv.ParseInt(fields[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		t.Fatalf("parsing /proc/%d/stat: %v %v", pid, err1, err2)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// cpuShare measures pid's share of the host's CPUs over window.
func cpuShare(t testing.TB, pid int, window time.Duration) float64 {
	t.Helper()
	c0, w0 := cpuTime(t, pid), time.Now()
	time.Sleep(window)
	c1, w1 := cpuTime(t, pid), time.Now()
	return (c1 - c0).Seconds() / (w1.Sub(w0).Seconds() * float64(runtime.NumCPU()))
}

// engaged returns the measures the collector logged as engaged, in order.
func engaged(out string) []string {
	var ms []string
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "self-protection: over budget, shedding") {
			continue
		}
		for _, m := range []string{"step_span_sampling", "host_scrape_stretch", "reemission_slowdown"} {
			if strings.Contains(line, `"measure": "`+m+`"`) {
				ms = append(ms, m)
			}
		}
	}
	return ms
}

// A load generator pushes the collector past a small CPU budget: it sheds in the documented
// order (each measure logged once, the gauge says so), its CPU share under the same load falls
// well below what it was before it shed, and every lifecycle event of every build is accepted
// on the first try and in the final state.
func TestSelfProtectionUnderLoad(t *testing.T) {
	const (
		builds        = 1000
		checkInterval = 4 * time.Second
	)
	dir := t.TempDir()
	p := newPorts(t)
	path := renderConfig(t, "selfprotect.yaml.tmpl", dir, selfProtectConfig{
		Ports: p, Dir: dir, ReportInterval: "100ms", MaxBuilds: 2 * builds,
		CPUShare: 0.02, CheckInterval: checkInterval.String(),
	})
	col := startCollector(t, path, dir, fmt.Sprintf("http://127.0.0.1:%d/", p.Health))
	pid := col.cmd.Process.Pid
	started := time.Now()

	ctx := context.Background()
	eventsURL := fmt.Sprintf("http://127.0.0.1:%d", p.Events)
	lg, err := loadgen.NewClient(eventsURL, loadgen.ClientOptions{Conns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	ids := loadgen.BuildIDs("sp", builds)
	// build_started and phase_started of every build: lifecycle events, all accepted.
	if err := lg.StartBuilds(ctx, ids, loadgen.BuildPlan{Pipeline: "sp", Phase: "BUILD"}, 500); err != nil {
		t.Fatal(err)
	}
	paceDone := make(chan *loadgen.PaceResult, 1)
	paceCtx, stopPace := context.WithCancel(ctx)
	defer stopPace()
	go func() {
		res, err := lg.Pace(paceCtx, loadgen.PaceOptions{Builds: ids, Hz: 0.5, Duration: 2 * time.Minute, MaxTicks: 60, Chunk: 500})
		if err != nil && paceCtx.Err() == nil {
			t.Error(err)
		}
		paceDone <- res
	}()

	// Before shedding: the controller's first check only takes a baseline, the second is the
	// first that can engage a measure. Measure the window between, under the load.
	time.Sleep(time.Second)
	window := 2*checkInterval - time.Since(started) - 500*time.Millisecond
	if window < time.Second {
		t.Fatalf("starting the builds took too long: %s left before the first check that can shed", window)
	}
	before := cpuShare(t, pid, window)
	if ms := engaged(col.out.String()); len(ms) != 0 {
		t.Fatalf("shedding engaged before the first window ended: %v", ms)
	}

	// All three measures engage, one per check, in order.
	eventually(t, 6*checkInterval, func() error {
		if ms := engaged(col.out.String()); len(ms) < 3 {
			return fmt.Errorf("engaged so far: %v", ms)
		}
		return nil
	})
	if ms := engaged(col.out.String()); strings.Join(ms, ",") != "step_span_sampling,host_scrape_stretch,reemission_slowdown" {
		t.Fatalf("engaged %v, want each measure once, in order", ms)
	}
	time.Sleep(time.Second)
	after := cpuShare(t, pid, 2*checkInterval)
	t.Logf("collector CPU share of the host (%d CPUs) under the same load: %.3f before shedding, %.3f with every measure (%.0f%%); budget 0.02",
		runtime.NumCPU(), before, after, 100*after/before)
	if after >= before*0.8 {
		t.Errorf("CPU share %.3f with every measure, %.3f before: want at least 20%% less", after, before)
	}
	promURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", p.Prom)
	for _, m := range []string{"step_span_sampling", "host_scrape_stretch", "reemission_slowdown"} {
		eventually(t, 30*time.Second, func() error {
			lines, err := scrapeMetric(promURL, "buildmon_self_protection_active", `self_protection_measure="`+m+`"`)
			if err != nil {
				return err
			}
			if !strings.HasSuffix(lines[0], " 1") {
				return fmt.Errorf("gauge: %v", lines)
			}
			return nil
		})
	}

	// Lifecycle events are never shed: every build's phase completes and the build finishes,
	// each accepted on the first try while every measure is active and the load goes on.
	for _, id := range ids {
		code, body, err := postEvents(eventsURL+"/v1/events",
			`{"type":"phase_completed","build_id":"`+id+`","phase":"BUILD"}`,
			`{"type":"build_finished","build_id":"`+id+`","result":"success"}`)
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("finishing %s: %d %s %v", id, code, body, err)
		}
	}
	stopPace()
	if res := <-paceDone; res != nil {
		t.Logf("load: %d ticks of %d step events", len(res.Ticks), builds)
	}
	// The final state: every build finished with success, in the status API.
	statusURL := fmt.Sprintf("http://127.0.0.1:%d/v1/builds", p.Status)
	eventually(t, 60*time.Second, func() error {
		code, body, err := httpGet(ctx, statusURL)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("GET /v1/builds: %d %v", code, err)
		}
		var list wire.BuildList
		if err := json.Unmarshal(body, &list); err != nil {
			return err
		}
		finished := 0
		for _, b := range list.Builds {
			if b.State == wire.BuildFinished && b.Result == wire.ResultSuccess && b.Progress == 1 {
				finished++
			}
		}
		if finished != builds {
			return fmt.Errorf("%d of %d builds finished with success and progress 1", finished, builds)
		}
		return nil
	})
	// A clean stop writes the reports of the 1,000 finished builds, each fsynced, which takes
	// longer than the harness allows for a stop on a busy machine; that is not what this test
	// is about.
	col.kill()
}
