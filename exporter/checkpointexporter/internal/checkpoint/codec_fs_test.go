package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/encryption"
)

// The header holds what README.md documents, at its offsets.
func TestEnvelopeHeader(t *testing.T) {
	kr := keyring(t)
	tests := []struct {
		name      string
		codec     Codec
		kind      Kind
		wantFlags byte
		wantKeyID bool
	}{
		{name: "plain checkpoint", codec: Codec{}, kind: KindCheckpoint, wantFlags: flagGzip},
		{name: "plain report", codec: Codec{}, kind: KindReport, wantFlags: flagGzip},
		{name: "sealed checkpoint", codec: Codec{Keyring: kr}, kind: KindCheckpoint, wantFlags: flagGzip | flagSealed, wantKeyID: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := tt.codec.Encode(tt.kind, []byte("payload"))
			require.NoError(t, err)
			assert.Equal(t, "BMCKPT\r\n", string(env[:8]))
			assert.Equal(t, uint16(1), binary.BigEndian.Uint16(env[8:10]))
			assert.Equal(t, byte(tt.kind), env[10])
			assert.Equal(t, tt.wantFlags, env[11])
			var zero [8]byte
			if tt.wantKeyID {
				id := kr.CurrentID()
				assert.Equal(t, id[:], env[12:20])
			} else {
				assert.Equal(t, zero[:], env[12:20])
			}
			assert.Equal(t, uint64(len(env)-headerSize), binary.BigEndian.Uint64(env[20:28]))
		})
	}
}

// Decode tells damage from a missing key, and reads what older keys sealed.
func TestDecodeErrorKinds(t *testing.T) {
	oldKey, err := encryption.NewKey(bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	newKey, err := encryption.NewKey(bytes.Repeat([]byte{8}, 32))
	require.NoError(t, err)
	sealedOld, err := Codec{Keyring: encryption.NewKeyring(oldKey)}.Encode(KindCheckpoint, []byte("old"))
	require.NoError(t, err)
	plain, err := Codec{}.Encode(KindCheckpoint, bytes.Repeat([]byte("x"), 1000))
	require.NoError(t, err)
	wrongVersion := bytes.Clone(plain)
	binary.BigEndian.PutUint16(wrongVersion[8:10], 2)
	putSum(wrongVersion)

	tests := []struct {
		name    string
		codec   Codec
		data    []byte
		want    string
		wantErr error
	}{
		{name: "rotated: the previous key opens", codec: Codec{Keyring: encryption.NewKeyring(newKey, oldKey)}, data: sealedOld, want: "old"},
		{name: "sealed without any key", codec: Codec{}, data: sealedOld, wantErr: ErrNoKey},
		{name: "sealed with a key that is not configured", codec: Codec{Keyring: encryption.NewKeyring(newKey)}, data: sealedOld, wantErr: encryption.ErrUnknownKey},
		{name: "plain read with a keyring", codec: Codec{Keyring: encryption.NewKeyring(newKey)}, data: plain, want: strings.Repeat("x", 1000)},
		{name: "another format version", codec: Codec{}, data: wrongVersion, wantErr: ErrCorrupt},
		{name: "empty", codec: Codec{}, data: nil, wantErr: ErrCorrupt},
		{name: "bigger than the payload bound once decompressed", codec: Codec{MaxPayload: 999}, data: plain, wantErr: ErrCorrupt},
		{name: "exactly the payload bound", codec: Codec{MaxPayload: 1000}, data: plain, want: strings.Repeat("x", 1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := tt.codec.Decode(tt.data)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
	assert.Equal(t, int64(DefaultMaxPayload), Codec{}.maxPayload())
	assert.False(t, IsEnvelope([]byte("BMCK")))
}

// faultyFS fails one operation of the atomic write.
type faultyFS struct {
	OS
	failOn string // create, write, sync, close, rename, syncdir
	err    error
}

type faultyFile struct {
	*os.File
	fs *faultyFS
}

func (f *faultyFS) CreateTemp(dir, pattern string) (File, error) {
	if f.failOn == "create" {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: f.err}
	}
	file, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: file, fs: f}, nil
}

func (f *faultyFile) Write(b []byte) (int, error) {
	if f.fs.failOn == "write" {
		return 0, f.fs.err
	}
	return f.File.Write(b)
}

func (f *faultyFile) Sync() error {
	if f.fs.failOn == "sync" {
		return f.fs.err
	}
	return f.File.Sync()
}

func (f *faultyFile) Close() error {
	err := f.File.Close()
	if f.fs.failOn == "close" {
		return f.fs.err
	}
	return err
}

func (f *faultyFS) Rename(oldpath, newpath string) error {
	if f.failOn == "rename" {
		return f.err
	}
	return f.OS.Rename(oldpath, newpath)
}

func (f *faultyFS) SyncDir(dir string) error {
	if f.failOn == "syncdir" {
		return f.err
	}
	return f.OS.SyncDir(dir)
}

// Whatever step fails, the old file stays as it was, no temporary file is left, and the
// error names the step and the cause.
func TestWriteFileAtomicFaults(t *testing.T) {
	tests := []struct {
		failOn   string
		wantMsg  string
		wantNew  bool // the rename happened before the failure
		wantTemp bool
	}{
		{failOn: "create", wantMsg: "creating a temporary file"},
		{failOn: "write", wantMsg: "writing"},
		{failOn: "sync", wantMsg: "syncing"},
		{failOn: "close", wantMsg: "closing"},
		{failOn: "rename", wantMsg: "renaming"},
		{failOn: "syncdir", wantMsg: "syncing directory", wantNew: true},
		{failOn: ""},
	}
	for _, tt := range tests {
		t.Run("fail on "+tt.failOn, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), []byte("old"), 0o600))
			fsys := &faultyFS{failOn: tt.failOn, err: syscall.ENOSPC}
			err := WriteFileAtomic(fsys, dir, "f", []byte("new"))
			got, rerr := os.ReadFile(filepath.Join(dir, "f"))
			require.NoError(t, rerr)
			if tt.failOn == "" {
				require.NoError(t, err)
				assert.Equal(t, "new", string(got))
			} else {
				require.Error(t, err)
				assert.ErrorIs(t, err, syscall.ENOSPC)
				assert.Contains(t, err.Error(), tt.wantMsg)
				if tt.wantNew {
					assert.Equal(t, "new", string(got))
				} else {
					assert.Equal(t, "old", string(got))
				}
			}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			for _, e := range entries {
				assert.False(t, strings.HasPrefix(e.Name(), tempPrefix), "temporary file %s left", e.Name())
			}
		})
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{".tmp-state-1.ckpt-123", ".tmp-", "state-00000000000000000001.ckpt", "keep.tmp-"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), nil, 0o600))
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, ".tmp-folder"), 0o750))
	removeTemps(OS{}, dir)
	removeTemps(OS{}, filepath.Join(dir, "absent")) // a missing folder is no error
	var left []string
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	assert.ElementsMatch(t, []string{".tmp-", ".tmp-folder", "state-00000000000000000001.ckpt", "keep.tmp-"}, left)
}

