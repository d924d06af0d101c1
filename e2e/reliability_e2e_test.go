//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// soak reports whether the long settings were asked for (`make soak`).
func soak() bool { return os.Getenv("BUILDMON_SOAK") != "" }

type relConfig struct {
	Ports              ports
	Dir                string
	CheckpointDir      string
	CheckpointInterval string
	Token              string
	CertFile, KeyFile  string
	EncryptionKeyFile  string
	MaxBuilds          int
	MaxConnections     int
	EventsPerSecond    int
	Burst              int
	OTLPReceiver       bool
	ForwardTo          string
	ETAStorage         bool // the processor keeps its ETA history in file_storage
}

func startRel(t testing.TB, cfg relConfig) *collector {
	t.Helper()
	if cfg.CheckpointDir == "" {
		cfg.CheckpointDir = filepath.Join(cfg.Dir, "checkpoints")
	}
	path := renderConfig(t, "reliability.yaml.tmpl", cfg.Dir, cfg)
	return startCollector(t, path, cfg.Dir, fmt.Sprintf("http://127.0.0.1:%d/", cfg.Ports.Health))
}

// apiClient talks to the events and status APIs, optionally over TLS and with a token.
type apiClient struct {
	http          *http.Client
	events, statu string
	token         string
}

func (c *apiClient) do(method, url, contentType, body, token string) (int, string, http.Header, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, nil
}

func (c *apiClient) post(events ...string) (int, string, http.Header, error) {
	ct, body := "application/json", events[0]
	if len(events) > 1 {
		ct, body = "application/x-ndjson", strings.Join(events, "\n")+"\n"
	}
	return c.do(http.MethodPost, c.events+"/v1/events", ct, body, c.token)
}

func (c *apiClient) status(buildID string) (int, string) {
	code, body, _, err := c.do(http.MethodGet, c.statu+"/v1/builds/"+buildID, "", "", c.token)
	if err != nil {
		return 0, err.Error()
	}
	return code, body
}

