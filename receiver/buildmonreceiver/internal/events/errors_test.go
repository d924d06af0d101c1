package events

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKindString(t *testing.T) {
	tests := []struct {
		kind Kind
		want string
	}{
		{KindInvalid, "invalid"},
		{KindUnknownBuild, "unknown build"},
		{KindConflict, "conflict"},
		{KindTooManyBuilds, "too many builds"},
		{Kind(0), "kind 0"},
		{Kind(99), "kind 99"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.kind.String())
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"single event, field", Error{Kind: KindInvalid, Field: "phase", Message: "bad", Index: -1}, "phase: bad"},
		{"single event, no field", Error{Kind: KindInvalid, Message: "malformed JSON", Index: -1}, "malformed JSON"},
		{"batch line", Error{Kind: KindUnknownBuild, Field: "build_id", Message: "unknown build x", Index: 3}, "event 3: build_id: unknown build x"},
		{"first line of a batch", Error{Kind: KindConflict, Message: "m", Index: 0}, "event 0: m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.err.Error())
		})
	}
}

// Every error the registry returns has the kind that tells the handler its status, names the
// field, and points at the failing line of a batch (-1 for a request of one event).
func TestRegistryErrorKinds(t *testing.T) {
	at := collectorNow
	tests := []struct {
		name      string
		maxBuilds int
		before    []Event // applied first, must succeed
		request   []Event
		kind      Kind
		field     string
		index     int
	}{
		{
			name:    "event for an unknown build",
			request: []Event{phaseEvent(TypePhaseStarted, "nope", "e1", at)},
			kind:    KindUnknownBuild, field: "build_id", index: -1,
		},
		{
			name:    "unknown build in the second line of a batch",
			request: []Event{started("b", at), phaseEvent(TypePhaseStarted, "nope", "e1", at)},
			kind:    KindUnknownBuild, field: "build_id", index: 1,
		},
		{
			name:    "started again with another plan",
			before:  []Event{started("b", at)},
			request: []Event{{Type: TypeBuildStarted, BuildID: "b", Pipeline: "other", Phases: []PhasePlan{{Name: "BUILD", Steps: 5}}}},
			kind:    KindConflict, field: "build_id", index: -1,
		},
		{
			name:      "a new build beyond max_builds",
			maxBuilds: 1,
			before:    []Event{started("a", at)},
			request:   []Event{started("b", at)},
			kind:      KindTooManyBuilds, field: "build_id", index: -1,
		},
		{
			name:      "two new builds in one batch beyond max_builds",
			maxBuilds: 1,
			request:   []Event{started("a", at), started("b", at)},
			kind:      KindTooManyBuilds, field: "build_id", index: 1,
		},
		{
			name:    "a phase the build does not have",
			before:  []Event{started("b", at)},
			request: []Event{{Type: TypePhaseStarted, BuildID: "b", Phase: "DEPLOY"}},
			kind:    KindInvalid, field: "phase", index: -1,
		},
		{
			name:    "an event after the build finished",
			before:  []Event{started("b", at), finished("b", at)},
			request: []Event{phaseEvent(TypePhaseStarted, "b", "e1", at)},
			kind:    KindInvalid, field: "type", index: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maxBuilds := tt.maxBuilds
			if maxBuilds == 0 {
				maxBuilds = 10
			}
			r := NewRegistry(Options{MaxBuilds: maxBuilds, MaxEventIDs: 10, FinishedTTL: time.Hour})
			if len(tt.before) > 0 {
				_, err := r.Apply(tt.before, collectorNow)
				require.NoError(t, err)
			}
			before := r.Len()
			_, err := r.Apply(tt.request, collectorNow)
			var e *Error
			require.True(t, errors.As(err, &e), "an *Error, got %v", err)
			assert.Equal(t, tt.kind, e.Kind, e.Error())
			assert.Equal(t, tt.field, e.Field)
			assert.Equal(t, tt.index, e.Index)
			assert.Equal(t, before, r.Len(), "a refused request changes nothing")
		})
	}
}

// Decoding errors are all KindInvalid: malformed input is never an unknown build or a
// conflict, whatever it names.
func TestDecodeErrorsAreInvalid(t *testing.T) {
	for _, body := range []string{
		`{`,
		`{"type":"build_started"}`,
		`{"type":"nope","build_id":"b"}`,
		`{"type":"phase_started","build_id":"b"}`,
		`{"type":"step_completed","build_id":"b","phase":"A","count":-1}`,
	} {
		_, err := DecodeOne([]byte(body), DecodeOptions{})
		var e *Error
		require.True(t, errors.As(err, &e), "%s: an *Error, got %v", body, err)
		assert.Equal(t, KindInvalid, e.Kind, body)
	}
}
