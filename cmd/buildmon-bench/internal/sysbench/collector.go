package sysbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/procfs"
)

// Collector is one running instance of the distribution, started by the bench.
type Collector struct {
	Dir     string // working directory: config, log, ./var
	Ports   Ports
	Config  []byte
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	exitErr error
}

// StartCollector writes config into a fresh directory under parent, starts bin with it there,
// with env (KEY=value) added to the bench's environment, and waits until health_check answers
// 200.
func StartCollector(ctx context.Context, bin, parent, name string, config []byte, ports Ports, env ...string) (*Collector, error) {
	dir, err := os.MkdirTemp(parent, name+"-")
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, config, 0o600); err != nil {
		return nil, err
	}
	c := &Collector{Dir: dir, Ports: ports, Config: config, logPath: filepath.Join(dir, "collector.log"), done: make(chan struct{})}
	logFile, err := os.Create(c.logPath)
	if err != nil {
		return nil, err
	}
	c.cmd = exec.Command(bin, "--config", cfgPath)
	c.cmd.Dir = dir
	if len(env) > 0 {
		c.cmd.Env = append(os.Environ(), env...)
	}
	c.cmd.Stdout = logFile
	c.cmd.Stderr = logFile
	if err := c.cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		c.exitErr = c.cmd.Wait()
		_ = logFile.Close()
		close(c.done)
	}()
	if err := c.waitHealthy(ctx, 60*time.Second); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// Pid is the collector's process id.
func (c *Collector) Pid() int { return c.cmd.Process.Pid }

// Running reports whether the process has not exited.
func (c *Collector) Running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// Sample reads the collector's CPU time, memory and I/O from /proc.
func (c *Collector) Sample() (procfs.Sample, error) {
	if !c.Running() {
		return procfs.Sample{}, fmt.Errorf("collector exited: %v\n%s", c.exitErr, c.LogTail(20))
	}
	return procfs.Read("/proc", c.Pid())
}

// URL of a port of this collector.
func URL(port int, path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(port) + path
}

func (c *Collector) waitHealthy(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	url := URL(c.Ports.Health, "/")
	for time.Now().Before(deadline) {
		if !c.Running() {
			return fmt.Errorf("collector exited before it became healthy: %v\n%s", c.exitErr, c.LogTail(30))
		}
		if code, _, err := get(ctx, url); err == nil && code == http.StatusOK {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("collector not healthy at %s within %s\n%s", url, timeout, c.LogTail(30))
}

// Stop sends SIGTERM and waits up to 30 s, then kills the process.
func (c *Collector) Stop() error {
	if !c.Running() {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return errors.New("collector did not stop within 30 s of SIGTERM; killed")
	}
}

// Kill ends the collector with SIGKILL, as a crash would, and waits for it.
func (c *Collector) Kill() {
	if !c.Running() {
		return
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

// LogTail is the last n lines of the collector's output.
func (c *Collector) LogTail(n int) string {
	data, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// httpClient is used for the bench's own reads (health, status API, Prometheus, single posts).
var httpClient = &http.Client{
	Timeout: 10 * time.Second,
	Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: 4,
		DisableCompression:  true,
	},
}

func get(ctx context.Context, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

func post(ctx context.Context, url, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// CloseIdle closes the bench's idle connections (before a collector stops).
func CloseIdle() { httpClient.CloseIdleConnections() }