func newAPIClient(p ports, scheme string) *apiClient {
	tr := &http.Transport{MaxIdleConnsPerHost: 512, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // self-signed test certificate
	return &apiClient{
		http:   &http.Client{Transport: tr, Timeout: 10 * time.Second},
		events: fmt.Sprintf("%s://127.0.0.1:%d", scheme, p.Events),
		statu:  fmt.Sprintf("http://127.0.0.1:%d", p.Status),
	}
}

// selfSignedCert writes a certificate and key for 127.0.0.1 into dir.
func selfSignedCert(t testing.TB, dir string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// encryptionKey writes a random AES-256 key (hex) into dir.
func encryptionKey(t testing.TB, dir string) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "checkpoint.key")
	if err := os.WriteFile(p, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAccessControl: with bearertokenauth on the events and status APIs and TLS on the events
// API, requests without or with a wrong token get 401 and change nothing, plaintext fails, the
// audit log records every status request, and encrypted checkpoints hold no plaintext ids.
func TestAccessControl(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSignedCert(t, dir)
	p := newPorts(t)
	const token = "e2e-secret-token"
	col := startRel(t, relConfig{Ports: p, Dir: dir, Token: token, CertFile: cert, KeyFile: key,
		EncryptionKeyFile: encryptionKey(t, dir), CheckpointInterval: "200ms"})
	c := newAPIClient(p, "https")
	const buildID, pipeline = "secret-build-7f3a", "secret-pipeline-91c2"

	c.token = token
	if code, body, _, err := c.post(
		`{"type":"build_started","build_id":"`+buildID+`","pipeline":"`+pipeline+`","phases":[{"name":"BUILD","steps":4}]}`,
		`{"type":"phase_started","build_id":"`+buildID+`","phase":"BUILD"}`,
		`{"type":"step_completed","build_id":"`+buildID+`","phase":"BUILD"}`); err != nil || code != http.StatusAccepted {
		t.Fatalf("authorized post: %d %s %v", code, body, err)
	}
	var before string
	eventually(t, 15*time.Second, func() error {
		code, body := c.status(buildID)
		if code != http.StatusOK {
			return fmt.Errorf("status %d %s", code, body)
		}
		var st buildStatus
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			return err
		}
		if st.Progress <= 0 {
			return fmt.Errorf("progress not yet visible: %s", body)
		}
		before = body
		return nil
	})

	step := `{"type":"step_completed","build_id":"` + buildID + `","phase":"BUILD"}`
	for name, tok := range map[string]string{"no token": "", "wrong token": "not-the-token"} {
		c.token = tok
		if code, body, _, err := c.post(step); err != nil || code != http.StatusUnauthorized {
			t.Errorf("events API with %s: %d %s %v, want 401", name, code, body, err)
		}
		if code, body := c.status(buildID); code != http.StatusUnauthorized {
			t.Errorf("status API with %s: %d %s, want 401", name, code, body)
		}
	}
	// Plaintext HTTP to the TLS endpoint never reaches the API.
	plain := newAPIClient(p, "http")
	plain.token = token
	if code, body, _, err := plain.post(step); err == nil && code < 400 {
		t.Errorf("plaintext post to the TLS endpoint: %d %s, want a failure", code, body)
	}
	c.token = token
	time.Sleep(2500 * time.Millisecond) // two report intervals: a change would be visible by now
	_, after := c.status(buildID)
	if stripVolatile(after) != stripVolatile(before) {
		t.Errorf("rejected requests changed the state:\nbefore %s\nafter  %s", before, after)
	}

	t.Run("audit log", func(t *testing.T) {
		var lines []map[string]any
		eventually(t, 10*time.Second, func() error {
			lines = readAudit(t, dir)
			var ok, denied bool
			for _, l := range lines {
				if l["path"] == "/v1/builds/"+buildID && l["method"] == http.MethodGet {
					switch fmt.Sprint(l["status"]) {
					case "200":
						ok = l["subject"] != "" && l["subject"] != nil
					case "401":
						denied = true
					}
				}
			}
			if !ok || !denied {
				return fmt.Errorf("audit log lacks the authorized (with subject) and the denied request: %v", lines)
			}
			return nil
		})
	})

	t.Run("no plaintext in encrypted checkpoints", func(t *testing.T) {
		col.stop() // final checkpoint
		found := 0
		err := filepath.Walk(filepath.Join(dir, "checkpoints"), func(path string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() || strings.HasPrefix(info.Name(), "audit") {
				return err
			}
			found++
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, secret := range []string{buildID, pipeline} {
				if bytes.Contains(b, []byte(secret)) || strings.Contains(path, secret) {
					t.Errorf("%s contains %q in plaintext", path, secret)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if found == 0 {
			t.Fatal("no checkpoint files written")
		}
	})
}

// stripVolatile removes fields that move without any event (host utilization, ETA, clocks).
func stripVolatile(body string) string {
	var m map[string]any
	if json.Unmarshal([]byte(body), &m) != nil {
		return body
	}
	// reports: report files are written asynchronously after a phase ends.
	for _, k := range []string{"eta_seconds", "host_resources", "resources", "updated_at", "duration_seconds", "elapsed_seconds", "alerts", "reports"} {
		delete(m, k)
	}
	if phases, ok := m["phases"].([]any); ok {
		for _, ph := range phases {
			if pm, ok := ph.(map[string]any); ok {
				// A running phase's resources so far move with every host sample.
				for _, k := range []string{"duration_seconds", "updated_at", "resources"} {
					delete(pm, k)
				}
			}
		}
	}
	out, _ := json.Marshal(m)
	return string(out)
}

func readAudit(t testing.TB, dir string) []map[string]any {
	t.Helper()
	var out []map[string]any
	_ = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasPrefix(info.Name(), "audit") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				out = append(out, m)
			}
		}
		return nil
	})
	return out
}

// TestLoad: 1,000 concurrent builds at 10 events/s each (10 s; 60 s with BUILDMON_SOAK): every
// accepted event is in the final state, memory stays bounded and the collector stays healthy.
// Past the rate limit clients get 429 with Retry-After, and nothing accepted is lost.
func TestLoad(t *testing.T) {
	duration := 10 * time.Second
	if soak() {
		duration = 60 * time.Second
	}
	const builds = 1000
	dir := t.TempDir()
	p := newPorts(t)
	col := startRel(t, relConfig{Ports: p, Dir: dir, MaxBuilds: 2 * builds, EventsPerSecond: 100000, Burst: 100000})
	c := newAPIClient(p, "http")
	steps := int(duration/(100*time.Millisecond)) + 50

	for i := 0; i < builds; i++ {
		id := fmt.Sprintf("load-%04d", i)
		if code, body, _, err := c.post(
			fmt.Sprintf(`{"type":"build_started","build_id":"%s","pipeline":"load","phases":[{"name":"BUILD","steps":%d}]}`, id, steps),
			`{"type":"phase_started","build_id":"`+id+`","phase":"BUILD"}`); err != nil || code != http.StatusAccepted {
			t.Fatalf("starting %s: %d %s %v", id, code, body, err)
		}
	}
	accepted := make([]atomic.Int64, builds)
	var rejected, failed atomic.Int64
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for i := 0; i < builds; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("load-%04d", i)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for seq := 0; time.Now().Before(deadline); seq++ {
				<-tick.C
				code, _, _, err := c.post(fmt.Sprintf(`{"id":"%s-%d","type":"step_completed","build_id":"%s","phase":"BUILD"}`, id, seq, id))
				switch {
				case err != nil:
					failed.Add(1)
				case code == http.StatusAccepted:
					accepted[i].Add(1)
				case code == http.StatusTooManyRequests:
					rejected.Add(1)
				default:
					failed.Add(1)
				}
			}
		}(i)
	}
	wg.Wait()
	var total int64
	for i := range accepted {
		total += accepted[i].Load()
	}
	t.Logf("load: %d events accepted, %d rate-limited, %d failed in %s", total, rejected.Load(), failed.Load(), duration)
	if failed.Load() != 0 {
		t.Errorf("%d requests failed (neither 202 nor 429)", failed.Load())
	}
	if total < int64(builds)*int64(duration/time.Second)*5 {
		t.Errorf("only %d events accepted: the collector did not keep up with half the offered load", total)
	}
	// Every accepted event is reflected in the final state, in the status API.
	eventually(t, 60*time.Second, func() error {
		for i := 0; i < builds; i++ {
			id := fmt.Sprintf("load-%04d", i)
			got, err := stepsCompleted(c, id, "BUILD")
			if err != nil {
				return err
			}
			if want := accepted[i].Load(); int64(got) != want {
				return fmt.Errorf("%s: %d steps completed in the status API, %d accepted", id, got, want)
			}
		}
		return nil
	})
	if rss := vmRSS(t, col.cmd.Process.Pid); rss > 512<<20 {
		t.Errorf("collector RSS %d MiB after the load, want under 512 MiB", rss>>20)
	}
	if code, _, err := httpGet(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/", p.Health)); err != nil || code != http.StatusOK {
		t.Errorf("collector unhealthy after the load: %d %v", code, err)
	}
	col.stop()

	t.Run("rate limit", func(t *testing.T) {
		dir := t.TempDir()
		p := newPorts(t)
		col := startRel(t, relConfig{Ports: p, Dir: dir, EventsPerSecond: 20, Burst: 20})
		c := newAPIClient(p, "http")
		if code, body, _, _ := c.post(
			`{"type":"build_started","build_id":"rl","pipeline":"rl","phases":[{"name":"BUILD","steps":1000}]}`,
			`{"type":"phase_started","build_id":"rl","phase":"BUILD"}`); code != http.StatusAccepted {
			t.Fatalf("start: %d %s", code, body)
		}
		time.Sleep(time.Second) // refill the bucket
		var ok, limited int
		for seq := 0; seq < 300; seq++ {
			code, body, hdr, err := c.post(fmt.Sprintf(`{"id":"rl-%d","type":"step_completed","build_id":"rl","phase":"BUILD"}`, seq))
			if err != nil {
				t.Fatal(err)
			}
			switch code {
			case http.StatusAccepted:
				ok++
			case http.StatusTooManyRequests:
				limited++
				if hdr.Get("Retry-After") == "" {
					t.Fatalf("429 without Retry-After: %s", body)
				}
			default:
				t.Fatalf("unexpected %d %s", code, body)
			}
		}
		if limited == 0 {
			t.Fatalf("300 requests in a burst against 20/s: no 429")
		}
		eventually(t, 20*time.Second, func() error {
			got, err := stepsCompleted(c, "rl", "BUILD")
			if err != nil {
				return err
			}
			if got != ok {
				return fmt.Errorf("steps completed %d, accepted %d", got, ok)
			}
			return nil
		})
		col.stop()
	})
}

