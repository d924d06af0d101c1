//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buildmon/buildmon/internal/wire"
)

// hostagentBinary is the stock host agent (contrib hostmetricsreceiver; `make hostagent`).
func hostagentBinary(t testing.TB) string {
	t.Helper()
	p := os.Getenv("BUILDMON_HOSTAGENT")
	if p == "" {
		p = filepath.Join(repoRoot(t), "_build-hostagent", "otelcol-hostagent")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("host agent binary %s not found (run `make hostagent`): %v", p, err)
	}
	return p
}

// missingFigures names the figures a report's or status's resources lack.
func missingFigures(r wire.PhaseResources) []string {
	var out []string
	for name, set := range map[string]bool{"cpu avg": r.CPUUtilizationAvg != nil, "cpu max": r.CPUUtilizationMax != nil,
		"memory": r.MemoryUsageMaxBytes != nil, "disk read": r.DiskReadBytes != nil, "disk write": r.DiskWriteBytes != nil,
		"network transmit": r.NetworkTransmitBytes != nil, "network receive": r.NetworkReceiveBytes != nil,
		"read operations": r.DiskReadOperations != nil, "write operations": r.DiskWriteOperations != nil} {
		if !set {
			out = append(out, name)
		}
	}
	return out
}

// phaseReport reads a phase's report from the status API.
func phaseReport(p ports, buildID, phase string) (wire.PhaseResources, error) {
	var rep struct {
		Resources wire.PhaseResources `json:"resources"`
	}
	code, body, err := httpGet(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/v1/builds/%s/phases/%s/report", p.Status, buildID, phase))
	if err != nil {
		return rep.Resources, err
	}
	if code != http.StatusOK {
		return rep.Resources, fmt.Errorf("phase report: %d %s", code, body)
	}
	return rep.Resources, json.Unmarshal(body, &rep)
}

// spin keeps every CPU busy until stop is closed.
func spin(stop <-chan struct{}) {
	for range runtime.NumCPU() + 1 {
		go func() {
			x := 0
			for {
				select {
				case <-stop:
					return
				default:
					for i := 0; i < 1e6; i++ {
						x += i
					}
				}
			}
		}()
	}
}

// TestStandardHostMetricsFromHostmetricsReceiver runs the distribution with its own host
// scraper off and a stock collector (contrib hostmetricsreceiver v0.160.0, resourceprocessor
// setting host.name, otlphttpexporter) sending the host's metrics to its OTLP receiver. Under
// CPU load the cpu_usage rule goes pending and fires, its CRITICAL level pauses the host's
// build, and the phase report carries CPU, memory, disk, network and IO figures computed from
// the hostmetrics data.
func TestStandardHostMetricsFromHostmetricsReceiver(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	p := newPorts(t)
	dir := t.TempDir()
	cfg := renderConfig(t, "stdhost.yaml.tmpl", dir, map[string]any{"Ports": p, "Dir": dir, "CPUThreshold": 0.9})
	startCollector(t, cfg, dir, fmt.Sprintf("http://127.0.0.1:%d/", p.Health))

	agentDir := t.TempDir()
	agentCfg := renderConfig(t, "hostagent.yaml.tmpl", agentDir, map[string]any{"HostName": host, "OTLPPort": p.OTLP})
	agent := exec.Command(hostagentBinary(t), "--config", agentCfg)
	var agentOut syncBuffer
	agent.Stdout, agent.Stderr = &agentOut, &agentOut
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agent.Process.Signal(os.Interrupt)
		_ = agent.Wait()
		if t.Failed() {
			t.Logf("host agent output:\n%s", lastLines(agentOut.String(), 40))
		}
	})

	const buildID = "e2e-stdhost"
	cli(t, p, buildID, "start", "--pipeline", "e2e-stdhost", "--phases", "BUILD")
	gate := filepath.Join(dir, "gate")
	out := filepath.Join(dir, "written")
	// The phase waits for the gate (the test opens it once the build was paused and the
	// load ended), then writes 32 MiB to disk.
	work := exec.Command(cliBinary(t), "phase", "BUILD", "--", "sh", "-c",
		`while [ ! -f "$0" ]; do sleep 0.2; done; dd if=/dev/zero of="$1" bs=1M count=32 conv=fsync 2>/dev/null; sync; sleep 3`, gate, out)
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
	spin(stop)
	stopped := false
	stopLoad := func() {
		if !stopped {
			close(stop)
			stopped = true
		}
	}
	defer stopLoad()

	var sawPending, sawFiring bool
	eventually(t, 60*time.Second, func() error {
		st, err := getStatus(p, buildID)
		if err != nil {
			return err
		}
		for _, a := range st.Alerts {
			if a.Rule == "hot_cpu" {
				sawPending = sawPending || a.State == "pending"
				sawFiring = sawFiring || (a.State == "firing" && a.Level == "CRITICAL")
			}
		}
		if !sawFiring || !st.Paused {
			return fmt.Errorf("hot_cpu not firing CRITICAL with the build paused yet: %+v", st)
		}
		return nil
	})
	if !sawPending {
		t.Errorf("hot_cpu fired without being seen pending (for: 3s)")
	}
	stopLoad()
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() error {
		if !workDone.Load() {
			return fmt.Errorf("the phase has not ended")
		}
		return nil
	})
	if err := <-workErr; err != nil {
		t.Fatalf("buildmon phase: %v", err)
	}
	var rep wire.PhaseResources
	eventually(t, 15*time.Second, func() error {
		var err error
		rep, err = phaseReport(p, buildID, "BUILD")
		if err != nil {
			return err
		}
		if m := missingFigures(rep); len(m) > 0 {
			return fmt.Errorf("phase report lacks %v: %+v", m, rep)
		}
		// With phase_resources enabled the processor's figures replace the exporter's own
		// when they arrive (with the build's next metrics after the phase ended).
		if rep.Source != "processor" {
			return fmt.Errorf("phase report source %q, want processor", rep.Source)
		}
		return nil
	})
	if *rep.CPUUtilizationMax < 0.9 {
		t.Errorf("phase CPU max %v under load, want at least 0.9", *rep.CPUUtilizationMax)
	}
	if *rep.MemoryUsageMaxBytes <= 0 || *rep.DiskWriteBytes < 32<<20 || *rep.DiskWriteOperations <= 0 || *rep.NetworkTransmitBytes+*rep.NetworkReceiveBytes <= 0 {
		t.Errorf("phase report figures: memory %d, disk write %d (wrote 32 MiB), write operations %d, network %d+%d",
			*rep.MemoryUsageMaxBytes, *rep.DiskWriteBytes, *rep.DiskWriteOperations, *rep.NetworkTransmitBytes, *rep.NetworkReceiveBytes)
	}
	t.Logf("phase report: cpu avg %.2f max %.2f, memory %d, disk %d/%d B, ops %d/%d, network %d/%d B",
		*rep.CPUUtilizationAvg, *rep.CPUUtilizationMax, *rep.MemoryUsageMaxBytes, *rep.DiskReadBytes, *rep.DiskWriteBytes, *rep.DiskReadOperations, *rep.DiskWriteOperations, *rep.NetworkTransmitBytes, *rep.NetworkReceiveBytes)
}

