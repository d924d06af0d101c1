//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

type backendsConfig struct {
	Ports               ports
	Dir                 string
	AlertmanagerURL     string
	TraceSink           string
	FloodBytesPerSecond float64
	RemoteWriteURL      string // metrics remote-written into Prometheus instead of scraped
}

// cli runs the build client with the collector's URLs and returns its combined output.
func cli(t testing.TB, p ports, buildID string, args ...string) string {
	t.Helper()
	cmd := exec.Command(cliBinary(t), args...)
	cmd.Env = cliEnv(p, buildID)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("buildmon %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func cliEnv(p ports, buildID string) []string {
	return append(os.Environ(),
		"BUILDMON_EVENTS_URL=http://127.0.0.1:"+strconv.Itoa(p.Events),
		"BUILDMON_STATUS_URL=http://127.0.0.1:"+strconv.Itoa(p.Status),
		"BUILDMON_BUILD_ID="+buildID,
		"BUILDMON_POLL_INTERVAL=250ms",
		// The tests run inside CI; keep the client from picking up the CI system's build id.
		"GITHUB_RUN_ID=", "CI_PIPELINE_ID=", "BUILD_TAG=", "BUILDKITE_BUILD_ID=",
	)
}

// scriptedBuild runs a build of all five phases through the build client, each phase's
// command reporting its steps with the client too.
func scriptedBuild(t testing.TB, p ports, buildID string) {
	t.Helper()
	bin := cliBinary(t)
	cli(t, p, buildID, "start", "--pipeline", "e2e-pipeline", "--phases", "INIT:1,SETUP:2,BUILD:3,TEST:unit|e2e,CLEANUP:1")
	cli(t, p, buildID, "phase", "INIT", "--", "sh", "-c", bin+" step INIT")
	cli(t, p, buildID, "phase", "SETUP", "--", "sh", "-c", bin+" step SETUP --count 2")
	cli(t, p, buildID, "phase", "BUILD", "--", "sh", "-c", bin+" step BUILD && "+bin+" step BUILD && "+bin+" step BUILD")
	cli(t, p, buildID, "phase", "TEST", "--", "sh", "-c", bin+" milestone TEST unit && "+bin+" milestone TEST e2e")
	cli(t, p, buildID, "phase", "CLEANUP", "--", "sh", "-c", bin+" step CLEANUP")
	cli(t, p, buildID, "finish", "--result", "success")
}

// TestScriptedBuildInPrometheusAndTraces drives a five-phase build through the build client
// and checks it in a real Prometheus (progress, phase series, host series, every dashboard
// query); then a second build whose TEST phase fails, and both builds' traces as a real Jaeger
// returns them (see checkBuildTrace).
func TestScriptedBuildInPrometheusAndTraces(t *testing.T) {
	jg := startJaeger(t)

	p := newPorts(t)
	dir := t.TempDir()
	cfg := renderConfig(t, "backends.yaml.tmpl", dir, backendsConfig{
		Ports: p, Dir: dir, TraceSink: jg.OTLPEndpoint, FloodBytesPerSecond: 1e15,
	})
	col := startCollector(t, cfg, dir, fmt.Sprintf("http://127.0.0.1:%d/", p.Health))
	prom := startPrometheus(t, fmt.Sprintf("127.0.0.1:%d", p.Prom))

	const buildID = "e2e-build-1"
	buildsInPrometheus(t, p, prom, buildID)
	const failedID = "e2e-build-failed"
	scriptedFailedBuild(t, p, failedID)

	t.Run("one trace per build in Jaeger", func(t *testing.T) {
		checkBuildTrace(t, jg, "e2e-pipeline", buildID, "success", map[string]int{"INIT": 1, "SETUP": 1, "BUILD": 3, "TEST": 2, "CLEANUP": 1}, "")
	})
	t.Run("failed phase has error status in Jaeger", func(t *testing.T) {
		checkBuildTrace(t, jg, "e2e-pipeline", failedID, "failure", map[string]int{"INIT": 1, "BUILD": 2, "TEST": 1}, "TEST")
	})
	col.stop()
}

// scriptedFailedBuild runs a three-phase build whose TEST phase command exits 3 after its first
// milestone; the build finishes as a failure.
func scriptedFailedBuild(t testing.TB, p ports, buildID string) {
	t.Helper()
	bin := cliBinary(t)
	cli(t, p, buildID, "start", "--pipeline", "e2e-pipeline", "--phases", "INIT:1,BUILD:2,TEST:unit|e2e")
	cli(t, p, buildID, "phase", "INIT", "--", "sh", "-c", bin+" step INIT")
	cli(t, p, buildID, "phase", "BUILD", "--", "sh", "-c", bin+" step BUILD && "+bin+" step BUILD")
	cmd := exec.Command(bin, "phase", "TEST", "--", "sh", "-c", bin+" milestone TEST unit && exit 3")
	cmd.Env = cliEnv(p, buildID)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("failing TEST phase: want exit code 3, got %v\n%s", err, out)
	}
	cli(t, p, buildID, "finish", "--result", "failure")
}

