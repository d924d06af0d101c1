package statusview

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/collector"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func secs(s float64) *float64 { return &s }

var now = time.Date(2025, 6, 1, 10, 0, 5, 0, time.UTC)

func TestRender(t *testing.T) {
	tests := map[string]collector.Status{
		"running_paused": {
			ID: "github-42-1", Pipeline: "octo/app/CI", Host: "runner-7", State: "running",
			Phase: "BUILD", Progress: 0.634, ETASeconds: secs(200.4), Paused: true,
			UpdatedAt: "2025-06-01T10:00:03Z",
			Phases: []collector.PhaseStatus{
				{Name: "INIT", State: "completed", StepsTotal: 3, StepsCompleted: 3, Progress: 1, DurationSeconds: 4.2},
				{Name: "SETUP", State: "completed", Progress: 1, DurationSeconds: 12},
				{Name: "BUILD", State: "running", StepsTotal: 10, StepsCompleted: 6, Progress: 0.6, DurationSeconds: 90},
				{Name: "TEST", State: "pending", StepsTotal: 2},
				{Name: "CLEANUP", State: "pending"},
			},
			Alerts: []collector.Alert{
				{Rule: "cpu_saturated", Level: "CRITICAL", State: "firing", Value: collector.NumberValue(99.13)},
				{Rule: "memory_high", Level: "WARNING", State: "pending", Value: collector.NumberValue(87.5)},
			},
		},
		"finished": {
			ID: "b-7", Pipeline: "local", State: "finished", Result: "failure", Phase: "TEST",
			Progress: 0.999, UpdatedAt: "2025-06-01T09:58:00Z",
			Phases: []collector.PhaseStatus{
				{Name: "BUILD", State: "completed", StepsTotal: 1, StepsCompleted: 1, Progress: 1, DurationSeconds: 3723},
				{Name: "lint", State: "skipped", Progress: 1},
				{Name: "TEST", State: "failed", StepsTotal: 2, StepsCompleted: 1, Progress: 0.5, DurationSeconds: 7},
			},
		},
		"minimal": {ID: "b-1"},
	}
	for name, st := range tests {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, Render(&buf, st, now))
			path := filepath.Join("testdata", name+".golden")
			if *update {
				require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, string(want), buf.String())
		})
	}
}

func TestBar(t *testing.T) {
	assert.Equal(t, "[----------]", Bar(0, 10))
	assert.Equal(t, "[######----]", Bar(0.63, 10))
	assert.Equal(t, "[##########]", Bar(1, 10))
	assert.Equal(t, "[##########]", Bar(7, 10))
	assert.Equal(t, "[----------]", Bar(-1, 10))
	assert.Equal(t, 99, percent(0.999))
	assert.Equal(t, 63, percent(0.63))
	assert.Equal(t, 100, percent(1))
}
