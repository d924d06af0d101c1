//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"text/template"
	"time"
)

// ports are the loopback ports one collector instance of a test uses.
type ports struct {
	Events, Status, Prom, Health, OTLP, Telemetry int
}

func newPorts(t testing.TB) ports {
	return ports{Events: freePort(t), Status: freePort(t), Prom: freePort(t), Health: freePort(t), OTLP: freePort(t), Telemetry: freePort(t)}
}

// renderConfig renders the collector config template testdata/<name> with data into dir.
func renderConfig(t testing.TB, name, dir string, data any) string {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join(repoRoot(t), "e2e", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "config.yaml")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := tmpl.Execute(f, data); err != nil {
		t.Fatal(err)
	}
	return out
}

// background is a Debian-packaged backend started by a test.
type background struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

func startBackground(t testing.TB, name string, args ...string) *background {
	t.Helper()
	return startBackgroundEnv(t, nil, name, args...)
}

// startBackgroundEnv is startBackground with env added to the test's environment.
func startBackgroundEnv(t testing.TB, env []string, name string, args ...string) *background {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (make e2e-deps installs it): %v", name, err)
	}
	b := &background{cmd: exec.Command(bin, args...), out: &syncBuffer{}, done: make(chan struct{})}
	if env != nil {
		b.cmd.Env = append(os.Environ(), env...)
	}
	b.cmd.Stdout = b.out
	b.cmd.Stderr = b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		_ = b.cmd.Process.Kill()
		<-b.done
		if t.Failed() {
			t.Logf("%s output:\n%s", name, lastLines(b.out.String(), 40))
		}
	})
	return b
}

func waitReady(t testing.TB, b *background, readyURL string) {
	t.Helper()
	eventually(t, 60*time.Second, func() error {
		select {
		case <-b.done:
			t.Fatalf("backend exited: %s", lastLines(b.out.String(), 30))
		default:
		}
		code, _, err := httpGet(context.Background(), readyURL)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("%s: %d", readyURL, code)
		}
		return nil
	})
}

// prometheus is a real Prometheus 2.x server scraping the collector's exporter.
type prometheus struct{ url string }

func startPrometheus(t testing.TB, scrapeTarget string) *prometheus {
	t.Helper()
	return startPrometheusWith(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: buildmon
    static_configs:
      - targets: ['%s']
`, scrapeTarget))
}

// startRemoteWritePrometheus starts a Prometheus that scrapes nothing and takes samples on its
// remote-write receiver, p.url + "/api/v1/write".
func startRemoteWritePrometheus(t testing.TB) *prometheus {
	t.Helper()
	// The out-of-order window the README asks for: the remote-write exporter's consumers (and a
	// fleet's sending queues) can deliver two batches of one build in the other order.
	return startPrometheusWith(t, "global:\n  evaluation_interval: 1s\nstorage:\n  tsdb:\n    out_of_order_time_window: 10m\n", "--web.enable-remote-write-receiver")
}

func startPrometheusWith(t testing.TB, cfg string, extraArgs ...string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--config.file=" + cfgPath, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(port)}, extraArgs...)
	b := startBackground(t, "prometheus", args...)
	p := &prometheus{url: "http://127.0.0.1:" + strconv.Itoa(port)}
	waitReady(t, b, p.url+"/-/ready")
	return p
}

// promSample is one series of an instant query result.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) float() float64 {
	str, _ := s.Value[1].(string)
	f, _ := strconv.ParseFloat(str, 64)
	return f
}

// query runs an instant PromQL query.
func (p *prometheus) query(q string) ([]promSample, error) {
	code, body, err := httpGet(context.Background(), p.url+"/api/v1/query?query="+url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	var res struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("decoding %q (%d): %w", body, code, err)
	}
	if res.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, res.Error)
	}
	return res.Data.Result, nil
}

// alertmanager is a real Alertmanager 0.25 without clustering.
type alertmanager struct{ url string }

func startAlertmanager(t testing.TB) *alertmanager {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	cfg := `route:
  receiver: blackhole
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: blackhole
`
	cfgPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBackground(t, "prometheus-alertmanager", "--config.file="+cfgPath, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port), "--cluster.listen-address=")
	a := &alertmanager{url: "http://127.0.0.1:" + strconv.Itoa(port)}
	waitReady(t, b, a.url+"/-/ready")
	return a
}

// amAlert is an alert as Alertmanager's v2 API lists it.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

func (a *alertmanager) alerts(active bool) ([]amAlert, error) {
	q := "?active=true&silenced=false&inhibited=false&unprocessed=true"
	if !active {
		q = ""
	}
	code, body, err := httpGet(context.Background(), a.url+"/api/v2/alerts"+q)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("alertmanager alerts: %d %s", code, body)
	}
	var out []amAlert
	return out, json.Unmarshal(body, &out)
}
