package events

import (
	"testing"
	"time"
)

// FuzzDecodeOne feeds arbitrary bodies to the single-event decoder and applies what decodes:
// no panic, and every error is a client error.
func FuzzDecodeOne(f *testing.F) {
	for _, s := range []string{
		`{"type":"build_started","build_id":"b","pipeline":"p","phases":[{"name":"A","steps":3},{"name":"B","milestones":["x"],"weight":0.5}]}`,
		`{"type":"step_completed","build_id":"b","phase":"A","count":2,"id":"e1","time":"2026-01-01T00:00:00Z"}`,
		`{"type":"build_finished","build_id":"b","result":"success"}`,
		`{"type":"milestone_reached","build_id":"b","phase":"B","step":"x"}`,
		`[]`, `null`, `{"count":1e400}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	r := NewRegistry(Options{MaxBuilds: 100, MaxEventIDs: 100, DefaultHostname: "h"})
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := DecodeOne(body)
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Status != StatusBadRequest {
				t.Fatalf("decode error is not a 400 client error: %#v", err)
			}
			return
		}
		_, _ = r.Apply([]Event{ev}, time.Unix(0, 0))
		if r.Len() > 100 {
			t.Fatalf("registry grew past max_builds: %d", r.Len())
		}
	})
}

// FuzzDecodeNDJSON does the same for batches, which are applied all or nothing.
func FuzzDecodeNDJSON(f *testing.F) {
	f.Add([]byte("{\"type\":\"build_started\",\"build_id\":\"b\",\"pipeline\":\"p\"}\n{\"type\":\"phase_started\",\"build_id\":\"b\",\"phase\":\"INIT\"}\n"))
	f.Add([]byte("{\"type\":\"phase_started\",\"build_id\":\"b\",\"phase\":\"INIT\"}\n{\"type\":\"phase_started\""))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: 10})
		evs, err := DecodeNDJSON(body, nil)
		if err != nil {
			return
		}
		if _, err := r.Apply(evs, time.Unix(0, 0)); err != nil && r.Len() != 0 {
			t.Fatalf("a failed batch left %d builds behind", r.Len())
		}
	})
}
