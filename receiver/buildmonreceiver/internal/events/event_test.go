package events

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodeOne(t *testing.T) {
	tests := []struct {
		name, body string
		field      string // expected error field; "-" for no error
		msg        string
	}{
		{"step", `{"type":"step_completed","build_id":"b1","phase":"BUILD","count":2}`, "-", ""},
		{"start with default plan", `{"type":"build_started","build_id":"b1","pipeline":"p"}`, "-", ""},
		{"time", `{"type":"phase_started","build_id":"b1","phase":"BUILD","time":"2026-11-28T10:00:00.5Z"}`, "-", ""},
		{"empty", ``, "", "empty body"},
		{"array", `[1]`, "", "JSON object"},
		{"null", `null`, "", "JSON object"},
		{"truncated", `{"type":"step_completed"`, "", "truncated"},
		{"trailing", `{"type":"phase_started","build_id":"b1","phase":"A"} {}`, "", "trailing"},
		{"count string", `{"type":"step_completed","build_id":"b1","phase":"A","count":"1"}`, "count", "integer"},
		{"count float", `{"type":"step_completed","build_id":"b1","phase":"A","count":1.5}`, "count", "integer"},
		{"count huge", `{"type":"step_completed","build_id":"b1","phase":"A","count":1e309}`, "count", ""},
		{"count zero", `{"type":"step_completed","build_id":"b1","phase":"A","count":0}`, "count", "between"},
		{"count elsewhere", `{"type":"phase_started","build_id":"b1","phase":"A","count":1}`, "count", "only allowed"},
		{"unknown field", `{"type":"phase_started","build_id":"b1","phase":"A","x":1}`, "x", "unknown field"},
		{"no type", `{"build_id":"b1"}`, "type", "required"},
		{"bad type", `{"type":"boom","build_id":"b1"}`, "type", "unknown event type"},
		{"no build id", `{"type":"phase_started","phase":"A"}`, "build_id", "required"},
		{"traversal", `{"type":"phase_started","build_id":"../etc","phase":"A"}`, "build_id", "must match"},
		{"newline in id", `{"type":"phase_started","build_id":"a\nb","phase":"A"}`, "build_id", "must match"},
		{"bad time", `{"type":"phase_started","build_id":"b1","phase":"A","time":"now"}`, "time", "RFC 3339"},
		{"no phase", `{"type":"phase_started","build_id":"b1"}`, "phase", "required"},
		{"bad phase name", `{"type":"phase_started","build_id":"b1","phase":"1A"}`, "phase", "must match"},
		{"milestone without name", `{"type":"milestone_reached","build_id":"b1","phase":"A"}`, "step", "required"},
		{"bad result", `{"type":"build_finished","build_id":"b1","result":"ok"}`, "result", "must be one of"},
		{"no pipeline", `{"type":"build_started","build_id":"b1"}`, "pipeline", "required"},
		{"duplicate phase", `{"type":"build_started","build_id":"b1","pipeline":"p","phases":[{"name":"A"},{"name":"A"}]}`, "phases[1].name", "twice"},
		{"steps and milestones", `{"type":"build_started","build_id":"b1","pipeline":"p","phases":[{"name":"A","steps":2,"milestones":["x"]}]}`, "phases[0].steps", "not both"},
		{"negative weight", `{"type":"build_started","build_id":"b1","pipeline":"p","phases":[{"name":"A","weight":-0.1}]}`, "phases[0].weight", "non-negative"},
		{"control char in attribute", `{"type":"build_started","build_id":"b1","pipeline":"p","attributes":{"branch":"a\r\nb"}}`, "attributes.branch", "control"},
		{"invalid utf-8", "{\"type\":\"build_started\",\"build_id\":\"b1\",\"pipeline\":\"\xff\"}", "", "UTF-8"},
		{"deep nesting", strings.Repeat("[", 20000), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeOne([]byte(tt.body), DecodeOptions{})
			if tt.field == "-" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, KindInvalid, e.Kind)
			assert.Equal(t, tt.field, e.Field, err.Error())
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
}

func TestDecodeNDJSON(t *testing.T) {
	evs, err := DecodeNDJSON([]byte("{\"type\":\"phase_started\",\"build_id\":\"b\",\"phase\":\"A\"}\n\n{\"type\":\"phase_completed\",\"build_id\":\"b\",\"phase\":\"A\"}"), nil, DecodeOptions{})
	require.NoError(t, err)
	assert.Len(t, evs, 2)
	_, err = DecodeNDJSON([]byte("{\"type\":\"phase_started\",\"build_id\":\"b\",\"phase\":\"A\"}\n{\"type\":1}\n"), nil, DecodeOptions{})
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 1, e.Index)
	_, err = DecodeNDJSON([]byte("\n\n"), nil, DecodeOptions{})
	require.Error(t, err)
}