// notWholeDisk matches the block devices the buildmon receiver leaves out by default:
// partitions, device-mapper and RAID volumes, loop and RAM devices.
var notWholeDisk = regexp.MustCompile(`^(loop|ram|zram|sr|fd)\d+$|^(sd|hd|vd|xvd)[a-z]+\d+$|^(nvme\d+n\d+|mmcblk\d+)p\d+$|^(dm|md)-?\d+$`)

// diskstats returns the bytes written and write operations completed, summed over the whole
// disks of /proc/diskstats (sectors of 512 bytes).
func diskstats(t testing.TB) (bytes, ops int64) {
	t.Helper()
	f, err := os.Open("/proc/diskstats")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 || notWholeDisk.MatchString(fs[2]) {
			continue
		}
		if _, err := os.Stat("/sys/block/" + fs[2]); err != nil {
			continue // a partition
		}
		w, _ := strconv.ParseInt(fs[7], 10, 64)
		sectors, _ := strconv.ParseInt(fs[9], 10, 64)
		ops += w
		bytes += sectors * 512
	}
	return bytes, ops
}

// TestDefaultConfigPhaseReportMatchesDiskstats runs the default config (testdata/config.yaml,
// on free ports, the processor's phase_resources off) and compiles a real program under
// `buildmon phase` with an empty Go build cache, syncing before the phase ends. The phase
// report (the checkpoint exporter's own figures, source host_metrics), the build report and
// the status API carry every resource figure, and the report's disk-write bytes and operations equal the
// increase of /proc/diskstats over the whole disks during the phase, within one resource
// scrape interval's worth (5 s at the busiest rate the test saw).
func TestDefaultConfigPhaseReportMatchesDiskstats(t *testing.T) {
	if _, err := os.Stat("/proc/diskstats"); err != nil {
		t.Skip("needs /proc/diskstats")
	}
	p := newPorts(t)
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfgText := strings.NewReplacer(
		"127.0.0.1:13133", fmt.Sprintf("127.0.0.1:%d", p.Health),
		"127.0.0.1:4320", fmt.Sprintf("127.0.0.1:%d", p.Events),
		"127.0.0.1:4321", fmt.Sprintf("127.0.0.1:%d", p.Status),
		"127.0.0.1:9464", fmt.Sprintf("127.0.0.1:%d", p.Prom),
		"port: 8888", fmt.Sprintf("port: %d", p.Telemetry),
	).Replace(string(raw))
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	startCollector(t, cfg, dir, fmt.Sprintf("http://127.0.0.1:%d/", p.Health))
	const interval = 5 * time.Second // host.resources.collection_interval of the default config

	// A host sample must exist before the phase starts.
	time.Sleep(interval + time.Second)
	const buildID = "e2e-diskstats"
	cli(t, p, buildID, "start", "--pipeline", "e2e-diskstats", "--phases", "BUILD")

	work := t.TempDir()
	src := filepath.Join(work, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nimport (\n\t\"fmt\"\n\t\"net/http\"\n)\n\nfunc main() { fmt.Println(http.StatusOK) }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte("module example.com/diskstats\n\ngo 1.22\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the test compiles with the go command: %v", err)
	}
	// Sample /proc/diskstats while the phase runs to know the busiest rate.
	type reading struct {
		at         time.Time
		bytes, ops int64
	}
	var readings []reading
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				b, o := diskstats(t)
				readings = append(readings, reading{time.Now(), b, o})
			}
		}
	}()
	b0, o0 := diskstats(t)
	start := time.Now()
	cmd := exec.Command(cliBinary(t), "phase", "BUILD", "--", "sh", "-c",
		`cd "$0" && GOCACHE="$1" GOFLAGS=-mod=mod "$2" build -o "$0/prog" . && sync && sleep 6`, work, filepath.Join(work, "cache"), goBin)
	cmd.Env = cliEnv(p, buildID)
	outp, err := cmd.CombinedOutput()
	b1, o1 := diskstats(t)
	close(done)
	<-sampled
	if err != nil {
		t.Fatalf("buildmon phase: %v\n%s", err, outp)
	}
	cli(t, p, buildID, "finish", "--result", "success")
	readings = append([]reading{{start, b0, o0}}, readings...)
	readings = append(readings, reading{time.Now(), b1, o1})
	// The busiest interval: the largest increase over any window of one scrape interval.
	var tolBytes, tolOps int64
	for i := range readings {
		for j := i + 1; j < len(readings) && readings[j].at.Sub(readings[i].at) <= interval; j++ {
			tolBytes = max(tolBytes, readings[j].bytes-readings[i].bytes)
			tolOps = max(tolOps, readings[j].ops-readings[i].ops)
		}
	}
	wantBytes, wantOps := b1-b0, o1-o0

	var rep wire.PhaseResources
	eventually(t, 15*time.Second, func() error {
		var err error
		rep, err = phaseReport(p, buildID, "BUILD")
		if err != nil {
			return err
		}
		if m := missingFigures(rep); len(m) > 0 {
			return fmt.Errorf("phase report lacks %v: %+v", m, rep)
		}
		return nil
	})
	if rep.Source != "host_metrics" {
		t.Errorf("phase report source %q: the default config leaves phase_resources off, so the exporter's own figures (host_metrics) are expected", rep.Source)
	}
	t.Logf("diskstats: %d B in %d writes (tolerance %d B, %d writes); report: %d B in %d writes; phase %.1f s",
		wantBytes, wantOps, tolBytes, tolOps, *rep.DiskWriteBytes, *rep.DiskWriteOperations, time.Since(start).Seconds())
	if wantBytes < 1<<20 {
		t.Errorf("the build wrote only %d bytes to disk; the test needs a real write", wantBytes)
	}
	if d := *rep.DiskWriteBytes - wantBytes; d > tolBytes || -d > tolBytes {
		t.Errorf("report disk_write_bytes %d, diskstats %d: off by %d, more than one interval's %d", *rep.DiskWriteBytes, wantBytes, d, tolBytes)
	}
	if d := *rep.DiskWriteOperations - wantOps; d > tolOps || -d > tolOps {
		t.Errorf("report disk_write_operations %d, diskstats %d: off by %d, more than one interval's %d", *rep.DiskWriteOperations, wantOps, d, tolOps)
	}

	t.Run("build report and status API carry every figure", func(t *testing.T) {
		var build struct {
			Efficiency wire.PhaseResources `json:"resource_efficiency"`
		}
		eventually(t, 15*time.Second, func() error {
			code, body, err := httpGet(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/v1/builds/%s/report", p.Status, buildID))
			if err != nil || code != http.StatusOK {
				return fmt.Errorf("build report: %d %s %v", code, body, err)
			}
			if err := json.Unmarshal(body, &build); err != nil {
				return err
			}
			if m := missingFigures(build.Efficiency); len(m) > 0 {
				return fmt.Errorf("build report lacks %v: %s", m, body)
			}
			return nil
		})
		var st struct {
			Host   map[string]any `json:"host_resources"`
			Phases []struct {
				Name      string               `json:"name"`
				Resources *wire.PhaseResources `json:"resources"`
			} `json:"phases"`
		}
		code, body, err := httpGet(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/v1/builds/%s", p.Status, buildID))
		if err != nil || code != http.StatusOK {
			t.Fatalf("status: %d %s %v", code, body, err)
		}
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Phases) != 1 || st.Phases[0].Resources == nil {
			t.Errorf("status phases lack resources: %s", body)
		} else if m := missingFigures(*st.Phases[0].Resources); len(m) > 0 || !reflect.DeepEqual(*st.Phases[0].Resources, rep) {
			t.Errorf("status phase resources %+v (lacking %v), want the phase report's %+v", *st.Phases[0].Resources, m, rep)
		}
		for _, k := range []string{"cpu_utilization", "memory_used_bytes", "filesystem_utilization",
			"network_transmit_bytes_per_second", "network_receive_bytes_per_second",
			"disk_read_operations_per_second", "disk_write_operations_per_second"} {
			if _, ok := st.Host[k]; !ok {
				t.Errorf("status host_resources lacks %s: %s", k, body)
			}
		}
	})
}
