//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRegistryStorageFull fills the disk that holds the build registry (file_storage) while
// builds arrive. A 202 must mean durable: a request whose write fails is answered 503 with
// Retry-After and changes nothing, every event answered 202 is still known after a SIGKILL,
// and once the disk has room the refused request is taken, once.
func TestRegistryStorageFull(t *testing.T) {
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	mountTmpfs(t, storage, "2m")
	p := newPorts(t)
	col := startRel(t, relConfig{Ports: p, Dir: dir, MaxBuilds: 5000, EventsPerSecond: 1_000_000, Burst: 1_000_000})
	c := newAPIClient(p, "http")

	// A kilobyte of attributes per build makes the registry grow with every batch.
	pad := strings.Repeat("r", 1000)
	batch := func(n int) string {
		lines := make([]string, 50)
		for i := range lines {
			lines[i] = fmt.Sprintf(`{"type":"build_started","build_id":"full-%d-%d","pipeline":"storage-full","attributes":{"repository":"%s"}}`, n, i, pad)
		}
		return strings.Join(lines, "\n")
	}

	var acked []string
	for n := 0; n < 5; n++ {
		body := batch(n)
		if code, answer, _, err := c.post(strings.Split(body, "\n")...); err != nil || code != http.StatusAccepted {
			t.Fatalf("batch %d before the disk filled: %d %s %v", n, code, answer, err)
		}
		acked = append(acked, body)
	}
	if out, err := exec.Command("dd", "if=/dev/zero", "of="+filepath.Join(storage, "filler"), "bs=64k").CombinedOutput(); err == nil {
		t.Fatalf("dd filled a 2 MiB tmpfs without running out of space: %s", out)
	}
	refused := ""
	for n := 5; n < 100 && refused == ""; n++ {
		body := batch(n)
		code, answer, hdr, err := c.post(strings.Split(body, "\n")...)
		if err != nil {
			t.Fatalf("batch %d: %v", n, err)
		}
		switch code {
		case http.StatusAccepted:
			acked = append(acked, body)
		case http.StatusServiceUnavailable:
			if hdr.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After: %s", answer)
			}
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(answer), &e); err != nil || e.Error == "" {
				t.Errorf("503 body is not a JSON error: %q", answer)
			}
			refused = body
		default:
			t.Fatalf("batch %d: %d %s", n, code, answer)
		}
	}
	if refused == "" {
		t.Fatalf("no 503 after %d batches on a full disk", len(acked))
	}
	t.Logf("%d batches answered 202 before the disk-full 503 (5 of them before the disk filled)", len(acked))

	// The refused batch changed nothing: none of its builds is known to the status API.
	first := strings.SplitN(refused, "\n", 2)[0]
	var ev struct {
		BuildID string `json:"build_id"`
	}
	if err := json.Unmarshal([]byte(first), &ev); err != nil {
		t.Fatal(err)
	}
	if code, body := c.status(ev.BuildID); code != http.StatusNotFound {
		t.Errorf("a build of the refused batch is visible: %d %s", code, body)
	}

	col.kill()
	if err := os.Remove(filepath.Join(storage, "filler")); err != nil {
		t.Fatal(err)
	}
	col.restart()

	// Every acknowledged build survived the crash: starting it again is a duplicate.
	for i, body := range acked {
		code, answer, _, err := c.post(strings.Split(body, "\n")...)
		if err != nil || code != http.StatusAccepted || !strings.Contains(answer, `"accepted":0,"duplicates":50`) {
			t.Fatalf("acknowledged batch %d after the restart: %d %s %v (want all 50 duplicates)", i, code, answer, err)
		}
	}
	// The refused batch was never applied: sent again now, all of it is new.
	code, answer, _, err := c.post(strings.Split(refused, "\n")...)
	if err != nil || code != http.StatusAccepted || !strings.Contains(answer, `"accepted":50,"duplicates":0`) {
		t.Fatalf("refused batch sent again: %d %s %v (want all 50 accepted)", code, answer, err)
	}
}