func mustDecode(t *testing.T, lines ...string) []Event {
	t.Helper()
	evs, err := DecodeNDJSON([]byte(strings.Join(lines, "\n")), nil, DecodeOptions{})
	require.NoError(t, err)
	return evs
}

func TestRegistryTransitions(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: 2, FinishedTTL: time.Minute, DefaultHostname: "h"})
	r.RecordSpans(true)
	_, err := r.Apply(mustDecode(t,
		`{"type":"build_started","build_id":"b","pipeline":"p","phases":[{"name":"A","steps":2},{"name":"B","milestones":["m1","m2"]},{"name":"C"}]}`,
		`{"type":"phase_started","build_id":"b","phase":"A"}`,
		`{"type":"step_completed","build_id":"b","phase":"A","count":2}`,
		`{"type":"phase_completed","build_id":"b","phase":"A"}`,
		`{"type":"phase_started","build_id":"b","phase":"B"}`,
		`{"type":"milestone_reached","build_id":"b","phase":"B","step":"m2"}`,
	), now)
	require.NoError(t, err)
	b, _ := r.Get("b")
	assert.Equal(t, "h", b.Host)
	assert.Equal(t, PhaseCompleted, b.Phases[0].State)
	assert.Equal(t, []bool{false, true}, b.Phases[1].Reached)
	assert.Equal(t, int64(2), b.Phases[1].Steps)

	bad := []struct{ name, line, msg string }{
		{"restart phase", `{"type":"phase_started","build_id":"b","phase":"A"}`, "not pending"},
		{"milestone twice", `{"type":"milestone_reached","build_id":"b","phase":"B","step":"m2"}`, "already reached"},
		{"step on milestone phase", `{"type":"step_completed","build_id":"b","phase":"B"}`, "milestone_reached"},
		{"skip running", `{"type":"phase_skipped","build_id":"b","phase":"B"}`, "not pending"},
		{"complete pending", `{"type":"phase_completed","build_id":"b","phase":"C"}`, "not running"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Apply(mustDecode(t, tt.line), now)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.msg)
			after, _ := r.Get("b")
			assert.Equal(t, b, after)
		})
	}

	// Finishing ends running phases with the build; nothing applies afterwards.
	_, err = r.Apply(mustDecode(t, `{"type":"build_finished","build_id":"b","result":"cancellation"}`), now.Add(time.Second))
	require.NoError(t, err)
	b, _ = r.Get("b")
	assert.Equal(t, PhaseFailed, b.Phases[1].State)
	assert.Equal(t, PhasePending, b.Phases[2].State)
	_, err = r.Apply(mustDecode(t, `{"type":"phase_started","build_id":"b","phase":"C"}`), now)
	require.ErrorContains(t, err, "already finished")

	spans := r.TakeSpans()
	require.Len(t, spans, 5) // the 2 steps of A (one event), phase A, milestone m2, phase B (ended with the build), the build
	assert.Equal(t, SpanRecord{Build: spans[0].Build, Phase: "A", StepNumber: 2, StepCount: 2, Start: now, End: now, Result: "success"}, spans[0])
	assert.Equal(t, "cancellation", spans[4].Result)
	assert.Empty(t, r.TakeSpans())
}

