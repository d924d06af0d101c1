//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSignedWebhook runs the distribution with a signed webhook during a secret rotation and
// the example verifier (examples/verify-webhook) as the webhook, knowing only the old
// secret: the collector's alerts are verified, a forged request is refused.
func TestSignedWebhook(t *testing.T) {
	dir := t.TempDir()
	verifier := filepath.Join(dir, "verify-webhook")
	build := exec.Command("go", "build", "-o", verifier, "./examples/verify-webhook")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the example verifier: %v\n%s", err, out)
	}
	const oldSecret, newSecret = "old-secret-0123456789abcdef", "new-secret-0123456789abcdef"
	hookPort := freePort(t)
	out := &syncBuffer{}
	cmd := exec.Command(verifier, "-listen", "127.0.0.1:"+strconv.Itoa(hookPort))
	cmd.Env = append(os.Environ(), "BUILDMON_WEBHOOK_SECRET="+oldSecret)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	hook := fmt.Sprintf("http://127.0.0.1:%d/hook", hookPort)

	p := newPorts(t)
	path := renderConfig(t, "signed_webhook.yaml.tmpl", dir, map[string]any{
		"Ports": p, "Dir": dir, "WebhookURL": hook, "Secret": newSecret, "PreviousSecret": oldSecret,
	})
	startCollector(t, path, dir, fmt.Sprintf("http://127.0.0.1:%d/", p.Health))

	eventually(t, 30*time.Second, func() error {
		if !strings.Contains(out.String(), `verified: {"version":"1","sender":"buildmon"`) || !strings.Contains(out.String(), "cpu_observed") {
			return fmt.Errorf("no verified notification yet: %q", out.String())
		}
		return nil
	})

	// A request signed with a secret the verifier does not know is refused.
	req, _ := http.NewRequest(http.MethodPost, hook, strings.NewReader(`{"alerts":[]}`))
	req.Header.Set("X-Buildmon-Timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	req.Header.Set("X-Buildmon-Signature", "v1=00")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged request: %d, want 401", resp.StatusCode)
	}
}
