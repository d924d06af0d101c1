package events

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/internal/wire"
)

// fuzzOptions bound times as the receiver's default config does.
var fuzzOptions = DecodeOptions{Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), MaxClockSkew: 24 * time.Hour}

// FuzzDecodeOne feeds arbitrary bodies to the single-event decoder and applies what decodes:
// no panic, every error is a client error that echoes no control character, and what is
// accepted is read the same by encoding/json, has no control characters in its names, and a
// time the system can hold.
func FuzzDecodeOne(f *testing.F) {
	for _, s := range []string{
		`{"type":"build_started","build_id":"b","pipeline":"p","phases":[{"name":"A","steps":3},{"name":"B","milestones":["x"],"weight":0.5}]}`,
		`{"type":"step_completed","build_id":"b","phase":"A","count":2,"id":"e1","time":"2026-01-01T00:00:00Z"}`,
		`{"type":"build_finished","build_id":"b","result":"success","message":"a\n\tb"}`,
		`{"type":"milestone_reached","build_id":"b","phase":"B","step":"x"}`,
		`{"type":"build_started","build_id":"b","pipeline":"p","attributes":{"host":"h","branch":"main"}}`,
		`[]`, `null`, `{"count":1e400}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	r := NewRegistry(Options{MaxBuilds: 100, MaxEventIDs: 100, DefaultHostname: "h"})
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := DecodeOne(body, fuzzOptions)
		if err != nil {
			if e := (*Error)(nil); !errors.As(err, &e) || e.Kind != KindInvalid {
				t.Fatalf("decode error is not a 400 client error: %#v", err)
			}
			require.Negative(t, wire.ControlAt(err.Error(), false), "the error echoes a control character: %q", err.Error())
			return
		}
		checkAccepted(t, ev)
		// A second, lenient parser reads the same event from the same bytes.
		var w wire.Event
		dec := stdjson.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&w), "encoding/json rejects what was accepted")
		_, err = dec.Token()
		require.ErrorIs(t, err, io.EOF, "encoding/json sees more than one value")
		ev2, err := validate(&w, &fuzzOptions)
		require.NoError(t, err)
		require.Equal(t, ev, ev2, "encoding/json reads another event")

		_, _ = r.Apply([]Event{ev}, fuzzOptions.Now)
		if r.Len() > 100 {
			t.Fatalf("registry grew past max_builds: %d", r.Len())
		}
	})
}

// checkAccepted checks what must hold for every accepted event.
func checkAccepted(t *testing.T, ev Event) {
	t.Helper()
	if !ev.Time.IsZero() {
		requireRepresentable(t, ev.Time)
		d := ev.Time.Sub(fuzzOptions.Now)
		require.LessOrEqual(t, d.Abs(), fuzzOptions.MaxClockSkew, "time beyond max_clock_skew: %v", ev.Time)
	}
	names := []string{ev.ID, ev.BuildID, ev.Pipeline, ev.Phase, ev.Step, ev.Result,
		ev.Attributes.Repository, ev.Attributes.Branch, ev.Attributes.Revision, ev.Attributes.Worker, ev.Attributes.Host}
	for _, p := range ev.Phases {
		names = append(names, p.Name)
		names = append(names, p.Milestones...)
	}
	for _, s := range names {
		require.Negative(t, wire.ControlAt(s, false), "control character in %q", s)
	}
	require.Negative(t, wire.ControlAt(ev.Message, true), "control character in message %q", ev.Message)
}

// FuzzDecodeNDJSON does the same for batches, which are applied all or nothing: a batch
// decodes to what its lines decode to one by one.
func FuzzDecodeNDJSON(f *testing.F) {
	f.Add([]byte("{\"type\":\"build_started\",\"build_id\":\"b\",\"pipeline\":\"p\"}\n{\"type\":\"phase_started\",\"build_id\":\"b\",\"phase\":\"INIT\"}\n"))
	f.Add([]byte("{\"type\":\"phase_started\",\"build_id\":\"b\",\"phase\":\"INIT\"}\n{\"type\":\"phase_started\""))
	f.Add([]byte("\n\n\n"))
	f.Add([]byte("{\"type\":\"step_completed\",\"build_id\":\"b\",\"phase\":\"INIT\"}\r\n \r\n{\"type\":\"step_completed\",\"build_id\":\"b\",\"phase\":\"INIT\",\"count\":3}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: 10})
		evs, err := DecodeNDJSON(body, nil, fuzzOptions)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindInvalid {
				t.Fatalf("batch error is not a 400 client error: %#v", err)
			}
			require.Negative(t, wire.ControlAt(err.Error(), false), "the error echoes a control character: %q", err.Error())
			return
		}
		var lines []Event
		for line := range bytes.Lines(body) {
			if len(trimJSONSpace(line)) == 0 {
				continue
			}
			ev, err := DecodeOne(line, fuzzOptions)
			require.NoError(t, err, "line %q of an accepted batch", line)
			checkAccepted(t, ev)
			lines = append(lines, ev)
		}
		require.Equal(t, lines, evs)
		if _, err := r.Apply(evs, fuzzOptions.Now); err != nil && r.Len() != 0 {
			t.Fatalf("a failed batch left %d builds behind", r.Len())
		}
	})
}