func TestRegistryEventIDsAreBounded(t *testing.T) {
	now := time.Now()
	r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: 2})
	_, err := r.Apply(mustDecode(t, `{"type":"build_started","build_id":"b","pipeline":"p"}`, `{"type":"phase_started","build_id":"b","phase":"INIT"}`), now)
	require.NoError(t, err)
	for _, id := range []string{"1", "2", "3"} {
		res, err := r.Apply(mustDecode(t, `{"id":"`+id+`","type":"step_completed","build_id":"b","phase":"INIT"}`), now)
		require.NoError(t, err)
		assert.Equal(t, 1, res.Accepted)
	}
	// "1" has been forgotten (only the last two ids are kept), "3" is remembered.
	res, _ := r.Apply(mustDecode(t, `{"id":"3","type":"step_completed","build_id":"b","phase":"INIT"}`), now)
	assert.Equal(t, 1, res.Duplicates)
	res, _ = r.Apply(mustDecode(t, `{"id":"1","type":"step_completed","build_id":"b","phase":"INIT"}`), now)
	assert.Equal(t, 1, res.Accepted)
	b, _ := r.Get("b")
	assert.Equal(t, int64(4), b.Phases[0].Completed)
}

func TestRegistryChangeTracking(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: 10, FinishedTTL: time.Minute})
	_, err := r.Apply(mustDecode(t,
		`{"type":"build_started","build_id":"a","pipeline":"p"}`,
		`{"id":"e1","type":"build_started","build_id":"b","pipeline":"p"}`,
	), now)
	require.NoError(t, err)

	dirty := r.TakeDirty()
	require.Len(t, dirty, 2)
	assert.Equal(t, "a", dirty[0].Build.ID)
	assert.Empty(t, dirty[1].Build.EventIDs, "emission copies carry no event ids")
	assert.Empty(t, r.TakeDirty())

	unsaved := r.TakeUnsaved()
	require.Len(t, unsaved, 2)
	assert.Equal(t, []string{"e1"}, unsaved[1].Build.EventIDs, "persisted copies keep the event ids")
	assert.Empty(t, r.TakeUnsaved())

	// A failed write puts the builds back; a failed request changes nothing.
	r.MarkUnsaved(unsaved)
	assert.Len(t, r.TakeUnsaved(), 2)
	_, err = r.Apply(mustDecode(t, `{"type":"phase_started","build_id":"a","phase":"NOPE"}`), now)
	require.Error(t, err)
	assert.Empty(t, r.TakeDirty())
	assert.Empty(t, r.TakeUnsaved())

	// Expired builds are removed from storage, not emitted.
	_, err = r.Apply(mustDecode(t, `{"type":"build_finished","build_id":"a","result":"success"}`), now)
	require.NoError(t, err)
	assert.Len(t, r.All(), 2)
	assert.Empty(t, r.TakeDirty(), "All covers the changed builds")
	r.TakeUnsaved()
	assert.Equal(t, 1, r.Expire(now.Add(2*time.Minute)))
	assert.Empty(t, r.TakeDirty())
	assert.Equal(t, []Change{{Build: Build{ID: "a"}, Removed: true}}, r.TakeUnsaved())
	assert.Equal(t, 1, r.Len())
}

func TestRegistryRestore(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stored := []Build{
		{ID: "old-finished", Pipeline: "p", Started: now, Updated: now.Add(time.Minute), Finished: now.Add(time.Minute), Result: "success"},
		{ID: "running-old", Pipeline: "p", Started: now, Updated: now, Phases: []Phase{{Name: "BUILD", Steps: 5, Completed: 2, State: PhaseRunning, Start: now}}, EventIDs: []string{"x1", "x2", "x3"}},
		{ID: "running-new", Pipeline: "p", Started: now, Updated: now.Add(time.Second)},
	}
	r := NewRegistry(Options{MaxBuilds: 2, MaxEventIDs: 2})
	dropped := r.Restore(stored, now)
	assert.Equal(t, []string{"old-finished"}, dropped, "running builds are kept first")
	assert.Equal(t, []Change{{Build: Build{ID: "old-finished"}, Removed: true}}, r.TakeUnsaved())
	assert.Len(t, r.TakeDirty(), 2, "restored builds are emitted at once")

	// Counts continue, and the newest remembered ids still count once.
	res, err := r.Apply(mustDecode(t,
		`{"id":"x3","type":"step_completed","build_id":"running-old","phase":"BUILD"}`,
		`{"id":"x1","type":"step_completed","build_id":"running-old","phase":"BUILD"}`,
	), now)
	require.NoError(t, err)
	assert.Equal(t, Result{Accepted: 1, Duplicates: 1}, res, "x1 was beyond max_event_ids_per_build")
	b, _ := r.Get("running-old")
	assert.Equal(t, int64(3), b.Phases[0].Completed)
}
