//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buildmon/buildmon/exporter/checkpointexporter"
)

// TestCrashSafety drives builds through the binary and kills it with SIGKILL at random
// moments, 10 times (50 with BUILDMON_SOAK), restarting it each time. After every kill every
// checkpoint file decodes (none corrupt or half-written), and after every restart each build's
// progress in the status API is at least what the last checkpoint held, and never lower than
// after the previous restart.
func TestCrashSafety(t *testing.T) {
	rounds := 10
	if soak() {
		rounds = 50
	}
	const builds = 5
	dir := t.TempDir()
	p := newPorts(t)
	cfg := relConfig{Ports: p, Dir: dir, CheckpointInterval: "200ms"}
	col := startRel(t, cfg)
	c := newAPIClient(p, "http")
	ids := make([]string, builds)
	for i := range ids {
		ids[i] = fmt.Sprintf("crash-%d", i)
		if code, body, _, _ := c.post(
			`{"type":"build_started","build_id":"`+ids[i]+`","pipeline":"crash","phases":[{"name":"BUILD","steps":100000}]}`,
			`{"type":"phase_started","build_id":"`+ids[i]+`","phase":"BUILD"}`); code != 202 {
			t.Fatalf("start %s: %d %s", ids[i], code, body)
		}
	}
	ckptDir := filepath.Join(dir, "checkpoints")
	last := map[string]float64{}
	for round := 0; round < rounds; round++ {
		// Drive steps until a random moment, then crash.
		var stop atomic.Bool
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Add(1)
			go func(id string) {
				defer wg.Done()
				for !stop.Load() {
					_, _, _, _ = c.post(`{"type":"step_completed","build_id":"` + id + `","phase":"BUILD"}`)
					time.Sleep(10 * time.Millisecond)
				}
			}(id)
		}
		time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond)
		col.kill()
		stop.Store(true)
		wg.Wait()

		// Every checkpoint file on disk decodes; none was moved aside as corrupt.
		newest := map[string]float64{}
		var newestMod time.Time
		files := checkpointFiles(t, ckptDir)
		if len(files) == 0 && round > 0 {
			t.Fatalf("round %d: no checkpoint files", round)
		}
		for _, f := range files {
			progress, err := checkpointexporter.ReadCheckpointProgress(f)
			if err != nil {
				t.Fatalf("round %d: checkpoint %s unreadable after SIGKILL: %v", round, f, err)
			}
			if fi, err := os.Stat(f); err == nil && fi.ModTime().After(newestMod) {
				newestMod, newest = fi.ModTime(), progress
			}
		}
		col.restart()
		for _, id := range ids {
			var restored float64
			eventually(t, 10*time.Second, func() error {
				code, body := c.status(id)
				if code != 200 {
					return fmt.Errorf("round %d: %s not in the status API after restart: %d %s", round, id, code, body)
				}
				var st buildStatus
				if err := json.Unmarshal([]byte(body), &st); err != nil {
					return err
				}
				restored = st.Progress
				return nil
			})
			if restored+1e-9 < newest[id] {
				t.Fatalf("round %d: %s restored at %.6f, below the last checkpoint's %.6f", round, id, restored, newest[id])
			}
			if restored+1e-9 < last[id] {
				t.Fatalf("round %d: %s restored at %.6f, below the %.6f seen after the previous restart", round, id, restored, last[id])
			}
			last[id] = restored
		}
		if out := col.out.String(); strings.Contains(out, "corrupt") {
			t.Fatalf("round %d: the exporter found a corrupt checkpoint:\n%s", round, lastLines(out, 20))
		}
	}
	for _, id := range ids {
		if last[id] <= 0 {
			t.Errorf("%s never showed progress after a restart: the test checked nothing", id)
		}
	}
	col.stop()
}

// checkpointFiles lists the checkpoint generations in dir (not temporary files, reports or
// the audit log).
func checkpointFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".ckpt") && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}
