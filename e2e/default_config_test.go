//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDefaultConfig starts the distribution exactly as `make run` does: the default config
// serves host metrics on the Prometheus endpoint within seconds, and SIGTERM ends it with 0.
func TestDefaultConfig(t *testing.T) {
	cfg := filepath.Join(repoRoot(t), "testdata", "config.yaml")
	c := startCollector(t, cfg, t.TempDir(), "http://127.0.0.1:13133/")

	const prom = "http://127.0.0.1:9464/metrics"
	for _, metric := range []string{"system_cpu_utilization", "system_memory_usage", "system_memory_utilization"} {
		eventually(t, 15*time.Second, func() error {
			_, err := scrapeMetric(prom, metric, `host_name="`)
			return err
		})
	}
	// Resource metrics come every 5 s by default.
	for _, metric := range []string{"system_network_io", "system_filesystem_utilization"} {
		eventually(t, 20*time.Second, func() error {
			_, err := scrapeMetric(prom, metric)
			return err
		})
	}
	t.Run("events move build progress on the Prometheus endpoint", func(t *testing.T) {
		const events = "http://127.0.0.1:4320/v1/events"
		progress := func() (float64, error) {
			lines, err := scrapeMetric(prom, "build_progress_ratio", `cicd_pipeline_run_id="default-e2e"`)
			if err != nil {
				return 0, err
			}
			f := strings.Fields(lines[0])
			return strconv.ParseFloat(f[len(f)-1], 64)
		}
		post := func(evs ...string) {
			code, body, err := postEvents(events, evs...)
			if err != nil || code != 202 {
				t.Fatalf("post: %d %s %v", code, body, err)
			}
		}
		post(`{"type":"build_started","build_id":"default-e2e","pipeline":"e2e","phases":[{"name":"BUILD","steps":4},{"name":"TEST","steps":1}]}`,
			`{"type":"phase_started","build_id":"default-e2e","phase":"BUILD"}`)
		post(`{"type":"step_completed","build_id":"default-e2e","phase":"BUILD","count":2}`)
		var mid float64
		eventually(t, 10*time.Second, func() error {
			p, err := progress()
			if err != nil {
				return err
			}
			if p <= 0 || p >= 1 {
				return fmt.Errorf("progress %v, want between 0 and 1", p)
			}
			mid = p
			return nil
		})
		post(`{"type":"step_completed","build_id":"default-e2e","phase":"BUILD","count":2}`,
			`{"type":"phase_completed","build_id":"default-e2e","phase":"BUILD"}`)
		eventually(t, 10*time.Second, func() error {
			p, err := progress()
			if err != nil {
				return err
			}
			if p <= mid {
				return fmt.Errorf("progress %v did not move past %v", p, mid)
			}
			return nil
		})
		post(`{"type":"phase_started","build_id":"default-e2e","phase":"TEST"}`,
			`{"type":"step_completed","build_id":"default-e2e","phase":"TEST"}`,
			`{"type":"phase_completed","build_id":"default-e2e","phase":"TEST"}`,
			`{"type":"build_finished","build_id":"default-e2e","result":"success"}`)
		eventually(t, 10*time.Second, func() error {
			p, err := progress()
			if err != nil {
				return err
			}
			if p != 1 {
				return fmt.Errorf("progress %v after the build finished, want 1", p)
			}
			return nil
		})
	})
	t.Run("pprof is not on by default", func(t *testing.T) {
		for _, a := range listeningAddrs(t, c.cmd.Process.Pid) {
			if strings.HasSuffix(a, ":1777") {
				t.Errorf("the default config serves pprof on %s; it is a debugging aid to switch on by hand", a)
			}
		}
		if conn, err := net.DialTimeout("tcp", "127.0.0.1:1777", time.Second); err == nil {
			conn.Close()
			t.Errorf("something answers on pprof's port 127.0.0.1:1777")
		}
	})
	t.Run("binds only loopback", func(t *testing.T) {
		addrs := listeningAddrs(t, c.cmd.Process.Pid)
		if len(addrs) < 4 {
			t.Fatalf("found only %d listening sockets: %v", len(addrs), addrs)
		}
		for _, a := range addrs {
			if !strings.HasPrefix(a, "127.") {
				t.Errorf("the default config listens on %s", a)
			}
		}
	})
	c.stop()
}

// listeningAddrs lists the local addresses of the TCP sockets the process listens on, read
// from /proc (IPv4 and IPv6).
func listeningAddrs(t testing.TB, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] { // 0A = LISTEN
				continue
			}
			out = append(out, hexAddr(fields[1]))
		}
		f.Close()
	}
	return out
}

// hexAddr turns /proc/net/tcp's "0100007F:1F90" into "127.0.0.1:8080"; IPv6 addresses are
// shown as "::" when unspecified and "::1" for loopback-mapped ones, else "ipv6:<hex>".
func hexAddr(s string) string {
	host, port, _ := strings.Cut(s, ":")
	p, _ := strconv.ParseUint(port, 16, 16)
	if len(host) == 8 {
		v, _ := strconv.ParseUint(host, 16, 32)
		return fmt.Sprintf("%d.%d.%d.%d:%d", v&0xff, v>>8&0xff, v>>16&0xff, v>>24, p)
	}
	switch host {
	case "00000000000000000000000000000000":
		return fmt.Sprintf("[::]:%d", p)
	case "00000000000000000000000001000000":
		return fmt.Sprintf("127.[::1]:%d", p) // loopback
	case "0000000000000000FFFF00000100007F":
		return fmt.Sprintf("127.0.0.1(v4-mapped):%d", p)
	}
	return "ipv6:" + host
}
