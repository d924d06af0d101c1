package checkpointexporter

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	// The newest generation: a completed phase may flush one at once, before b is consumed.
	names, err := filepath.Glob(filepath.Join(dir, strings.Replace(checkpoint.FileName(1), fmt.Sprintf("%020d", 1), "*", 1)))
	require.NoError(t, err)
	require.NotEmpty(t, names)
	slices.Sort(names) // the generation is zero-padded
	path := names[len(names)-1]
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
