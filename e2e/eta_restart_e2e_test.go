//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestETAHistorySurvivesRestart runs five builds of one pipeline through the distribution
// (client timestamps give their phases durations without waiting: INIT 10 s, BUILD 60 s, TEST
// 20 s), stops the collector with SIGTERM and starts it again on the same file_storage: the
// first build after the restart gets its ETA from the restored phase history
// (eta_source "history" in the status API) before any of its steps completed.
func TestETAHistorySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	c := startRel(t, relConfig{Ports: p, Dir: dir, CheckpointDir: filepath.Join(dir, "checkpoints"), ETAStorage: true})
	api := newAPIClient(p, "http")
	post := func(events ...string) {
		t.Helper()
		code, body, _, err := api.post(events...)
		if err != nil || code != 202 {
			t.Fatalf("post: %d %s %v", code, body, err)
		}
	}
	at := func(base time.Time, s int) string {
		return base.Add(time.Duration(s) * time.Second).UTC().Format(time.RFC3339Nano)
	}
	for i := range 5 {
		id := fmt.Sprintf("eta-e2e-%d", i)
		base := time.Now().Add(-time.Duration(100*(5-i)) * time.Second)
		ev := func(typ, phase string, s int, extra string) string {
			return fmt.Sprintf(`{"id":"%s-%s-%s","type":%q,"build_id":%q,"phase":%q,"time":%q%s}`, id, typ, phase, typ, id, phase, at(base, s), extra)
		}
		post(fmt.Sprintf(`{"id":"%s-start","type":"build_started","build_id":%q,"pipeline":"eta-e2e","time":%q,"phases":[{"name":"INIT","steps":1},{"name":"BUILD","steps":1},{"name":"TEST","steps":1}]}`, id, id, at(base, 0)),
			ev("phase_started", "INIT", 0, ""))
		// The processor records a run it saw running: wait until the status (behind the
		// processor in the pipeline) shows it.
		eventually(t, 10*time.Second, func() error {
			code, body := api.status(id)
			if code != 200 {
				return fmt.Errorf("status %d %s", code, body)
			}
			return nil
		})
		post(ev("phase_completed", "INIT", 10, ""), ev("phase_started", "BUILD", 10, ""), ev("phase_completed", "BUILD", 70, ""),
			ev("phase_started", "TEST", 70, ""), ev("phase_completed", "TEST", 90, ""),
			fmt.Sprintf(`{"id":"%s-finish","type":"build_finished","build_id":%q,"result":"success","time":%q}`, id, id, at(base, 90)))
		eventually(t, 10*time.Second, func() error {
			_, body := api.status(id)
			var st struct{ State string }
			if err := json.Unmarshal([]byte(body), &st); err != nil || st.State != "finished" {
				return fmt.Errorf("not finished yet: %s", body)
			}
			return nil
		})
	}
	// SIGTERM at once: the processor writes the history its background writer has not yet
	// written when it shuts down.
	c.stop()
	c.restart()

	base := time.Now()
	post(fmt.Sprintf(`{"id":"after-start","type":"build_started","build_id":"eta-after","pipeline":"eta-e2e","time":%q,"phases":[{"name":"INIT","steps":1},{"name":"BUILD","steps":1},{"name":"TEST","steps":1}]}`, at(base, 0)),
		fmt.Sprintf(`{"id":"after-init","type":"phase_started","build_id":"eta-after","phase":"INIT","time":%q}`, at(base, 0)))
	eventually(t, 15*time.Second, func() error {
		_, body := api.status("eta-after")
		var st struct {
			ETASeconds *float64 `json:"eta_seconds"`
			ETASource  string   `json:"eta_source"`
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			return err
		}
		if st.ETASource != "history" || st.ETASeconds == nil {
			return fmt.Errorf("no ETA from history yet: %s", body)
		}
		// 90 s expected in all, of which a few seconds have run.
		if *st.ETASeconds < 60 || *st.ETASeconds > 90 {
			return fmt.Errorf("ETA %v s, want about 90 s from the restored history", *st.ETASeconds)
		}
		t.Logf("first build after the restart: ETA %.1f s (%s)", *st.ETASeconds, st.ETASource)
		return nil
	})
}