// jaegerSpan is a span of a trace as Jaeger returned it, with its string attributes.
type jaegerSpan struct {
	traceID, spanID, parentID, name string
	status                          ptrace.StatusCode
	attrs                           map[string]string
}

// spansOfBuild returns the spans in td whose cicd.pipeline.run.id is buildID.
func spansOfBuild(td ptrace.Traces, buildID string) []jaegerSpan {
	var out []jaegerSpan
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < ss.Len(); k++ {
				s := ss.At(k)
				attrs := map[string]string{}
				s.Attributes().Range(func(k string, v pcommon.Value) bool {
					attrs[k] = v.AsString()
					return true
				})
				if attrs["cicd.pipeline.run.id"] != buildID {
					continue
				}
				out = append(out, jaegerSpan{
					traceID: s.TraceID().String(), spanID: s.SpanID().String(), parentID: s.ParentSpanID().String(),
					name: s.Name(), status: s.Status().Code(), attrs: attrs,
				})
			}
		}
	}
	return out
}

// checkBuildTrace checks, as Jaeger returns them, that every span of buildID is in one trace
// (searched over every service Jaeger knows), and in that trace (GET /api/v3/traces/{id}):
// one build span with the CICD pipeline attributes and result, one span per phase under it,
// step spans under their phase (steps per phase as in wantSteps), and Error status on exactly
// the failedPhase (none when empty).
func checkBuildTrace(t *testing.T, jg *jaeger, pipeline, buildID, result string, wantSteps map[string]int, failedPhase string) {
	t.Helper()
	var traceID string
	eventually(t, 30*time.Second, func() error {
		services, err := jg.services(context.Background())
		if err != nil {
			return err
		}
		ids := map[string]int{}
		for _, svc := range services {
			td, err := jg.findTraces(context.Background(), svc)
			if err != nil {
				return err
			}
			for _, s := range spansOfBuild(td, buildID) {
				ids[s.traceID]++
			}
		}
		if len(ids) != 1 {
			return fmt.Errorf("spans of %s in %d traces, want 1: %v (services %v)", buildID, len(ids), ids, services)
		}
		for id := range ids {
			traceID = id
		}
		return nil
	})

	eventually(t, 30*time.Second, func() error {
		td, err := jg.trace(context.Background(), traceID)
		if err != nil {
			return err
		}
		spans := spansOfBuild(td, buildID)
		var build *jaegerSpan
		phases := map[string]jaegerSpan{}
		for i, s := range spans {
			switch s.attrs["buildmon.span.kind"] {
			case "build":
				if build != nil {
					return fmt.Errorf("two build spans: %s and %s", build.spanID, s.spanID)
				}
				build = &spans[i]
			case "phase":
				ph := s.attrs["cicd.pipeline.task.name"]
				if _, dup := phases[ph]; dup {
					return fmt.Errorf("two spans for phase %s", ph)
				}
				phases[ph] = s
			}
		}
		if build == nil {
			return fmt.Errorf("no build span among %d spans", len(spans))
		}
		if build.parentID != "" {
			return fmt.Errorf("build span has parent %s", build.parentID)
		}
		if build.attrs["cicd.pipeline.name"] != pipeline || build.attrs["cicd.pipeline.result"] != result {
			return fmt.Errorf("build span attributes %v, want pipeline %s and result %s", build.attrs, pipeline, result)
		}
		steps := map[string]int{}
		for _, s := range spans {
			ph := s.attrs["cicd.pipeline.task.name"]
			switch s.attrs["buildmon.span.kind"] {
			case "phase":
				if s.parentID != build.spanID {
					return fmt.Errorf("phase span %s has parent %s, want the build span %s", ph, s.parentID, build.spanID)
				}
				if s.attrs["cicd.pipeline.task.run.id"] != buildID+"/"+ph {
					return fmt.Errorf("phase %s: cicd.pipeline.task.run.id %q", ph, s.attrs["cicd.pipeline.task.run.id"])
				}
				wantResult, wantStatus := "success", ptrace.StatusCodeUnset
				if ph == failedPhase {
					wantResult, wantStatus = "failure", ptrace.StatusCodeError
				}
				if s.attrs["cicd.pipeline.task.run.result"] != wantResult || s.status != wantStatus {
					return fmt.Errorf("phase %s: result %q status %v, want %q %v", ph, s.attrs["cicd.pipeline.task.run.result"], s.status, wantResult, wantStatus)
				}
			case "step":
				parent, ok := phases[ph]
				if !ok || s.parentID != parent.spanID {
					return fmt.Errorf("step span %q has parent %s, not its phase %s's span", s.name, s.parentID, ph)
				}
				steps[ph]++
			}
		}
		if len(phases) != len(wantSteps) {
			return fmt.Errorf("phase spans %d, want %d", len(phases), len(wantSteps))
		}
		for ph, n := range wantSteps {
			if _, ok := phases[ph]; !ok {
				return fmt.Errorf("no span for phase %s", ph)
			}
			if steps[ph] != n {
				return fmt.Errorf("step spans per phase %v, want %v", steps, wantSteps)
			}
		}
		return nil
	})
}

