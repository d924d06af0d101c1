package checkpoint

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/encryption"
)

func keyring(t *testing.T) *encryption.Keyring {
	t.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	k, err := encryption.NewKey(b)
	require.NoError(t, err)
	return encryption.NewKeyring(k)
}

func TestCodecRoundTrip(t *testing.T) {
	payload := []byte(`{"format":1,"builds":[{"id":"build-42"}]}`)
	for name, c := range map[string]Codec{"plain": {}, "sealed": {Keyring: keyring(t)}} {
		t.Run(name, func(t *testing.T) {
			env, err := c.Encode(KindCheckpoint, payload)
			require.NoError(t, err)
			assert.True(t, IsEnvelope(env))
			kind, got, err := c.Decode(env)
			require.NoError(t, err)
			assert.Equal(t, KindCheckpoint, kind)
			assert.Equal(t, payload, got)
			if c.Keyring != nil {
				assert.False(t, bytes.Contains(env, []byte("build-42")))
			}
		})
	}
}

func TestCodecDetectsDamage(t *testing.T) {
	plain, sealed := Codec{}, Codec{Keyring: keyring(t)}
	payload := bytes.Repeat([]byte(`{"id":"x"}`), 50)
	for name, c := range map[string]Codec{"plain": plain, "sealed": sealed} {
		env, err := c.Encode(KindReport, payload)
		require.NoError(t, err)
		for _, tc := range []struct {
			name   string
			damage func([]byte) []byte
		}{
			{"payload bit", func(b []byte) []byte { b[len(b)-3] ^= 1; return b }},
			{"kind byte", func(b []byte) []byte { b[10] = 1; return b }},
			{"checksum", func(b []byte) []byte { b[40] ^= 1; return b }},
			{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
			{"appended", func(b []byte) []byte { return append(b, 0) }},
			{"short", func(b []byte) []byte { return b[:headerSize-1] }},
			{"magic", func(b []byte) []byte { b[0] = 'X'; return b }},
			{"version", func(b []byte) []byte { b[9] = 9; return b }},
		} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				_, _, err := c.Decode(tc.damage(bytes.Clone(env)))
				require.ErrorIs(t, err, ErrCorrupt)
			})
		}
	}
	// A payload whose checksum was recomputed after tampering still fails authentication.
	env, err := sealed.Encode(KindCheckpoint, payload)
	require.NoError(t, err)
	env[len(env)-1] ^= 1
	putSum(env)
	_, _, err = sealed.Decode(env)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorIs(t, err, encryption.ErrAuthentication)

	env, err = sealed.Encode(KindCheckpoint, payload)
	require.NoError(t, err)
	_, _, err = plain.Decode(env)
	require.ErrorIs(t, err, ErrNoKey)
	_, _, err = Codec{Keyring: keyring(t)}.Decode(env)
	require.ErrorIs(t, err, encryption.ErrUnknownKey)
	require.NotErrorIs(t, err, ErrCorrupt)
}

func TestWriteFileAtomicLeavesNoTempOnFailure(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, WriteFileAtomic(OS{}, dir, "f", []byte("one")))
	fs := &failingFS{failWrite: errors.New("no space left on device")}
	err := WriteFileAtomic(fs, dir, "f", []byte("two"))
	require.ErrorContains(t, err, "no space left")
	b, err := os.ReadFile(filepath.Join(dir, "f"))
	require.NoError(t, err)
	assert.Equal(t, "one", string(b), "the old content survives")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left")
}

type failingFS struct {
	OS
	failWrite error
}

func (f *failingFS) CreateTemp(dir, pattern string) (File, error) {
	file, err := f.OS.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return failingFile{file, f.failWrite}, nil
}

type failingFile struct {
	File
	err error
}

func (f failingFile) Write([]byte) (int, error) { return 0, f.err }

func TestGenerationsRestoreAndPrune(t *testing.T) {
	dir := t.TempDir()
	g := &Generations{Dir: dir, FS: OS{}, Keep: 2}
	for i := 1; i <= 3; i++ {
		_, err := g.Write([]byte{byte('0' + i)})
		require.NoError(t, err)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".tmp-state-leftover"), []byte("x"), 0o600))
	assert.NoFileExists(t, filepath.Join(dir, FileName(1)))

	// The newest is rejected by the loader: it is moved aside, the previous one is used.
	g2 := &Generations{Dir: dir, FS: OS{}, Keep: 2}
	var loaded []byte
	res, err := g2.Restore(func(p []byte) error {
		if string(p) == "3" {
			return errors.New("bad payload")
		}
		loaded = p
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, "2", string(loaded))
	assert.Equal(t, filepath.Join(dir, FileName(2)), res.Path)
	assert.Equal(t, 2, res.Found)
	require.Len(t, res.Corrupt, 1)
	assert.Equal(t, filepath.Join(dir, FileName(3))+".corrupt", res.Corrupt[0].MovedTo)
	assert.NoFileExists(t, filepath.Join(dir, ".tmp-state-leftover"))
	// Numbering continues after the highest file seen, corrupt or not.
	_, err = g2.Write([]byte("4"))
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(dir, FileName(4)))
}

func TestGenerationsMissingDirectory(t *testing.T) {
	g := &Generations{Dir: filepath.Join(t.TempDir(), "absent"), FS: OS{}, Keep: 3}
	res, err := g.Restore(func([]byte) error { return nil })
	require.NoError(t, err)
	assert.Zero(t, res.Found)
}

func TestWriterCoalescesAndLogsStreaks(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	core, logs := observer.New(zap.DebugLevel)
	var calls atomic.Int64
	var fail atomic.Bool
	done := make(chan struct{}, 100)
	w := NewWriter(fc, 5*time.Second, 250*time.Millisecond, func() error {
		calls.Add(1)
		defer func() { done <- struct{}{} }()
		if fail.Load() {
			return errors.New("read-only file system")
		}
		return nil
	}, zap.New(core))
	w.Start()
	require.True(t, fc.BlockUntil(1))
	wait := func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("no flush")
		}
	}

	w.Request()
	wait() // the first request flushes at once
	for i := 0; i < 20; i++ {
		w.Request()
	}
	require.True(t, fc.BlockUntil(2), "the burst waits for the gap")
	assert.Equal(t, int64(1), calls.Load())
	fc.Advance(250 * time.Millisecond)
	wait()
	assert.Equal(t, int64(2), calls.Load(), "20 requests, one flush")

	fail.Store(true)
	for i := 0; i < 3; i++ {
		fc.Advance(5 * time.Second)
		wait()
	}
	// The writer logs after the flush returned.
	logged := func(msg string) bool { return logs.FilterMessageSnippet(msg).Len() > 0 }
	require.Eventually(t, func() bool { return logged("checkpoint write failed") }, 10*time.Second, time.Millisecond)
	fail.Store(false)
	fc.Advance(5 * time.Second)
	wait()
	require.Eventually(t, func() bool { return logged("recovered") }, 10*time.Second, time.Millisecond)
	assert.Equal(t, 1, logs.FilterMessageSnippet("checkpoint write failed").Len(), "one error per streak")

	require.NoError(t, w.Stop())
	assert.Equal(t, int64(7), calls.Load(), "Stop runs a final flush")
	require.NoError(t, w.Stop(), "Stop twice is harmless")
	assert.True(t, strings.Contains(logs.All()[0].ContextMap()["error"].(string), "read-only"))
}
