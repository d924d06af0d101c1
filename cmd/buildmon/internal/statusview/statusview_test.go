package statusview

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/internal/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func secs(s float64) *float64 { return &s }

var now = time.Date(2025, 6, 1, 10, 0, 5, 0, time.UTC)

func TestRender(t *testing.T) {
	tests := map[string]wire.BuildStatus{
		"running_paused": {
			ID: "github-42-1", Pipeline: "octo/app/CI", Host: "runner-7", State: "running",
			Phase: "BUILD", Progress: 0.634, ETASeconds: secs(200.4), ETASource: "history", Paused: true,
			UpdatedAt: "2025-06-01T10:00:03Z",
			Phases: []wire.PhaseStatus{
				{Name: "INIT", State: "completed", StepsTotal: 3, StepsCompleted: 3, Progress: 1, DurationSeconds: 4.2},
				{Name: "SETUP", State: "completed", Progress: 1, DurationSeconds: 12},
				{Name: "BUILD", State: "running", StepsTotal: 10, StepsCompleted: 6, Progress: 0.6, DurationSeconds: 90},
				{Name: "TEST", State: "pending", StepsTotal: 2},
				{Name: "CLEANUP", State: "pending"},
			},
			Alerts: []wire.AlertStatus{
				{Rule: "cpu_saturated", Level: "CRITICAL", State: "firing", Value: 99.13},
				{Rule: "memory_high", Level: "WARNING", State: "pending", Value: 87.5},
			},
		},
		"finished": {
			ID: "b-7", Pipeline: "local", State: "finished", Result: "failure", Phase: "TEST",
			Progress: 0.999, UpdatedAt: "2025-06-01T09:58:00Z",
			Phases: []wire.PhaseStatus{
				{Name: "BUILD", State: "completed", StepsTotal: 1, StepsCompleted: 1, Progress: 1, DurationSeconds: 3723},
				{Name: "lint", State: "skipped", Progress: 1},
				{Name: "TEST", State: "failed", StepsTotal: 2, StepsCompleted: 1, Progress: 0.5, DurationSeconds: 7},
			},
		},
		"minimal": {ID: "b-1"},
		// Every text as a hostile status API could send it: screen clear, window title, C1 CSI,
		// DEL, a bidi override, a newline and a tab (which would break the lines and columns),
		// and invalid UTF-8.
		"hostile": {
			ID: "b-1" + hostile, Pipeline: "p" + hostile, Host: "h\xff\xfe", State: "running\x1b[2J",
			Phase: "BUILD\u009b31m", Progress: 0.5, Paused: true, UpdatedAt: "later\x1b]0;t\x07",
			ETASeconds: secs(3), ETASource: "history" + hostile,
			Phases: []wire.PhaseStatus{
				{Name: "BUILD" + hostile, State: "running\x7f", StepsTotal: 2, StepsCompleted: 1, Progress: 0.5, DurationSeconds: 3},
				{Name: "TEST", State: "pending"},
			},
			Alerts: []wire.AlertStatus{
				{Rule: "cpu" + hostile, Level: "CRITICAL", State: "firing", Value: 99.5},
				{Rule: "mem", Level: "WARN\r", State: "pending\t", Value: 1},
			},
		},
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

const hostile = "\x1b[2J\x1b]0;pwned\x07\u009b31m\x7f\r\t\n\u202eX"

// TestRenderEscapesEveryText sets each text of a status in turn, found by reflection, to
// hostile text, so that a field shown later cannot be forgotten by the escaping.
func TestRenderEscapesEveryText(t *testing.T) {
	base := func() wire.BuildStatus {
		return wire.BuildStatus{
			Paused: true, Alerts: []wire.AlertStatus{{Level: "CRITICAL"}},
			Phases: []wire.PhaseStatus{{}}, ETASeconds: secs(1),
		}
	}
	var walk func(v reflect.Value, path string, visit func(reflect.Value, string))
	walk = func(v reflect.Value, path string, visit func(reflect.Value, string)) {
		switch v.Kind() {
		case reflect.String:
			visit(v, path)
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i), path+"."+v.Type().Field(i).Name, visit)
				}
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i), visit)
			}
		}
	}
	st := base()
	var paths []string
	walk(reflect.ValueOf(&st).Elem(), "Status", func(_ reflect.Value, p string) { paths = append(paths, p) })
	require.Len(t, paths, 25)
	for _, target := range paths {
		st := base()
		walk(reflect.ValueOf(&st).Elem(), "Status", func(v reflect.Value, p string) {
			if p == target {
				v.SetString("x" + hostile)
			}
		})
		var buf bytes.Buffer
		require.NoError(t, Render(&buf, st, now))
		out := buf.String()
		for i, r := range out {
			if r == '\n' {
				continue
			}
			assert.False(t, wire.IsControl(r) || r == '\u202e' || (r == utf8.RuneError && !strings.HasPrefix(out[i:], "\uFFFD")),
				"%s: %U at byte %d of %q", target, r, i, out)
		}
		assert.Equal(t, strings.Count(buf.String(), "\n"), strings.Count(renderString(t, base()), "\n"), "%s: no extra line", target)
	}
}

func renderString(t *testing.T, st wire.BuildStatus) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, Render(&buf, st, now))
	return buf.String()
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