func postOK(t testing.TB, p ports, events ...string) {
	t.Helper()
	code, body, err := postEvents(fmt.Sprintf("http://127.0.0.1:%d/v1/events", p.Events), events...)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("posting events: %d %s %v", code, body, err)
	}
}

// dashboardQueries returns every PromQL expression of dashboards/buildmon.json with the
// template variables set to match everything.
func dashboardQueries(t testing.TB) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "dashboards", "buildmon.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	repl := strings.NewReplacer("$pipeline", ".*", "$build", ".*", "$host", ".*", "$__rate_interval", "1m", "$__range", "1h")
	var out []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out = append(out, repl.Replace(tg.Expr))
		}
	}
	if len(out) < 10 {
		t.Fatalf("dashboard has only %d queries", len(out))
	}
	return out
}

// buildStatus is the part of the status API's build view the tests read.
type buildStatus struct {
	ID       string  `json:"id"`
	Progress float64 `json:"progress"`
	Paused   bool    `json:"paused"`
	Phase    string  `json:"phase"`
	Alerts   []struct {
		Rule  string `json:"rule"`
		Level string `json:"level"`
		State string `json:"state"`
	} `json:"alerts"`
}

func getStatus(p ports, buildID string) (buildStatus, error) {
	var st buildStatus
	code, body, err := httpGet(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/v1/builds/%s", p.Status, buildID))
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("status %s: %d %s", buildID, code, body)
	}
	return st, json.Unmarshal(body, &st)
}

// flood sends bytes over loopback as fast as it can until stop is closed.
func flood(t testing.TB, stop <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, conn)
		conn.Close()
	}()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		<-stop
		conn.Close()
		l.Close()
	}()
	buf := make([]byte, 1<<20)
	go func() {
		for {
			if _, err := conn.Write(buf); err != nil {
				return
			}
		}
	}()
}

