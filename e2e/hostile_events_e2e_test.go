//go:build e2e

package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// registryBuild is the receiver's view of a build, from GET /v1/registry/builds/{id} of the events API.
type registryBuild struct {
	Phases []struct {
		Name           string `json:"name"`
		StepsCompleted int    `json:"steps_completed"`
		State          string `json:"state"`
	} `json:"phases"`
	StartedAt string `json:"started_at"`
	UpdatedAt string `json:"updated_at"`
}

// registry reads a build from the receiver's registry: the status code, and the build on 200.
func registry(t *testing.T, c *apiClient, buildID string) (int, registryBuild) {
	t.Helper()
	code, body, _, err := c.do(http.MethodGet, c.events+"/v1/registry/builds/"+buildID, "", "", c.token)
	if err != nil {
		t.Fatalf("GET registry %s: %v", buildID, err)
	}
	var b registryBuild
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &b); err != nil {
			t.Fatalf("registry %s answered 200 with %q: %v", buildID, body, err)
		}
	}
	return code, b
}

// requireRejected posts events and requires a 400 whose JSON error names field.
func requireRejected(t *testing.T, c *apiClient, field string, events ...string) {
	t.Helper()
	code, body, _, err := c.post(events...)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	var e struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
	_ = json.Unmarshal([]byte(body), &e)
	if code != http.StatusBadRequest || e.Field != field {
		t.Fatalf("%s\nanswered %d %s, want 400 naming field %q", strings.Join(events, "\n"), code, body, field)
	}
}

func requireAccepted(t *testing.T, c *apiClient, events ...string) {
	t.Helper()
	code, body, _, err := c.post(events...)
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("%s\nanswered %d %s %v, want 202", strings.Join(events, "\n"), code, body, err)
	}
}

// TestHostileEventTimes: a time the system cannot represent (an offset of 24h or more, the
// zero time, beyond 2261) or beyond max_clock_skew (default 24h) is answered 400 naming
// "time"; it changes nothing, so storage writes keep working and every acknowledged event
// survives a clean restart with the same storage.
func TestHostileEventTimes(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	col := startRel(t, relConfig{Ports: p, Dir: dir})
	c := newAPIClient(p, "http")
	now := time.Now().UTC()
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	day := now.Format("2006-01-02")

	requireAccepted(t, c,
		`{"type":"build_started","build_id":"acked","pipeline":"p","phases":[{"name":"BUILD","steps":10}],"time":"`+at(-time.Hour)+`"}`,
		`{"type":"phase_started","build_id":"acked","phase":"BUILD","time":"`+at(-time.Hour)+`"}`,
		`{"type":"step_completed","build_id":"acked","phase":"BUILD","count":3,"time":"`+at(-time.Minute)+`"}`)

	for _, poison := range []string{
		day + "T10:00:00+24:00", day + "T10:00:00-24:00", day + "T10:00:00+24:59",
		"0001-01-01T00:00:00Z", "1677-09-21T00:12:44Z", "2262-04-11T23:47:16Z", "9999-12-31T23:59:59Z",
		at(25 * time.Hour), at(-25 * time.Hour), // beyond max_clock_skew, either way
	} {
		requireRejected(t, c, "time", `{"type":"step_completed","build_id":"acked","phase":"BUILD","time":"`+poison+`"}`)
		requireRejected(t, c, "time", `{"type":"build_started","build_id":"poisoned","pipeline":"p","time":"`+poison+`"}`)
		// In a batch, the good event before it is not applied either.
		requireRejected(t, c, "time",
			`{"type":"step_completed","build_id":"acked","phase":"BUILD"}`,
			`{"type":"step_completed","build_id":"acked","phase":"BUILD","time":"`+poison+`"}`)
	}
	if code, b := registry(t, c, "poisoned"); code != http.StatusNotFound {
		t.Fatalf("a build started with a poison time is in the registry: %d %+v", code, b)
	}

	// Storage writes still work after the attempts: more acknowledged events, a second build.
	requireAccepted(t, c, `{"type":"step_completed","build_id":"acked","phase":"BUILD","count":2,"time":"`+at(0)+`"}`)
	requireAccepted(t, c,
		`{"type":"build_started","build_id":"second","pipeline":"p","phases":[{"name":"BUILD","steps":4}]}`,
		`{"type":"phase_started","build_id":"second","phase":"BUILD"}`,
		`{"type":"step_completed","build_id":"second","phase":"BUILD","time":"`+at(time.Minute)+`"}`)

	col.stop()
	col.restart()
	for id, want := range map[string]int{"acked": 5, "second": 1} {
		code, b := registry(t, c, id)
		if code != http.StatusOK || len(b.Phases) != 1 || b.Phases[0].StepsCompleted != want || b.Phases[0].State != "running" {
			t.Fatalf("after a clean restart, build %s: %d %+v, want BUILD running with %d steps", id, code, b, want)
		}
	}
	if out := col.out.String(); strings.Contains(out, "outside of range") {
		t.Fatalf("a storage write failed on a time:\n%s", lastLines(out, 40))
	}
}

