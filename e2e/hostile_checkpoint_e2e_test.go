//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buildmon/buildmon/exporter/checkpointexporter"
)

// forgedSealedCheckpoint is a checkpoint envelope (see the exporter's README) flagged as
// AES-256-GCM sealed with a key id no one has, with a valid checksum: the checksum is not
// keyed, so anyone who can write the folder can make one.
func forgedSealedCheckpoint() []byte {
	payload := make([]byte, 64)
	env := make([]byte, 60, 60+len(payload))
	copy(env, "BMCKPT\r\n")
	binary.BigEndian.PutUint16(env[8:10], 1)
	env[10] = 1     // checkpoint
	env[11] = 1 | 2 // gzip, sealed
	copy(env[12:20], "bogus-id")
	binary.BigEndian.PutUint64(env[20:28], uint64(len(payload)))
	env = append(env, payload...)
	sum := sha256.New()
	sum.Write(env[:28])
	sum.Write(env[60:])
	copy(env[28:60], sum.Sum(nil))
	return env
}

// TestHostileCheckpointFiles plants, in the checkpoint folder of a stopped collector, a copy
// of its newest checkpoint named with the largest uint64 (which made the sequence wrap, so that
// every new checkpoint was pruned as soon as it was written) and a checkpoint with a forged
// "sealed" header (which stopped the collector from starting). The collector must start, set
// both aside, keep checkpointing, and restore a build finished after the planting.
func TestHostileCheckpointFiles(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "checkpoints")
	p := newPorts(t)
	col := startRel(t, relConfig{Ports: p, Dir: dir, CheckpointDir: ckpt, CheckpointInterval: "300ms"})
	c := newAPIClient(p, "http")
	finish := func(id string) {
		t.Helper()
		if code, body, _, err := c.post(
			`{"type":"build_started","build_id":"`+id+`","pipeline":"hostile","phases":[{"name":"BUILD","steps":1}]}`,
			`{"type":"phase_started","build_id":"`+id+`","phase":"BUILD"}`,
			`{"type":"step_completed","build_id":"`+id+`","phase":"BUILD"}`,
			`{"type":"phase_completed","build_id":"`+id+`","phase":"BUILD"}`,
			`{"type":"build_finished","build_id":"`+id+`","result":"success"}`); code != http.StatusAccepted {
			t.Fatalf("posting %s: %d %s %v", id, code, body, err)
		}
		eventually(t, 15*time.Second, func() error {
			if code, body := c.status(id); code != http.StatusOK || !strings.Contains(body, `"state":"finished"`) {
				return fmt.Errorf("status of %s: %d %s", id, code, body)
			}
			return nil
		})
	}
	// newest returns the newest checkpoint generation and the builds it holds.
	newest := func() (string, map[string]float64) {
		t.Helper()
		files := checkpointFiles(t, ckpt)
		slices.Sort(files)
		files = slices.DeleteFunc(files, func(f string) bool { return len(filepath.Base(f)) != len("state-00000000000000000001.ckpt") })
		if len(files) == 0 {
			t.Fatalf("no checkpoint generation in %s", ckpt)
		}
		f := files[len(files)-1]
		progress, err := checkpointexporter.ReadCheckpointProgress(f)
		if err != nil {
			t.Fatalf("newest checkpoint %s: %v", f, err)
		}
		return f, progress
	}

	finish("before-plant")
	col.stop()
	src, progress := newest()
	if _, ok := progress["before-plant"]; !ok {
		t.Fatalf("the checkpoint %s lacks the build: %v", src, progress)
	}
	copyOfNewest, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	planted := map[string][]byte{
		"state-18446744073709551615.ckpt": copyOfNewest,
		"state-99999.ckpt":                copyOfNewest,
		"state-00000000000000999999.ckpt": forgedSealedCheckpoint(),
	}
	for name, data := range planted {
		if err := os.WriteFile(filepath.Join(ckpt, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	logBefore := len(col.out.String())
	col.restart()
	logs := col.out.String()[logBefore:]
	for _, want := range []string{"state-18446744073709551615.ckpt", "state-99999.ckpt", "state-00000000000000999999.ckpt", "restored state from checkpoint"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log after the restart does not name %q:\n%s", want, lastLines(logs, 30))
		}
	}
	for name := range planted {
		if _, err := os.Stat(filepath.Join(ckpt, name+".corrupt")); err != nil {
			t.Errorf("%s was not set aside: %v", name, err)
		}
	}
	if code, body := c.status("before-plant"); code != http.StatusOK {
		t.Fatalf("build before the planting: %d %s", code, body)
	}
	finish("after-plant")
	col.stop()

	f, progress := newest()
	for _, id := range []string{"before-plant", "after-plant"} {
		if progress[id] != 1 {
			t.Errorf("the newest checkpoint %s holds %s at %v, want 1 (all: %v)", f, id, progress[id], progress)
		}
	}
	col.restart()
	for _, id := range []string{"before-plant", "after-plant"} {
		if code, body := c.status(id); code != http.StatusOK || !strings.Contains(body, `"state":"finished"`) {
			t.Errorf("after the second restart, %s: %d %s", id, code, body)
		}
	}
	col.stop()
}