// TestCriticalAlertReachesAlertmanagerAndPausesTheBuild floods loopback past a CRITICAL
// network_bandwidth rule: Alertmanager lists the alert with its level, the status API marks
// the build paused, the build client stops the wrapped command (SIGSTOP) until the alert
// clears, and the alert then resolves in Alertmanager.
func TestCriticalAlertReachesAlertmanagerAndPausesTheBuild(t *testing.T) {
	am := startAlertmanager(t)
	p := newPorts(t)
	dir := t.TempDir()
	cfg := renderConfig(t, "backends.yaml.tmpl", dir, backendsConfig{
		Ports: p, Dir: dir, AlertmanagerURL: am.url, FloodBytesPerSecond: 200e6,
	})
	col := startCollector(t, cfg, dir, fmt.Sprintf("http://127.0.0.1:%d/", p.Health))

	const buildID = "e2e-pause"
	cli(t, p, buildID, "start", "--pipeline", "e2e-pause", "--phases", "BUILD")
	counter := filepath.Join(dir, "counter")
	work := exec.Command(cliBinary(t), "phase", "BUILD", "--", "sh", "-c",
		`i=0; while [ $i -lt 1200 ]; do echo $i >> "$0"; i=$((i+1)); sleep 0.05; done`, counter)
	work.Env = cliEnv(p, buildID)
	var workOut syncBuffer
	work.Stdout, work.Stderr = &workOut, &workOut
	if err := work.Start(); err != nil {
		t.Fatal(err)
	}
	var workDone atomic.Bool
	workErr := make(chan error, 1)
	go func() { workErr <- work.Wait(); workDone.Store(true) }()
	defer func() {
		if !workDone.Load() {
			_ = work.Process.Kill()
		}
		if t.Failed() {
			t.Logf("build client output:\n%s", workOut.String())
		}
	}()

	stop := make(chan struct{})
	flood(t, stop)
	stopped := false
	stopFlood := func() {
		if !stopped {
			close(stop)
			stopped = true
		}
	}
	defer stopFlood()

	eventually(t, 30*time.Second, func() error {
		alerts, err := am.alerts(true)
		if err != nil {
			return err
		}
		for _, a := range alerts {
			if a.Labels["alertname"] == "loopback_flood" && strings.EqualFold(a.Labels["severity"], "critical") {
				return nil
			}
		}
		return fmt.Errorf("no critical loopback_flood alert in Alertmanager: %+v", alerts)
	})
	eventually(t, 15*time.Second, func() error {
		st, err := getStatus(p, buildID)
		if err != nil {
			return err
		}
		if !st.Paused {
			return fmt.Errorf("build not paused: %+v", st)
		}
		return nil
	})
	// The wrapped command is stopped: its counter file stops growing.
	eventually(t, 15*time.Second, func() error {
		a := countLines(counter)
		time.Sleep(1500 * time.Millisecond)
		if b := countLines(counter); b != a {
			return fmt.Errorf("command still running while paused (%d -> %d lines)", a, b)
		}
		return nil
	})
	if !strings.Contains(workOut.String(), "paused") {
		t.Fatalf("the build client did not say why it paused:\n%s", workOut.String())
	}

	stopFlood()
	eventually(t, 30*time.Second, func() error {
		st, err := getStatus(p, buildID)
		if err != nil {
			return err
		}
		if st.Paused {
			return fmt.Errorf("build still paused")
		}
		return nil
	})
	eventually(t, 15*time.Second, func() error {
		a := countLines(counter)
		time.Sleep(500 * time.Millisecond)
		if b := countLines(counter); b <= a {
			return fmt.Errorf("command not continued (%d -> %d lines)", a, b)
		}
		return nil
	})
	eventually(t, 30*time.Second, func() error {
		alerts, err := am.alerts(true)
		if err != nil {
			return err
		}
		for _, a := range alerts {
			if a.Labels["alertname"] == "loopback_flood" && (a.EndsAt.IsZero() || a.EndsAt.After(time.Now())) {
				return fmt.Errorf("alert still active in Alertmanager (endsAt %s)", a.EndsAt)
			}
		}
		return nil
	})
	_ = work.Process.Signal(os.Interrupt)
	if err := <-workErr; err != nil {
		t.Logf("load generator stopped: %v", err)
	}
	col.stop()
}

func countLines(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
	}
	return n
}

