//go:build e2e

// Package e2e runs the ocb-built distribution (BUILDMON_DIST, built by `make e2e`) against real
// ports and backends on 127.0.0.1.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
		t.Fatal("cannot locate the e2e package")
	}
	return filepath.Dir(filepath.Dir(file))
}

// distBinary is the collector under test.
func distBinary(t testing.TB) string {
	t.Helper()
	p := os.Getenv("BUILDMON_DIST")
	if p == "" {
		p = filepath.Join(repoRoot(t), "_build", "otelcol-buildmon")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("collector binary %s not found (run `make e2e`): %v", p, err)
	}
	return p
}

// cliBinary is the build client under test.
func cliBinary(t testing.TB) string {
	t.Helper()
	p := os.Getenv("BUILDMON_CLI")
	if p == "" {
		p = filepath.Join(repoRoot(t), "bin", "buildmon")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("build client %s not found (run `make e2e`): %v", p, err)
	}
	return p
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on right now.
var freePort = testproc.FreePort

// syncBuffer collects a process's output for the test log.
type syncBuffer = testproc.Buffer

// collector is one running instance of the distribution (or of binary, when set).
type collector struct {
	t          testing.TB
	binary     string
	env        []string // added to the environment at every start
	cmd        *exec.Cmd
	dir        string
	configPath string
	healthURL  string
	out        *syncBuffer
	done       chan struct{}
	exitErr    error
}

// startCollector starts the distribution with configPath in the working directory dir and
// waits until health_check (healthURL) reports it ready.
func startCollector(t testing.TB, configPath, dir, healthURL string, env ...string) *collector {
	t.Helper()
	return startCollectorBinary(t, "", configPath, dir, healthURL, env...)
}

// startCollectorBinary is startCollector with another collector binary ("" is the
// distribution), e.g. the fleet's router.
func startCollectorBinary(t testing.TB, binary, configPath, dir, healthURL string, env ...string) *collector {
	t.Helper()
	c := &collector{t: t, binary: binary, dir: dir, configPath: configPath, healthURL: healthURL, env: env, out: &syncBuffer{}}
	c.start(env...)
	t.Cleanup(func() {
		if c.running() {
			_ = c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("collector output:\n%s", lastLines(c.out.String(), 80))
		}
	})
	return c
}

func (c *collector) start(env ...string) {
	c.t.Helper()
	bin := c.binary
	if bin == "" {
		bin = distBinary(c.t)
	}
	c.cmd = exec.Command(bin, "--config", c.configPath)
	c.cmd.Dir = c.dir
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stdout = c.out
	c.cmd.Stderr = c.out
	c.done = make(chan struct{})
	if err := c.cmd.Start(); err != nil {
		c.t.Fatalf("starting collector: %v", err)
	}
	go func() {
		c.exitErr = c.cmd.Wait()
		close(c.done)
	}()
	c.waitHealthy(60 * time.Second)
}

func (c *collector) running() bool {
	select {
	case <-c.done:
		return false
	default:
		return c.cmd != nil
	}
}

func (c *collector) waitHealthy(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !c.running() {
			c.t.Fatalf("collector exited before it became healthy: %v\n%s", c.exitErr, lastLines(c.out.String(), 60))
		}
		resp, err := http.Get(c.healthURL)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("collector not healthy at %s within %s\n%s", c.healthURL, timeout, lastLines(c.out.String(), 60))
}

// stop sends SIGTERM and requires a clean exit (code 0) within the timeout.
func (c *collector) stop() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		c.t.Fatalf("collector did not stop within 30s of SIGTERM")
	}
	if c.exitErr != nil {
		c.t.Fatalf("collector exit after SIGTERM: %v\n%s", c.exitErr, lastLines(c.out.String(), 40))
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 0 {
		c.t.Fatalf("collector exit code %d after SIGTERM", code)
	}
}

// kill ends the collector with SIGKILL, as a crash would.
func (c *collector) kill() {
	c.t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// restart starts the same configuration again after stop or kill, with the environment it
// was started with and env added.
func (c *collector) restart(env ...string) {
	c.t.Helper()
	c.start(append(append([]string(nil), c.env...), env...)...)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// eventually polls cond until it returns nil or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// httpGet returns the status code and body of a GET.
func httpGet(ctx context.Context, url string, header ...string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// postEvents posts an NDJSON (several events) or JSON (one event) body to the events API.
func postEvents(url string, events ...string) (int, string, error) {
	ct := "application/json"
	body := events[0]
	if len(events) > 1 {
		ct = "application/x-ndjson"
		body = strings.Join(events, "\n") + "\n"
	}
	resp, err := http.Post(url, ct, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// scrapeMetric returns the Prometheus exposition lines of metricPrefix whose labels contain
// every label in want (`name="value"`).
func scrapeMetric(url, metricPrefix string, want ...string) ([]string, error) {
	code, body, err := httpGet(context.Background(), url)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d", url, code)
	}
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, metricPrefix) {
			continue
		}
		ok := true
		for _, w := range want {
			if !strings.Contains(line, w) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no series " + metricPrefix + " " + strings.Join(want, ","))
	}
	return out, nil
}
