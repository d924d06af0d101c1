//go:build package

package packagetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/buildmon/buildmon/internal/testproc"
)

// repoRoot is the repository root, found from this file's location.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the packagetest package")
	}
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// packageDir is the dist/ directory written by `make package`.
func packageDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("BUILDMON_PACKAGE_DIR")
	if d == "" {
		d = filepath.Join(repoRoot(t), "dist")
	}
	if _, err := os.Stat(filepath.Join(d, "SHA256SUMS")); err != nil {
		t.Fatalf("no packages in %s (run `make package-test`): %v", d, err)
	}
	return d
}

// packageVersion is the version `make package` stamped on the packages.
func packageVersion(t testing.TB) string {
	t.Helper()
	if v := os.Getenv("BUILDMON_PACKAGE_VERSION"); v != "" {
		return v
	}
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "builder-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "  version: "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no dist.version in builder-config.yaml")
	return ""
}

// onlyFile returns the one file of dir matching pattern.
func onlyFile(t testing.TB, dir, pattern string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(m) != 1 {
		t.Fatalf("want exactly one %s in %s, found %v (%v)", pattern, dir, m, err)
	}
	return m[0]
}

// run runs a command and returns its stdout; it fails the test with stderr if the command fails.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on right now.
var freePort = testproc.FreePort

// unprivileged is who a collector under test runs as: uid and gid, and the command prefix
// that switches to them. As root that is setpriv; a test that does not run as root is already
// unprivileged and runs the command as itself.
type unprivileged struct {
	uid, gid int
	prefix   []string
}

func asUser(t testing.TB, uid, gid int) unprivileged {
	t.Helper()
	if os.Geteuid() != 0 {
		return unprivileged{uid: os.Geteuid(), gid: os.Getegid()}
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) is needed to drop root: %v", err)
	}
	return unprivileged{uid: uid, gid: gid, prefix: []string{
		"setpriv", "--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--clear-groups", "--",
	}}
}

// nobody is the unprivileged account of the system (nobody:nogroup on Debian).
func nobody(t testing.TB) unprivileged {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("looking up nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return asUser(t, uid, gid)
}

// syncBuffer collects a process's output for the test log.
type syncBuffer = testproc.Buffer

// collectorPorts are free loopback ports for every listener of the packaged configs, so that the
// test does not depend on 13133, 4320, … being free on a shared machine.
type collectorPorts struct {
	health, events, status, prometheus, telemetry int
}

func newCollectorPorts(t testing.TB) collectorPorts {
	return collectorPorts{freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)}
}

// overrides are --config=yaml: flags that move the config's listeners to p, merged over the
// config under test and changing nothing else.
func (p collectorPorts) overrides() []string {
	return []string{
		fmt.Sprintf("--config=yaml:extensions::health_check::endpoint: 127.0.0.1:%d", p.health),
		fmt.Sprintf("--config=yaml:receivers::buildmon::events::endpoint: 127.0.0.1:%d", p.events),
		fmt.Sprintf("--config=yaml:exporters::checkpoint::status::endpoint: 127.0.0.1:%d", p.status),
		fmt.Sprintf("--config=yaml:exporters::prometheus::endpoint: 127.0.0.1:%d", p.prometheus),
		fmt.Sprintf("--config=yaml:service::telemetry::metrics::readers: [{pull: {exporter: {prometheus: {host: 127.0.0.1, port: %d}}}}]", p.telemetry),
	}
}

// startCollector starts argv (as who) with env and stops it at the end of the test.
func startCollector(t *testing.T, who unprivileged, env []string, argv ...string) *syncBuffer {
	t.Helper()
	full := append(append([]string{}, who.prefix...), argv...)
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Env = env
	cmd.Dir = os.TempDir()
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", full, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("collector output:\n%s", out.String())
		}
	})
	go func() {
		<-exited
		if cmd.ProcessState != nil && !cmd.ProcessState.Success() {
			t.Logf("collector exited: %v", cmd.ProcessState)
		}
	}()
	return out
}

// httpGet returns the status code and body of GET url (0 and the error text when unreachable).
func httpGet(ctx context.Context, url string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, string(b)
}

// waitFor polls check every 250 ms until it returns true or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, check func(ctx context.Context) (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	last := ""
	for {
		reqCtx, reqCancel := context.WithTimeout(ctx, 2*time.Second)
		ok, detail := check(reqCtx)
		reqCancel()
		if ok {
			return
		}
		last = detail
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s; last: %s", what, timeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitHealthyWithHostMetrics waits until the health check answers 200 and the host's metrics
// are in both the Prometheus endpoint and the status API's /v1/hosts.
func waitHealthyWithHostMetrics(t *testing.T, p collectorPorts) {
	t.Helper()
	waitFor(t, 60*time.Second, "health check", func(ctx context.Context) (bool, string) {
		code, body := httpGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/", p.health))
		return code == http.StatusOK && strings.Contains(body, "Server available"), fmt.Sprintf("%d %s", code, body)
	})
	waitFor(t, 30*time.Second, "host metrics on the Prometheus endpoint", func(ctx context.Context) (bool, string) {
		code, body := httpGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/metrics", p.prometheus))
		return code == http.StatusOK && hasSample(body, "system_memory_utilization") && hasSample(body, "system_cpu_utilization"),
			fmt.Sprintf("%d, %d bytes", code, len(body))
	})
	waitFor(t, 30*time.Second, "the host in the status API", func(ctx context.Context) (bool, string) {
		code, body := httpGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/v1/hosts", p.status))
		return code == http.StatusOK && strings.Contains(body, `"memory_total_bytes"`) && !strings.Contains(body, `"count":0`), body
	})
}

// hasSample reports whether a Prometheus text page has a sample of a metric whose name starts
// with prefix.
func hasSample(page, prefix string) bool {
	for _, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}
