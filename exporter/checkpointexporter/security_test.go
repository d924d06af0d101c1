package checkpointexporter

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/checkpoint"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/encryption"
)

func writeKey(t *testing.T, dir, name string) string {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(hex.EncodeToString(k)+"\n"), 0o600))
	return p
}

func keyID(t *testing.T, path string) encryption.KeyID {
	t.Helper()
	k, err := encryption.LoadKey(encryption.Source{File: path}, nil)
	require.NoError(t, err)
	return k.ID()
}

// headerKeyID reads the key id from a checkpoint file's header.
func headerKeyID(t *testing.T, path string) encryption.KeyID {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var id encryption.KeyID
	copy(id[:], b[12:20])
	return id
}

// finishedBuild is a build that ran INIT and BUILD and finished with success.
func finishedBuild(id, pipeline string) buildSpec {
	return buildSpec{
		id: id, pipeline: pipeline, host: "host-a", at: t0.Add(time.Minute),
		phases: []phaseSpec{
			{name: "INIT", state: "completed", total: 1, completed: 1, duration: 5, progress: 1},
			{name: "BUILD", state: "completed", total: 4, completed: 4, duration: 55, progress: 1},
		},
		finished: true, result: "success", duration: 60, processed: true, progress: 1,
	}
}

func TestEncryptionRoundTripLeavesNoPlaintext(t *testing.T) {
	dir := t.TempDir()
	keys := t.TempDir()
	cfg := testConfig(dir)
	cfg.Encryption.KeyFile = writeKey(t, keys, "current.key")
	const id, pipeline = "secret-build-7f3a", "secret-pipeline-91c2"

	h := newHarness(t, cfg, nil).mustStart()
	h.consume(finishedBuild(id, pipeline).metrics())
	h.tick()
	// The status API decrypts the reports.
	code, body := h.get("/v1/builds/" + id + "/report")
	require.Equal(t, http.StatusOK, code, string(body))
	assert.Contains(t, string(body), `"pipeline": "`+pipeline+`"`)
	code, body = h.get("/v1/builds/" + id + "/phases/BUILD/report")
	require.Equal(t, http.StatusOK, code, string(body))
	assert.Contains(t, string(body), `"phase": "BUILD"`)
	h.stop()

	found := 0
	for _, rel := range files(t, dir) {
		if strings.HasPrefix(filepath.Base(rel), "audit") {
			continue
		}
		found++
		b, err := os.ReadFile(filepath.Join(dir, rel))
		require.NoError(t, err)
		for _, secret := range []string{id, pipeline, "BUILD", "host-a"} {
			assert.False(t, bytes.Contains(b, []byte(secret)), "%s holds %q in plaintext", rel, secret)
			assert.NotContains(t, rel, secret)
		}
		assert.True(t, checkpoint.IsEnvelope(b), "%s is not sealed", rel)
	}
	assert.GreaterOrEqual(t, found, 4, "checkpoint, build report and two phase reports")

	// Restart with the same key: everything is back.
	h2 := newHarness(t, cfg, nil).mustStart()
	st := status(t, h2, id)
	assert.Equal(t, "success", st.Result)
	code, _ = h2.get("/v1/builds/" + id + "/report")
	assert.Equal(t, http.StatusOK, code)
}

func TestWrongKeyFailsStart(t *testing.T) {
	dir, keys := t.TempDir(), t.TempDir()
	cfg := testConfig(dir)
	cfg.Encryption.KeyFile = writeKey(t, keys, "a.key")
	h := newHarness(t, cfg, nil).mustStart()
	h.consume(running("b1", 1).metrics())
	h.stop()

	cfg2 := testConfig(dir)
	cfg2.Encryption.KeyFile = writeKey(t, keys, "b.key")
	h2 := newHarness(t, cfg2, nil)
	err := h2.start()
	require.Error(t, err)
	assert.Contains(t, err.Error(), checkpoint.FileName(1))
	assert.Contains(t, err.Error(), "previous_keys")
	assert.Contains(t, err.Error(), keyID(t, cfg.Encryption.KeyFile).String())
	require.NoError(t, h2.exp.Shutdown(t.Context()))
	// The checkpoint was not moved aside: the right key still reads it.
	assert.FileExists(t, filepath.Join(dir, checkpoint.FileName(1)))

	// Encrypted checkpoints without any key configured fail too.
	h3 := newHarness(t, testConfig(dir), nil)
	err = h3.start()
	require.ErrorContains(t, err, "encrypted but no encryption key is configured")
	require.NoError(t, h3.exp.Shutdown(t.Context()))
}