// buildsInPrometheus runs the scripted build buildID and leaves a second build running, then
// checks what Prometheus holds: the finished build at progress 1, a labeled progress series per
// phase, the host series, and data for every dashboard query.
func buildsInPrometheus(t *testing.T, p ports, prom *prometheus, buildID string) {
	t.Helper()
	scriptedBuild(t, p, buildID)
	// A second build stays in BUILD so that "active build" panels have something to show.
	cli(t, p, buildID+"-active", "start", "--pipeline", "e2e-pipeline")
	postOK(t, p, `{"type":"phase_started","build_id":"`+buildID+`-active","phase":"INIT"}`)

	eventually(t, 30*time.Second, func() error {
		res, err := prom.query(`max(build_progress_ratio{cicd_pipeline_run_id="` + buildID + `"})`)
		if err != nil {
			return err
		}
		if len(res) != 1 || res[0].float() != 1 {
			return fmt.Errorf("build_progress_ratio = %v, want 1", res)
		}
		return nil
	})
	eventually(t, 15*time.Second, func() error {
		res, err := prom.query(`build_phase_progress_ratio{cicd_pipeline_run_id="` + buildID + `"}`)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, s := range res {
			if s.Metric["cicd_pipeline_name"] != "e2e-pipeline" || s.Metric["host_name"] == "" {
				return fmt.Errorf("phase series without pipeline/host labels: %v", s.Metric)
			}
			if s.float() != 1 {
				return fmt.Errorf("phase %s progress %v, want 1", s.Metric["build_phase"], s.float())
			}
			seen[s.Metric["build_phase"]] = true
		}
		for _, ph := range []string{"INIT", "SETUP", "BUILD", "TEST", "CLEANUP"} {
			if !seen[ph] {
				return fmt.Errorf("no build_phase_progress_ratio series for %s in %v", ph, res)
			}
		}
		return nil
	})
	for _, q := range []string{`system_cpu_utilization_ratio`, `system_memory_usage_bytes`, `system_memory_utilization_ratio`} {
		eventually(t, 15*time.Second, func() error {
			res, err := prom.query(q)
			if err != nil {
				return err
			}
			if len(res) == 0 {
				return fmt.Errorf("no host series %s", q)
			}
			return nil
		})
	}

	t.Run("dashboard queries return data", func(t *testing.T) {
		for _, q := range dashboardQueries(t) {
			eventually(t, 20*time.Second, func() error {
				res, err := prom.query(q)
				if err != nil {
					return err
				}
				if len(res) == 0 {
					return fmt.Errorf("dashboard query returned no data: %s", q)
				}
				return nil
			})
		}
	})
}

// The configuration the README recommends for thousands of builds: the collector remote-writes
// into Prometheus (no per-series copy in the collector); the same queries hold.
func TestRemoteWriteIntoPrometheus(t *testing.T) {
	prom := startRemoteWritePrometheus(t)
	p := newPorts(t)
	dir := t.TempDir()
	cfg := renderConfig(t, "backends.yaml.tmpl", dir, backendsConfig{
		Ports: p, Dir: dir, FloodBytesPerSecond: 1e15, RemoteWriteURL: prom.url + "/api/v1/write",
	})
	col := startCollector(t, cfg, dir, fmt.Sprintf("http://127.0.0.1:%d/", p.Health))
	buildsInPrometheus(t, p, prom, "e2e-rw-build")
	// The running build is emitted again every report_interval (1 s) with its duration so far:
	// each re-emission must be a sample Prometheus takes (one it refuses fails the whole
	// request, and the exporter drops it as a permanent error).
	t.Run("every re-emission is stored", func(t *testing.T) {
		q := `count_over_time(build_phase_duration_seconds{cicd_pipeline_run_id="e2e-rw-build-active",build_phase="INIT"}[10m])`
		eventually(t, 30*time.Second, func() error {
			res, err := prom.query(q)
			if err != nil {
				return err
			}
			if len(res) != 1 || res[0].float() < 5 {
				return fmt.Errorf("%s = %v, want at least 5 samples", q, res)
			}
			return nil
		})
		for _, refused := range []string{"duplicate sample for timestamp", "out of order sample", "out of bounds"} {
			if strings.Contains(col.out.String(), refused) {
				t.Errorf("Prometheus refused a remote write request: %q in the collector log", refused)
			}
		}
	})
	col.stop()
}
