//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBadInputMatrix sends malformed and hostile requests to the events API of the running
// binary. Each gets its documented status, and neither the receiver's registry nor the status
// API changes.
func TestBadInputMatrix(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	col := startRel(t, relConfig{Ports: p, Dir: dir})
	c := newAPIClient(p, "http")
	const id = "fixture"
	if code, body, _, _ := c.post(
		`{"id":"e1","type":"build_started","build_id":"fixture","pipeline":"matrix","phases":[{"name":"INIT","steps":1},{"name":"BUILD","steps":4},{"name":"TEST","milestones":["unit","e2e"]}]}`,
		`{"id":"e2","type":"phase_started","build_id":"fixture","phase":"INIT"}`,
		`{"id":"e3","type":"step_completed","build_id":"fixture","phase":"INIT"}`,
		`{"id":"e4","type":"phase_completed","build_id":"fixture","phase":"INIT"}`,
		`{"id":"e5","type":"phase_started","build_id":"fixture","phase":"BUILD"}`,
		`{"id":"e6","type":"step_completed","build_id":"fixture","phase":"BUILD"}`); code != http.StatusAccepted {
		t.Fatalf("fixture: %d %s", code, body)
	}
	registry := func() string {
		code, body, _, err := c.do(http.MethodGet, c.events+"/v1/registry/builds/"+id, "", "", "")
		if err != nil || code != http.StatusOK {
			t.Fatalf("registry view: %d %s %v", code, body, err)
		}
		return stripVolatile(body)
	}
	status := func() string {
		var out string
		eventually(t, 10*time.Second, func() error {
			code, body := c.status(id)
			if code != http.StatusOK {
				return fmt.Errorf("status %d %s", code, body)
			}
			out = stripVolatile(body)
			return nil
		})
		return out
	}
	// Let the fixture reach the status API before taking the reference.
	eventually(t, 10*time.Second, func() error {
		n, err := stepsCompleted(c, id, "BUILD")
		if err != nil || n != 1 {
			return fmt.Errorf("fixture not in the status API yet: %d %v", n, err)
		}
		return nil
	})
	regBefore, statusBefore := registry(), status()

	ev := func(s string) string { return s }
	nested := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	huge := `{"type":"step_completed","build_id":"fixture","phase":"BUILD","message":"` + strings.Repeat("x", 10<<20) + `"}`
	cases := []struct {
		name, contentType, body string
		want                    int
	}{
		{"truncated JSON", "application/json", `{"type":"step_completed","build_id":"fixture"`, 400},
		{"empty body", "application/json", ``, 400},
		{"JSON array", "application/json", `[{"type":"step_completed","build_id":"fixture","phase":"BUILD"}]`, 400},
		{"JSON null", "application/json", `null`, 400},
		{"build_id wrong type", "application/json", `{"type":"step_completed","build_id":42,"phase":"BUILD"}`, 400},
		{"type wrong type", "application/json", `{"type":["step_completed"],"build_id":"fixture","phase":"BUILD"}`, 400},
		{"type null", "application/json", `{"type":null,"build_id":"fixture","phase":"BUILD"}`, 400},
		{"count as string", "application/json", `{"type":"step_completed","build_id":"fixture","phase":"BUILD","count":"2"}`, 400},
		{"count float", "application/json", `{"type":"step_completed","build_id":"fixture","phase":"BUILD","count":1.5}`, 400},
		{"count huge", "application/json", `{"type":"step_completed","build_id":"fixture","phase":"BUILD","count":99999999999999999999999}`, 400},
		{"count 1e309", "application/json", `{"type":"step_completed","build_id":"fixture","phase":"BUILD","count":1e309}`, 400},
		{"count negative", "application/json", `{"type":"step_completed","build_id":"fixture","phase":"BUILD","count":-1}`, 400},
		{"steps beyond the plan", "application/json", `{"type":"step_completed","build_id":"fixture","phase":"BUILD","count":4}`, 400},
		{"step in a completed phase", "application/json", `{"type":"step_completed","build_id":"fixture","phase":"INIT"}`, 400},
		{"step in a phase not started", "application/json", `{"type":"step_completed","build_id":"fixture","phase":"TEST"}`, 400},
		{"restart a completed phase", "application/json", `{"type":"phase_started","build_id":"fixture","phase":"INIT"}`, 400},
		{"unknown phase", "application/json", `{"type":"phase_started","build_id":"fixture","phase":"DEPLOY"}`, 400},
		{"unknown milestone", "application/json", `{"type":"milestone_reached","build_id":"fixture","phase":"TEST","step":"perf"}`, 400},
		{"unknown event type", "application/json", `{"type":"build_exploded","build_id":"fixture"}`, 400},
		{"missing type", "application/json", `{"build_id":"fixture","phase":"BUILD"}`, 400},
		{"missing build_id", "application/json", `{"type":"step_completed","phase":"BUILD"}`, 400},
		{"bad result", "application/json", `{"type":"build_finished","build_id":"fixture","result":"meh"}`, 400},
		{"bad time", "application/json", `{"type":"step_completed","build_id":"fixture","phase":"BUILD","time":"yesterday"}`, 400},
		{"negative steps in a plan", "application/json", `{"type":"build_started","build_id":"neg","pipeline":"p","phases":[{"name":"BUILD","steps":-3}]}`, 400},
		{"negative weight in a plan", "application/json", `{"type":"build_started","build_id":"negw","pipeline":"p","phases":[{"name":"BUILD","steps":3,"weight":-1}]}`, 400},
		{"restart with another plan", "application/json", `{"type":"build_started","build_id":"fixture","pipeline":"matrix","phases":[{"name":"BUILD","steps":9}]}`, 409},
		{"unknown build", "application/json", `{"type":"step_completed","build_id":"nope","phase":"BUILD"}`, 404},
		{"path traversal build id", "application/json", `{"type":"build_started","build_id":"../../etc","pipeline":"p"}`, 400},
		{"slash in build id", "application/json", `{"type":"build_started","build_id":"a/b","pipeline":"p"}`, 400},
		{"build id too long", "application/json", `{"type":"build_started","build_id":"` + strings.Repeat("a", 300) + `","pipeline":"p"}`, 400},
		{"header injection in build id", "application/json", `{"type":"build_started","build_id":"x\r\nX-Injected: 1","pipeline":"p"}`, 400},
		{"invalid UTF-8", "application/json", "{\"type\":\"build_started\",\"build_id\":\"utf\",\"pipeline\":\"\xff\xfe\"}", 400},
		{"NUL in body", "application/json", "{\"type\":\"step_completed\",\"build_id\":\"fixture\",\x00\"phase\":\"BUILD\"}", 400},
		{"deeply nested JSON", "application/json", nested, 400},
		{"10 MB body", "application/json", huge, 413},
		{"one bad line in a batch", "application/x-ndjson", ev(`{"type":"step_completed","build_id":"fixture","phase":"BUILD"}`) + "\n" + `{"type":"step_completed","build_id":"fixture","phase":"NOPE"}` + "\n", 400},
		{"wrong content type", "text/plain", `{"type":"step_completed","build_id":"fixture","phase":"BUILD"}`, 415},
		{"duplicate event id (retry of e6)", "application/json", `{"id":"e6","type":"step_completed","build_id":"fixture","phase":"BUILD"}`, 202},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body, hdr, err := c.do(http.MethodPost, c.events+"/v1/events", tc.contentType, tc.body, "")
			if err != nil {
				t.Fatal(err)
			}
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, truncate(body, 300))
			}
			if hdr.Get("X-Injected") != "" {
				t.Fatalf("response carries an injected header")
			}
			if code >= 400 && !strings.Contains(body, `"error"`) {
				t.Fatalf("error response without a JSON error body: %s", truncate(body, 300))
			}
			if r := registry(); r != regBefore {
				t.Fatalf("registry changed:\nbefore %s\nafter  %s", regBefore, r)
			}
		})
	}
	if code, _, _, _ := c.do(http.MethodGet, c.events+"/v1/events", "", "", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/events: %d, want 405", code)
	}
	time.Sleep(2500 * time.Millisecond) // two report intervals
	if s := status(); s != statusBefore {
		t.Errorf("status API changed:\nbefore %s\nafter  %s", statusBefore, s)
	}
	col.stop()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