// TestHostileEventNames: control characters (C0, DEL, C1) in any name field get 400 naming
// the field; message takes tab and newline, nothing else.
func TestHostileEventNames(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	startRel(t, relConfig{Ports: p, Dir: dir})
	c := newAPIClient(p, "http")
	requireAccepted(t, c,
		`{"type":"build_started","build_id":"names","pipeline":"p","phases":[{"name":"BUILD"},{"name":"TEST","milestones":["unit"]},{"name":"LATE"}]}`,
		`{"type":"phase_started","build_id":"names","phase":"BUILD"}`,
		`{"type":"phase_started","build_id":"names","phase":"TEST"}`)

	// ESC sequences that clear the screen and set the window title, BEL, DEL, C1 CSI and NEL.
	for _, ctl := range []string{`\u001b[2J`, `\u001b]0;owned\u0007`, `\r`, `\u007f`, `\u009b2J`, `\u0085`, "\u009b"} {
		v := `"x` + ctl + `y"`
		cases := []struct{ field, event string }{
			{"id", `{"id":` + v + `,"type":"step_completed","build_id":"names","phase":"BUILD"}`},
			{"build_id", `{"type":"step_completed","build_id":` + v + `,"phase":"BUILD"}`},
			{"phase", `{"type":"step_completed","build_id":"names","phase":` + v + `}`},
			{"step", `{"type":"step_completed","build_id":"names","phase":"BUILD","step":` + v + `}`},
			{"step", `{"type":"milestone_reached","build_id":"names","phase":"TEST","step":` + v + `}`},
			{"message", `{"type":"phase_failed","build_id":"names","phase":"LATE","message":` + v + `}`},
			{"message", `{"type":"build_finished","build_id":"names","result":"failure","message":` + v + `}`},
			{"result", `{"type":"build_finished","build_id":"names","result":` + v + `}`},
			{"pipeline", `{"type":"build_started","build_id":"other","pipeline":` + v + `}`},
			{"phases[0].name", `{"type":"build_started","build_id":"other","pipeline":"p","phases":[{"name":` + v + `}]}`},
			{"phases[0].milestones[0]", `{"type":"build_started","build_id":"other","pipeline":"p","phases":[{"name":"A","milestones":[` + v + `]}]}`},
		}
		for _, a := range []string{"repository", "branch", "revision", "worker", "host"} {
			cases = append(cases, struct{ field, event string }{"attributes." + a,
				`{"type":"build_started","build_id":"other","pipeline":"p","attributes":{"` + a + `":` + v + `}}`})
		}
		for _, tc := range cases {
			requireRejected(t, c, tc.field, tc.event)
		}
	}
	if code, b := registry(t, c, "names"); code != http.StatusOK || b.Phases[0].StepsCompleted != 0 || b.Phases[2].State != "pending" {
		t.Fatalf("rejected events changed the build: %d %+v", code, b)
	}
	if code, _ := registry(t, c, "other"); code != http.StatusNotFound {
		t.Fatalf("a build with control characters was started: %d", code)
	}
	requireAccepted(t, c, `{"type":"phase_failed","build_id":"names","phase":"LATE","message":"line 1\n\tline 2 ünïcödé"}`)
}

// TestHostileEventJSON: duplicate names, names that differ only by case, two objects on one
// line and null values get 400: no other parser may read a different event than buildmon.
func TestHostileEventJSON(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	startRel(t, relConfig{Ports: p, Dir: dir})
	c := newAPIClient(p, "http")
	requireAccepted(t, c,
		`{"type":"build_started","build_id":"strict","pipeline":"p","phases":[{"name":"BUILD","steps":100}]}`,
		`{"type":"phase_started","build_id":"strict","phase":"BUILD"}`)
	const step = `"type":"step_completed","build_id":"strict","phase":"BUILD"`
	for _, tc := range []struct {
		name, field string
		events      []string
	}{
		{"duplicate count", "count", []string{`{` + step + `,"count":1,"count":50}`}},
		{"duplicate type", "type", []string{`{` + step + `,"type":"build_finished","result":"success"}`}},
		{"duplicate in a batch", "count", []string{`{` + step + `}`, `{` + step + `,"count":2,"count":3}`}},
		{"case variant", "Type", []string{`{` + step + `,"Type":"build_finished"}`}},
		{"case variant of count", "Count", []string{`{` + step + `,"Count":50}`}},
		{"two objects on a line", "", []string{`{` + step + `}{` + step + `}`, `{` + step + `}`}},
		{"two objects on a line with a space", "", []string{`{` + step + `} {` + step + `}`, `{` + step + `}`}},
		{"two objects in one body", "", []string{`{` + step + `} {` + step + `}`}},
		{"null count", "count", []string{`{` + step + `,"count":null}`}},
		{"null count in a batch", "count", []string{`{` + step + `}`, `{` + step + `,"count":null}`}},
		{"null message", "message", []string{`{` + step + `,"message":null}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireRejected(t, c, tc.field, tc.events...)
		})
	}
	if code, b := registry(t, c, "strict"); code != http.StatusOK || b.Phases[0].StepsCompleted != 0 || b.Phases[0].State != "running" {
		t.Fatalf("rejected requests changed the build: %d %+v", code, b)
	}
	requireAccepted(t, c, `{`+step+`,"count":2}`, `{`+step+`}`)
	if _, b := registry(t, c, "strict"); b.Phases[0].StepsCompleted != 3 {
		t.Fatalf("steps after a good batch: %+v, want 3", b)
	}
}