func TestMissingOrBadKeyFailsStart(t *testing.T) {
	keys := t.TempDir()
	bad := filepath.Join(keys, "bad.key")
	require.NoError(t, os.WriteFile(bad, []byte("too short"), 0o600))
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"missing file", func(c *Config) { c.Encryption.KeyFile = filepath.Join(keys, "nope.key") }, "nope.key"},
		{"bad file", func(c *Config) { c.Encryption.KeyFile = bad }, "bad.key"},
		{"unset env", func(c *Config) { c.Encryption.KeyEnv = "BUILDMON_TEST_KEY_UNSET" }, "BUILDMON_TEST_KEY_UNSET"},
		{"missing previous key", func(c *Config) {
			c.Encryption.KeyFile = writeKey(t, keys, "ok.key")
			c.Encryption.PreviousKeys = []EncryptionKey{{KeyFile: filepath.Join(keys, "old.key")}}
		}, "previous_keys[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			tc.set(cfg)
			h := newHarness(t, cfg, nil)
			err := h.start()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			require.NoError(t, h.exp.Shutdown(t.Context()))
		})
	}
}

func TestKeyFromEnvironment(t *testing.T) {
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	cfg := testConfig(t.TempDir())
	cfg.Encryption.KeyEnv = "BUILDMON_CHECKPOINT_KEY"
	h := newHarness(t, cfg, nil)
	h.inner.lookupEnv = func(name string) (string, bool) {
		if name == "BUILDMON_CHECKPOINT_KEY" {
			return hex.EncodeToString(k), true
		}
		return "", false
	}
	h.mustStart()
	h.consume(running("b1", 1).metrics())
	h.tick()
	id, err := encryption.NewKey(k)
	require.NoError(t, err)
	assert.Equal(t, id.ID(), headerKeyID(t, filepath.Join(cfg.Directory, checkpoint.FileName(1))))
}

func TestKeyRotationKeepsOldCheckpointsReadable(t *testing.T) {
	dir, keys := t.TempDir(), t.TempDir()
	oldKey, newKey := writeKey(t, keys, "old.key"), writeKey(t, keys, "new.key")

	cfg := testConfig(dir)
	cfg.Encryption.KeyFile = oldKey
	h := newHarness(t, cfg, nil).mustStart()
	h.consume(finishedBuild("rotated", "pipe").metrics())
	h.tick()
	h.stop()

	rotated := testConfig(dir)
	rotated.Encryption.KeyFile = newKey
	rotated.Encryption.PreviousKeys = []EncryptionKey{{KeyFile: oldKey}}
	h2 := newHarness(t, rotated, nil).mustStart()
	assert.Equal(t, "success", status(t, h2, "rotated").Result, "checkpoint of the old key restored")
	code, body := h2.get("/v1/builds/rotated/report")
	require.Equal(t, http.StatusOK, code, "report sealed with the old key: %s", body)
	h2.consume(running("after", 1).metrics())
	f := h2.tick()
	require.NoError(t, f.err)
	h2.stop()

	// New checkpoints are sealed with the new key.
	var newest string
	for _, rel := range files(t, dir) {
		if strings.HasSuffix(rel, ".ckpt") {
			newest = rel
		}
	}
	assert.Equal(t, keyID(t, newKey), headerKeyID(t, filepath.Join(dir, newest)))
}

func TestPlainCheckpointIsReadWhenEncryptionIsSwitchedOn(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, testConfig(dir), nil).mustStart()
	h.consume(running("migrated", 2).metrics())
	h.stop()

	cfg := testConfig(dir)
	cfg.Encryption.KeyFile = writeKey(t, t.TempDir(), "k")
	h2 := newHarness(t, cfg, nil).mustStart()
	assert.Equal(t, int64(2), status(t, h2, "migrated").Phases[1].StepsCompleted)
	h2.consume(running("migrated", 3).metrics())
	h2.tick()
	assert.Equal(t, keyID(t, cfg.Encryption.KeyFile), headerKeyID(t, filepath.Join(dir, checkpoint.FileName(2))))
}