// Stop without Start runs the final flush and returns its error; the interval flushes
// without any request.
func TestWriterStopAndInterval(t *testing.T) {
	t.Run("stop without start", func(t *testing.T) {
		calls := 0
		w := NewWriter(clock.NewFake(time.Unix(0, 0)), time.Second, 0, func() error { calls++; return errors.New("disk full") }, zap.NewNop())
		assert.EqualError(t, w.Stop(), "disk full")
		assert.NoError(t, w.Stop(), "the final flush runs once")
		assert.Equal(t, 1, calls)
	})
	t.Run("interval", func(t *testing.T) {
		fc := clock.NewFake(time.Unix(0, 0))
		done := make(chan struct{}, 10)
		w := NewWriter(fc, time.Second, time.Hour, func() error { done <- struct{}{}; return nil }, zap.NewNop())
		w.Start()
		require.True(t, fc.BlockUntil(1))
		for i := 0; i < 3; i++ {
			fc.Advance(time.Second)
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("no flush at the interval")
			}
		}
		require.NoError(t, w.Stop())
	})
	t.Run("a request right after a flush waits for the gap", func(t *testing.T) {
		fc := clock.NewFake(time.Unix(0, 0))
		done := make(chan struct{}, 10)
		w := NewWriter(fc, time.Hour, time.Second, func() error { done <- struct{}{}; return nil }, zap.NewNop())
		w.Start()
		require.True(t, fc.BlockUntil(1))
		fc.Advance(time.Hour) // the interval flush
		<-done
		w.Request()
		require.True(t, fc.BlockUntil(2), "the request waits on a gap timer")
		select {
		case <-done:
			t.Fatal("flushed within the gap")
		default:
		}
		fc.Advance(time.Second)
		<-done
		require.NoError(t, w.Stop())
	})
}
