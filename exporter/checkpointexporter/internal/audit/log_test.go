package audit

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLogTable(t *testing.T) {
	tests := []struct {
		name     string
		maxBytes int64
		// existing is written to the file before the log opens it.
		existing string
		writes   int
		// wantCur and wantOld are the records in the file and in <path>.1.
		wantCur, wantOld int
	}{
		{name: "no bound never rotates", maxBytes: 0, writes: 20, wantCur: 20},
		{name: "a record larger than the bound is still written, alone", maxBytes: 10, writes: 3, wantCur: 1, wantOld: 1},
		{name: "an existing file counts toward the bound", maxBytes: 200, existing: strings.Repeat("x", 190) + "\n", writes: 1, wantCur: 1, wantOld: 1},
		{name: "appends to an existing file below the bound", maxBytes: 1 << 20, existing: `{"time":"t","kind":"status_request"}` + "\n", writes: 2, wantCur: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			if tt.existing != "" {
				require.NoError(t, os.WriteFile(path, []byte(tt.existing), 0o600))
			}
			l := New(path, tt.maxBytes)
			assert.Equal(t, path, l.Path())
			for i := 0; i < tt.writes; i++ {
				require.NoError(t, l.Write(Record{Time: "2025-01-01T00:00:00Z", Kind: KindStatusRequest, Path: "/v1/builds"}))
			}
			require.NoError(t, l.Close())
			cur := countLines(t, path)
			assert.Equal(t, tt.wantCur, cur, "current file")
			old := 0
			if _, err := os.Stat(path + ".1"); err == nil {
				old = countLines(t, path+".1")
			}
			assert.Equal(t, tt.wantOld, old, "rotated file")
		})
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.Count(string(b), "\n")
}

func TestCloseTwiceAndWriteAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := New(path, 0)
	require.NoError(t, l.Close(), "closing a log that never opened its file")
	require.NoError(t, l.Write(Record{Kind: KindNotification, Outcome: "sent"}))
	require.NoError(t, l.Close())
	require.NoError(t, l.Close())
	require.NoError(t, l.Write(Record{Kind: KindNotification, Outcome: "dropped"}), "a write after Close reopens the file")
	require.NoError(t, l.Close())
	recs := readLines(t, path)
	require.Len(t, recs, 2)
	assert.Equal(t, "dropped", recs[1].Outcome)
}

func TestConcurrentWritesKeepWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := New(path, 0)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				assert.NoError(t, l.Write(Record{Kind: KindStatusRequest, Subject: strings.Repeat("s", 100)}))
			}
		}()
	}
	wg.Wait()
	require.NoError(t, l.Close())
	assert.Len(t, readLines(t, path), 400, "every line is one whole record")
}

func TestRotateFailureIsReported(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l := New(path, 50)
	require.NoError(t, l.Write(Record{Kind: KindStatusRequest, Path: "/first"}))
	// <path>.1 is a non-empty folder: the rename fails.
	require.NoError(t, os.MkdirAll(filepath.Join(path+".1", "x"), 0o750))
	err := l.Write(Record{Kind: KindStatusRequest, Path: "/second"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rotating audit log")
	require.NoError(t, l.Close())
}
