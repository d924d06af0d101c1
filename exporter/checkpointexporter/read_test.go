package checkpointexporter

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/checkpoint"
)

func TestReadCheckpointProgress(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, testConfig(dir), nil).mustStart()
	h.consume(running("a", 1).metrics(), running("b", 3).metrics())
	h.tick()
	path := filepath.Join(dir, checkpoint.FileName(1))
	got, err := ReadCheckpointProgress(path)
	require.NoError(t, err)
	assert.InDelta(t, 0.3, got["a"], 1e-9)
	assert.InDelta(t, 0.7, got["b"], 1e-9)

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b[:len(b)-1], 0o600))
	_, err = ReadCheckpointProgress(path)
	require.ErrorContains(t, err, "corrupt")
}