// stepsCompleted reads a phase's completed steps from the status API.
func stepsCompleted(c *apiClient, buildID, phase string) (int, error) {
	code, body := c.status(buildID)
	if code != http.StatusOK {
		return 0, fmt.Errorf("status %s: %d %s", buildID, code, body)
	}
	var st struct {
		Phases []struct {
			Name           string `json:"name"`
			StepsCompleted int    `json:"steps_completed"`
		} `json:"phases"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return 0, err
	}
	for _, ph := range st.Phases {
		if ph.Name == phase {
			return ph.StepsCompleted, nil
		}
	}
	return 0, fmt.Errorf("no phase %s in %s", phase, body)
}

func vmRSS(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestBackendDownQueueDelivers: an agent forwards over OTLP to a gateway that is down; its
// sending queue, kept in file_storage, survives a kill -9 of the agent and delivers once the
// gateway is up, so the gateway's status API shows the build.
func TestBackendDownQueueDelivers(t *testing.T) {
	gwPorts := newPorts(t)
	agentDir := t.TempDir()
	ap := newPorts(t)
	agent := startRel(t, relConfig{Ports: ap, Dir: agentDir, ForwardTo: fmt.Sprintf("127.0.0.1:%d", gwPorts.OTLP)})
	c := newAPIClient(ap, "http")
	if code, body, _, err := c.post(
		`{"type":"build_started","build_id":"queued","pipeline":"agent","phases":[{"name":"BUILD","steps":4}]}`,
		`{"type":"phase_started","build_id":"queued","phase":"BUILD"}`,
		`{"type":"step_completed","build_id":"queued","phase":"BUILD","count":2}`); err != nil || code != http.StatusAccepted {
		t.Fatalf("post: %d %s %v", code, body, err)
	}
	time.Sleep(3 * time.Second) // a few report intervals queue up while the gateway is down
	agent.kill()
	agent.restart()

	gwDir := t.TempDir()
	gw := startRel(t, relConfig{Ports: gwPorts, Dir: gwDir, OTLPReceiver: true})
	gc := newAPIClient(gwPorts, "http")
	eventually(t, 60*time.Second, func() error {
		got, err := stepsCompleted(gc, "queued", "BUILD")
		if err != nil {
			return err
		}
		if got != 2 {
			return fmt.Errorf("gateway sees %d steps, want 2", got)
		}
		return nil
	})
	agent.stop()
	gw.stop()
}

// mountTmpfs mounts a small tmpfs (root, as in CI) and unmounts it when the test ends.
func mountTmpfs(t testing.TB, dir string, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs for the disk-full test needs root: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
}

// TestCheckpointFolderFullOrReadOnly: the checkpoint folder fills up, then turns read-only;
// each time the collector logs a clear error, keeps serving the status API with fresh state,
// and writes checkpoints again once the fault clears.
func TestCheckpointFolderFullOrReadOnly(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "ckpt")
	mountTmpfs(t, ckpt, "1m")
	p := newPorts(t)
	col := startRel(t, relConfig{Ports: p, Dir: dir, CheckpointDir: ckpt, CheckpointInterval: "300ms"})
	c := newAPIClient(p, "http")
	if code, body, _, _ := c.post(
		`{"type":"build_started","build_id":"faulty","pipeline":"faults","phases":[{"name":"BUILD","steps":100}]}`,
		`{"type":"phase_started","build_id":"faulty","phase":"BUILD"}`); code != http.StatusAccepted {
		t.Fatalf("start: %d %s", code, body)
	}
	newest := func() time.Time {
		var m time.Time
		_ = filepath.Walk(ckpt, func(_ string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() && !strings.HasPrefix(info.Name(), "filler") && !strings.HasPrefix(info.Name(), "audit") && info.ModTime().After(m) {
				m = info.ModTime()
			}
			return nil
		})
		return m
	}
	eventually(t, 15*time.Second, func() error {
		if newest().IsZero() {
			return fmt.Errorf("no checkpoint yet")
		}
		return nil
	})

	faults := []struct {
		name        string
		inject, fix func()
	}{
		{"disk full", func() {
			// Fill the tmpfs; dd stops with ENOSPC.
			_ = exec.Command("dd", "if=/dev/zero", "of="+filepath.Join(ckpt, "filler"), "bs=64k").Run()
		}, func() { _ = os.Remove(filepath.Join(ckpt, "filler")) }},
		{"read-only", func() {
			if out, err := exec.Command("mount", "-o", "remount,ro", ckpt).CombinedOutput(); err != nil {
				t.Fatalf("remount ro: %v %s", err, out)
			}
		}, func() {
			if out, err := exec.Command("mount", "-o", "remount,rw", ckpt).CombinedOutput(); err != nil {
				t.Fatalf("remount rw: %v %s", err, out)
			}
		}},
	}
	steps := 0
	for _, f := range faults {
		logBefore := len(col.out.String())
		f.inject()
		for i := 0; i < 5; i++ {
			steps++
			if code, body, _, _ := c.post(`{"type":"step_completed","build_id":"faulty","phase":"BUILD"}`); code != http.StatusAccepted {
				t.Fatalf("%s: step: %d %s", f.name, code, body)
			}
		}
		eventually(t, 15*time.Second, func() error {
			logs := col.out.String()[logBefore:]
			if !strings.Contains(logs, "checkpoint") || !(strings.Contains(logs, "no space left") || strings.Contains(logs, "read-only")) {
				return fmt.Errorf("%s: no clear checkpoint error in the log yet", f.name)
			}
			return nil
		})
		// The collector keeps serving fresh state while it cannot write.
		want := steps
		eventually(t, 15*time.Second, func() error {
			got, err := stepsCompleted(c, "faulty", "BUILD")
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("%s: status shows %d steps, want %d", f.name, got, want)
			}
			return nil
		})
		fixedAt := time.Now()
		f.fix()
		eventually(t, 20*time.Second, func() error {
			if !newest().After(fixedAt) {
				return fmt.Errorf("%s: no checkpoint written since the fault cleared", f.name)
			}
			return nil
		})
	}
	col.stop()
}
