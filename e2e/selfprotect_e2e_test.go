//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
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
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after it are space-separated.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, err1 := strconv.ParseInt(fields[11], 10, 64) // field 14 of the line
	stime, err2 := strconv.ParseInt(fields[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parsing /proc/%d/stat: %v %v", pid, err1, err2)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// cpuSample is a process's CPU time read at a moment.
type cpuSample struct {
	at  time.Time
	cpu time.Duration
}

// cpuSampler reads a process's CPU time every 100 ms, so that its share of the host can be
// told over any window afterwards: the test's own windows and the controller's check
// intervals.
type cpuSampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex // guards samples
	samples []cpuSample
}

func startCPUSampler(pid int) *cpuSampler {
	s := &cpuSampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if c, err := cpuTime(pid); err == nil {
				s.mu.Lock()
				s.samples = append(s.samples, cpuSample{at: time.Now(), cpu: c})
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *cpuSampler) close() {
	close(s.stop)
	<-s.done
}

// share is the process's share of the host's CPUs between the last sample at or before from
// and the first at or after to.
func (s *cpuSampler) share(t testing.TB, from, to time.Time) float64 {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var a, b *cpuSample
	for i := range s.samples {
		if !s.samples[i].at.After(from) {
			a = &s.samples[i]
		}
		if b == nil && !s.samples[i].at.Before(to) {
			b = &s.samples[i]
		}
	}
	if a == nil || b == nil {
		t.Fatalf("no CPU samples of pid %d around %s – %s", s.pid, from.Format(time.StampMilli), to.Format(time.StampMilli))
	}
	return (b.cpu - a.cpu).Seconds() / (b.at.Sub(a.at).Seconds() * float64(runtime.NumCPU()))
}

// window sleeps for d and returns the process's share of the host's CPUs over it.
func (s *cpuSampler) window(t testing.TB, d time.Duration) float64 {
	t.Helper()
	from := time.Now()
	time.Sleep(d)
	to := time.Now()
	eventually(t, time.Second, func() error { // the sample at or after to
		s.mu.Lock()
		defer s.mu.Unlock()
		if n := len(s.samples); n == 0 || s.samples[n-1].at.Before(to) {
			return fmt.Errorf("no CPU sample after %s", to.Format(time.StampMilli))
		}
		return nil
	})
	return s.share(t, from, to)
}

// shedding is a measure the collector logged as engaged.
type shedding struct {
	measure  string
	at       time.Time // the log line's time, the check's
	cpuShare float64   // the share the controller read over the check interval
}

// engagedMeasures returns the measures the collector logged as engaged, in order.
func engagedMeasures(t testing.TB, out string) []shedding {
	t.Helper()
	var ms []shedding
	for _, line := range strings.Split(out, "\n") {
		i := strings.Index(line, "self-protection: over budget, shedding")
		if i < 0 {
			continue
		}
		j := strings.IndexByte(line[i:], '{')
		var fields struct {
			Measure  string  `json:"measure"`
			CPUShare float64 `json:"cpu_share"`
		}
		if j < 0 {
			t.Fatalf("no fields in %q", line)
		}
		if err := json.Unmarshal([]byte(line[i+j:]), &fields); err != nil {
			t.Fatalf("fields of %q: %v", line, err)
		}
		at, err := time.Parse(time.RFC3339Nano, strings.Fields(line)[0])
		if err != nil {
			t.Fatalf("time of %q: %v", line, err)
		}
		ms = append(ms, shedding{measure: fields.Measure, at: at, cpuShare: fields.CPUShare})
	}
	return ms
}

// engaged returns the names of the measures the collector logged as engaged, in order.
func engaged(t testing.TB, out string) []string {
	t.Helper()
	var names []string
	for _, m := range engagedMeasures(t, out) {
		names = append(names, m.measure)
	}
	return names
}

const (
	// selfProtectBuilds builds are started, then each gets a step every 2 s.
	selfProtectBuilds = 1000
	// selfProtectCheck is the controller's check_interval.
	selfProtectCheck = 3 * time.Second
)

// selfProtectRun is the collector with one CPU budget under the test's load.
type selfProtectRun struct {
	col      *collector
	cpu      *cpuSampler
	started  time.Time // the collector is ready
	ports    ports
	ids      []string
	lg       *loadgen.Client
	stopLoad context.CancelFunc
	loadDone chan *loadgen.PaceResult
	endOnce  sync.Once
}

// endLoad stops the steps and returns what was sent; later calls return nil.
func (r *selfProtectRun) endLoad() *loadgen.PaceResult {
	var res *loadgen.PaceResult
	r.endOnce.Do(func() {
		r.stopLoad()
		res = <-r.loadDone
	})
	return res
}

// startSelfProtectRun starts the collector with a CPU budget of cpuShare, starts the builds
// (build_started and phase_started of each: lifecycle events, all accepted) and a step of
// every build every 2 s until endLoad.
func startSelfProtectRun(t *testing.T, name string, cpuShare float64) *selfProtectRun {
	t.Helper()
	dir := t.TempDir()
	p := newPorts(t)
	path := renderConfig(t, "selfprotect.yaml.tmpl", dir, selfProtectConfig{
		Ports: p, Dir: dir, ReportInterval: "100ms", MaxBuilds: 2 * selfProtectBuilds,
		CPUShare: cpuShare, CheckInterval: selfProtectCheck.String(),
	})
	col := startCollector(t, path, dir, fmt.Sprintf("http://127.0.0.1:%d/", p.Health))
	r := &selfProtectRun{col: col, started: time.Now(), ports: p, ids: loadgen.BuildIDs(name, selfProtectBuilds)}
	r.cpu = startCPUSampler(col.cmd.Process.Pid)
	t.Cleanup(r.cpu.close)
	lg, err := loadgen.NewClient(fmt.Sprintf("http://127.0.0.1:%d", p.Events), loadgen.ClientOptions{Conns: 4})
	if err != nil {
		t.Fatal(err)
	}
	r.lg = lg
	t.Cleanup(lg.Close)
	ctx := context.Background()
	if err := lg.StartBuilds(ctx, r.ids, loadgen.BuildPlan{Pipeline: "sp", Phase: "BUILD"}, 500); err != nil {
		t.Fatal(err)
	}
	loadCtx, stop := context.WithCancel(ctx)
	r.stopLoad = stop
	r.loadDone = make(chan *loadgen.PaceResult, 1)
	go func() {
		res, err := lg.Pace(loadCtx, loadgen.PaceOptions{Builds: r.ids, Hz: 0.5, Duration: 2 * time.Minute, MaxTicks: 60, Chunk: 500})
		if err != nil && loadCtx.Err() == nil {
			t.Error(err)
		}
		r.loadDone <- res
	}()
	t.Cleanup(func() { r.endLoad() })
	return r
}

// shareBeforeShedding is the collector's CPU share under the load between the builds'
// start and the controller's second check, the first that can engage a measure (the first
// only reads a baseline).
func (r *selfProtectRun) shareBeforeShedding(t *testing.T) float64 {
	t.Helper()
	time.Sleep(time.Until(r.started.Add(time.Second)))
	window := 2*selfProtectCheck - time.Since(r.started) - 500*time.Millisecond
	if window < time.Second {
		t.Fatalf("starting the builds took too long: %s left before the first check that can shed", window)
	}
	share := r.cpu.window(t, window)
	if ms := engaged(t, r.col.out.String()); len(ms) != 0 {
		t.Fatalf("shedding engaged before the first window ended: %v", ms)
	}
	return share
}

// checkControllerReadings logs, for each measure engaged, the CPU share the controller read
// over its check interval beside the share /proc/<pid>/stat gives over the same interval, and
// fails when they disagree by more than a quarter (or 0.01 of the host): the test's samples
// are 100 ms apart, so its interval may be a little longer than the controller's.
func (r *selfProtectRun) checkControllerReadings(t *testing.T, budget float64) {
	t.Helper()
	for _, m := range engagedMeasures(t, r.col.out.String()) {
		proc := r.cpu.share(t, m.at.Add(-selfProtectCheck), m.at)
		t.Logf("  %s engaged at %s: controller read %.3f, /proc/<pid>/stat %.3f over the check interval; budget %.4f",
			m.measure, m.at.Format("15:04:05.000"), m.cpuShare, proc, budget)
		if math.Abs(m.cpuShare-proc) > max(0.25*proc, 0.01) {
			t.Errorf("%s engaged on a CPU share of %.3f; /proc/<pid>/stat gives %.3f over the same check interval", m.measure, m.cpuShare, proc)
		}
	}
}

// A load generator pushes the collector past its CPU budget: it sheds in the documented order
// (each measure logged once, the gauge says so), and with its measures engaged its CPU share
// falls back under the budget while every lifecycle event of every build is accepted on the
// first try and in the final state.
//
// No fixed budget can be both over what the collector needs with its measures engaged and
// under what it needs without them on every machine, so the test calibrates one. A first run
// with a budget no collector meets engages every measure and measures the share before
// shedding and with every measure; a second run, under the same load, gets a budget at the
// geometric mean of the two (each a factor of at least √3 away) and must go over it, shed,
// and fall back under it.
func TestSelfProtectionUnderLoad(t *testing.T) {
	// The calibration run: a tiny budget, so every measure engages, one per check, in order.
	const tinyBudget = 0.02
	cal := startSelfProtectRun(t, "cal", tinyBudget)
	calBefore := cal.shareBeforeShedding(t)
	eventually(t, 6*selfProtectCheck, func() error {
		if ms := engaged(t, cal.col.out.String()); len(ms) < 3 {
			return fmt.Errorf("engaged so far: %v", ms)
		}
		return nil
	})
	if ms := engaged(t, cal.col.out.String()); strings.Join(ms, ",") != "step_span_sampling,host_scrape_stretch,reemission_slowdown" {
		t.Fatalf("engaged %v, want each measure once, in order", ms)
	}
	time.Sleep(time.Second)
	calShed := cal.cpu.window(t, 2*selfProtectCheck)
	t.Logf("calibration: collector CPU share of the host (%d CPUs) under the load: %.3f before shedding, %.3f with every measure (%.0f%%); budget %.2f",
		runtime.NumCPU(), calBefore, calShed, 100*calShed/calBefore, tinyBudget)
	cal.checkControllerReadings(t, tinyBudget)
	if calShed >= calBefore*0.8 {
		t.Errorf("CPU share %.3f with every measure, %.3f before: want at least 20%% less", calShed, calBefore)
	}
	promURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", cal.ports.Prom)
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
	cal.endLoad()
	cal.col.kill()
	if calBefore < 3*calShed {
		t.Fatalf("with every measure the share fell only from %.3f to %.3f: no budget lies between them with a margin (want a factor of 3)", calBefore, calShed)
	}
	budget := math.Round(math.Sqrt(calBefore*calShed)*1e4) / 1e4

	// The calibrated run: over the budget before shedding, under it once the controller has
	// engaged what it needs.
	run := startSelfProtectRun(t, "sp", budget)
	before := run.shareBeforeShedding(t)
	if before <= budget {
		t.Fatalf("CPU share %.3f before shedding: not over the budget %.4f", before, budget)
	}
	eventually(t, 3*selfProtectCheck, func() error {
		if ms := engaged(t, run.col.out.String()); len(ms) == 0 {
			return fmt.Errorf("no measure engaged with a share of %.3f over the budget %.4f", before, budget)
		}
		return nil
	})
	// The controller engages one measure more at each check it finds over budget: wait for
	// all three, or for a check that found none needed.
	eventually(t, 4*selfProtectCheck, func() error {
		ms := engagedMeasures(t, run.col.out.String())
		if len(ms) == 3 || time.Since(ms[len(ms)-1].at) > selfProtectCheck+time.Second {
			return nil
		}
		return fmt.Errorf("engaged so far: %d measures", len(ms))
	})
	time.Sleep(time.Second)
	after := run.cpu.window(t, 2*selfProtectCheck)
	ms := engaged(t, run.col.out.String())
	t.Logf("calibrated budget %.4f: collector CPU share %.3f before shedding, %.3f with %v engaged (%.0f%% of the budget)",
		budget, before, after, ms, 100*after/budget)
	run.checkControllerReadings(t, budget)
	if after >= budget {
		t.Errorf("CPU share %.3f with %v engaged: not back under the budget %.4f", after, ms, budget)
	}

	// Lifecycle events are never shed: every build's phase completes and the build finishes,
	// each accepted on the first try while the measures are active and the load goes on.
	eventsURL := fmt.Sprintf("http://127.0.0.1:%d/v1/events", run.ports.Events)
	for _, id := range run.ids {
		code, body, err := postEvents(eventsURL,
			`{"type":"phase_completed","build_id":"`+id+`","phase":"BUILD"}`,
			`{"type":"build_finished","build_id":"`+id+`","result":"success"}`)
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("finishing %s: %d %s %v", id, code, body, err)
		}
	}
	if res := run.endLoad(); res != nil {
		t.Logf("load: %d ticks of %d step events", len(res.Ticks), selfProtectBuilds)
	}
	// The final state: every build finished with success, in the status API.
	statusURL := fmt.Sprintf("http://127.0.0.1:%d/v1/builds", run.ports.Status)
	eventually(t, 60*time.Second, func() error {
		code, body, err := httpGet(context.Background(), statusURL)
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
		if finished != selfProtectBuilds {
			return fmt.Errorf("%d of %d builds finished with success and progress 1", finished, selfProtectBuilds)
		}
		return nil
	})
	// A clean stop writes the reports of the 1,000 finished builds, each fsynced, which takes
	// longer than the harness allows for a stop on a busy machine; that is not what this test
	// is about.
	run.col.kill()
}
