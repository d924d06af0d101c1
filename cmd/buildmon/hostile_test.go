package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/collector"
	"github.com/buildmon/buildmon/internal/wire"
)

// hostile is text that a terminal would act on: ESC [2J clears the screen, OSC 0;…BEL sets
// the window title, U+009B is the C1 form of CSI, then DEL, a carriage return, a tab, a
// newline, a bidi override and (in raw JSON only) invalid UTF-8.
const hostile = `\u001b[2J\u001b]0;pwned\u0007\u009b31m\u007f\r\t\n\u202eX`

// unsafeInOutput lists what in out a terminal could act on: every byte below 0x20 but newline,
// DEL, C1 characters, bidi controls, line separators and invalid UTF-8.
func unsafeInOutput(out string) []string {
	var found []string
	for i, r := range out {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(out[i:], "\uFFFD"):
			found = append(found, fmt.Sprintf("invalid UTF-8 at byte %d", i))
		case r == '\n':
		case r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0x2028 || r == 0x2029 ||
			(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c:
			found = append(found, fmt.Sprintf("%U at byte %d", r, i))
		}
	}
	return found
}

// hostileStatus is a status document with hostile text in every string the status view shows,
// raw invalid UTF-8 and a raw C1 character included.
func hostileStatus() string {
	h := hostile
	return `{"id":"b-1` + h + `","pipeline":"pipe` + h + "\xff\xfe" + `","host":"host` + h + "\xc2\x9b" + `",
		"state":"running` + h + `","result":"","phase":"BUILD` + h + `","progress":0.5,"eta_seconds":10,"paused":true,
		"alerts":[{"rule":"cpu` + h + `","level":"CRITICAL","state":"firing","value":97.5},
		          {"rule":"mem","level":"WARN` + h + `","state":"pend` + h + `","value":1}],
		"phases":[{"name":"BUILD` + h + `","state":"running` + h + `","steps_total":2,"steps_completed":1,"progress":0.5,"duration_seconds":3}],
		"updated_at":"later` + h + `"}`
}

func TestStatusEscapesWhatTheServerSends(t *testing.T) {
	f := newFakeCollector(t)
	f.setStatus("b-1", hostileStatus())
	env := baseEnv(f.URL, f.URL, "BUILDMON_BUILD_ID=b-1")

	code, stdout, stderr := runCLI(env, "status")
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, unsafeInOutput(stdout), "%q", stdout)
	assert.Contains(t, stdout, `pipeline pipe\x1b[2J\x1b]0;pwned\a\u009b31m\x7f\r\t\n\u202eX`, "shown visibly, Go-quoted")
	golden := filepath.Join("testdata", "status_hostile.golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(stdout), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), stdout)

	code, stdout, stderr = runCLI(env, "status", "--json")
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, unsafeInOutput(stdout), "%q", stdout)
	assert.Equal(t, 1, strings.Count(stdout, "\n"))
	var got wire.BuildStatus
	require.NoError(t, json.Unmarshal([]byte(stdout), &got), "still JSON")
	var sent wire.BuildStatus
	require.NoError(t, json.Unmarshal([]byte(hostileStatus()), &sent))
	assert.Equal(t, sent, got, "the same document, only escaped")
}

func TestErrorsFromTheServerAreEscaped(t *testing.T) {
	// A status API that answers with a non-JSON error body full of escapes.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "\x1b[2J\x1b]0;pwned\x07oops\x9b\xff\x7f\nbuildmon: forged line")
	}))
	t.Cleanup(srv.Close)
	code, _, stderr := runCLI(baseEnv(srv.URL, srv.URL, "BUILDMON_BUILD_ID=b-1"), "status")
	assert.Equal(t, 0, code)
	assert.Empty(t, unsafeInOutput(stderr), "%q", stderr)
	assert.Equal(t, 1, strings.Count(stderr, "\n"), "a newline from the server does not start a line: %q", stderr)
	assert.Contains(t, stderr, `418 \x1b[2J\x1b]0;pwned\aoops\x9b\xff\x7f\nbuildmon: forged line`)

	// The events API rejects an event with a JSON error whose message and field carry escapes.
	f := newFakeCollector(t)
	f.setReject("step_completed", 400, `{"error":"bad\u001b[2J\u009b","field":"step\u0007"}`)
	code, _, stderr = runCLI(baseEnv(f.URL, f.URL, "BUILDMON_BUILD_ID=b-1"), "step", "BUILD")
	assert.Equal(t, 0, code)
	assert.Empty(t, unsafeInOutput(stderr), "%q", stderr)
	assert.Contains(t, stderr, `400 Bad Request: bad\x1b[2J\u009b (field step\a)`)

	// A build id typed on the command line is echoed escaped too.
	code, _, stderr = runCLI(baseEnv(f.URL, f.URL), "status", "x\x1b]0;t\x07")
	assert.Equal(t, 0, code)
	assert.Empty(t, unsafeInOutput(stderr), "%q", stderr)
	assert.Contains(t, stderr, `build x\x1b]0;t\a is not known`)
}

// endlessBody answers 200 with a chunked body that never ends, until the client hangs up, and
// counts what it wrote.
func endlessBody(written *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		chunk := []byte(`{"id":"b-1","pipeline":"` + strings.Repeat("x", 32<<10))
		fl := w.(http.Flusher)
		for r.Context().Err() == nil {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
			fl.Flush()
			chunk = chunk[:0]
			chunk = append(chunk, strings.Repeat("x", 32<<10)...)
		}
	})
}

func TestStatusReplyIsBounded(t *testing.T) {
	var written atomic.Int64
	srv := httptest.NewServer(endlessBody(&written))
	t.Cleanup(srv.Close)
	// A generous budget, so that only the size limit can end the read.
	env := baseEnv(srv.URL, srv.URL, "BUILDMON_BUILD_ID=b-1", "BUILDMON_TIMEOUT=2m")
	code, stdout, stderr := runCLI(env, "--strict", "status")
	assert.Equal(t, exitCollector, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, fmt.Sprintf("reply larger than %d bytes", collector.MaxStatusReply))
	srv.Close() // waits for the handler, so written is final
	// What the server got rid of is the limit plus what the kernel's socket buffers held.
	assert.Less(t, written.Load(), int64(collector.MaxStatusReply+32<<20), "the client stopped reading")
}

func TestAnswersOfTheCollectorWhenItCannotTakeAnEvent(t *testing.T) {
	f := newFakeCollector(t)
	env := baseEnv(f.URL, f.URL, "BUILDMON_BUILD_ID=b-1", "BUILDMON_TIMEOUT=30s")

	// A storage failure: 503 with Retry-After, then the event is taken.
	f.answerOnce("step_completed", response{code: 503, body: `{"error":"storage write failed"}`, retryAfter: "1"})
	code, _, stderr := runCLI(env, "--strict", "step", "BUILD")
	assert.Equal(t, 0, code, stderr)
	assert.Empty(t, stderr)
	assert.Equal(t, 2, f.posts())
	require.Len(t, f.received(), 1)

	// A Retry-After beyond the budget: no retry, the failure is reported.
	f.answerOnce("step_completed", response{code: 503, body: `{"error":"storage write failed"}`, retryAfter: "3600"})
	code, _, stderr = runCLI(env, "--strict", "step", "BUILD")
	assert.Equal(t, exitCollector, code)
	assert.Equal(t, 3, f.posts(), "given up at once")
	assert.Equal(t, "buildmon: collector could not take step_completed for build b-1: 503 Service Unavailable: storage write failed\n", stderr)

	// 413: a request that can never pass is not retried.
	f.answerOnce("build_finished", response{code: 413, body: `{"error":"body larger than events.max_request_body_size (1048576 bytes)"}`})
	code, _, stderr = runCLI(env, "--strict", "finish")
	assert.Equal(t, exitCollector, code)
	assert.Equal(t, 4, f.posts(), "not retried")
	assert.Contains(t, stderr, "collector rejected build_finished for build b-1: 413 Request Entity Too Large: body larger than events.max_request_body_size (1048576 bytes)")

	// 400 naming a field: the field is printed.
	f.answerOnce("milestone_reached", response{code: 400, body: `{"error":"must not contain control characters","field":"step"}`})
	code, _, stderr = runCLI(env, "milestone", "TEST", "unit")
	assert.Equal(t, 0, code)
	assert.Equal(t, 5, f.posts())
	assert.Equal(t, "buildmon: collector rejected milestone_reached for build b-1: 400 Bad Request: must not contain control characters (field step)\n", stderr)
}

func TestControlCharactersAreNotSent(t *testing.T) {
	f := newFakeCollector(t)
	env := baseEnv(f.URL, f.URL, "BUILDMON_BUILD_ID=b-1")
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{args: []string{"step", "BUILD", "--name", "compile\x1b[2J"}, want: `step "compile\x1b[2J" contains the control character \x1b`},
		{args: []string{"step", "BU\x9bILD"}, want: `phase "BU\x9bILD" is not valid UTF-8`},
		{args: []string{"step", "BU\u009bILD"}, want: `phase "BU\u009bILD" contains the control character \u009b`},
		{args: []string{"step"}, env: []string{"BUILDMON_PHASE=TE\x7fST"}, want: `phase "TE\x7fST" contains the control character \x7f`},
		{args: []string{"milestone", "TEST", "unit\a"}, want: `step "unit\a" contains the control character \a`},
		{args: []string{"skip", "CLEAN\tUP"}, want: `phase "CLEAN\tUP" contains the control character \t`},
		{args: []string{"start", "--phases", "INIT,TEST:unit|e\x1b2e"}, want: `phases[1].milestones[1] "e\x1b2e" contains the control character \x1b`},
		{args: []string{"start", "--pipeline", "app\x1b]0;t\x07"}, want: `pipeline "app\x1b]0;t\a" contains the control character \x1b`},
		{args: []string{"start", "--host", "h\r"}, want: `attributes.host "h\r" contains the control character \r`},
		{args: []string{"phase", "BU\x1bILD", "--", "sh", "-c", "echo ran"}, want: `phase "BU\x1bILD" contains the control character \x1b`},
	} {
		before := f.posts()
		code, stdout, stderr := runCLI(append(env, tc.env...), tc.args...)
		assert.Equal(t, 0, code, "%q: %s", tc.args, stderr)
		assert.Contains(t, stderr, "buildmon: not sending", "%q", tc.args)
		assert.Contains(t, stderr, tc.want, "%q", tc.args)
		assert.Empty(t, unsafeInOutput(stderr), "%q: %q", tc.args, stderr)
		assert.Equal(t, before, f.posts(), "%q: nothing sent", tc.args)
		if tc.args[0] == "phase" {
			assert.Equal(t, "ran\n", stdout, "the command runs all the same")
			assert.Equal(t, 1, strings.Count(stderr, "not sending"), "the end of the phase is not tried either: %s", stderr)
		}
		code, _, _ = runCLI(append(env, tc.env...), append([]string{"--strict"}, tc.args...)...)
		if tc.args[0] != "phase" {
			assert.Equal(t, exitCollector, code, "--strict %q", tc.args)
		}
	}

	// Free text is sent with its control characters escaped: a message, and what the CI
	// environment says about the build.
	code, _, stderr := runCLI(append(env, "GITHUB_RUN_ID=1", "GITHUB_REF_NAME=feat\u009b1", "GITHUB_WORKFLOW=CI\x1b"),
		"--build-id", "b-2", "start")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = runCLI(env, "finish", "--result", "failure", "--message", "line 1\nline 2\x1b[31m")
	require.Equal(t, 0, code, stderr)
	evs := f.received()
	require.Len(t, evs, 2)
	assert.Equal(t, `feat\u009b1`, evs[0].Attributes.Branch)
	assert.Equal(t, `CI\x1b`, evs[0].Pipeline)
	assert.Equal(t, `line 1\nline 2\x1b[31m`, evs[1].Message)
	for _, b := range f.sentBodies() {
		var ev map[string]any
		require.NoError(t, json.Unmarshal(b, &ev))
		assert.Empty(t, unsafeInOutput(fmt.Sprint(ev)), "%s", b)
	}
}

func TestUsageErrorsEscapeWhatWasTyped(t *testing.T) {
	for _, args := range [][]string{
		{"step", "--\x1b]0;t\x07"},
		{"--\x9b2J", "step"},
		{"no\x1b[2Jsuch"},
		{"start", "--phases", "A\x1b,A\x1b"},
	} {
		code, _, stderr := runCLI(baseEnv("http://127.0.0.1:1", "http://127.0.0.1:1"), args...)
		assert.Equal(t, exitUsage, code, "%q", args)
		assert.NotEmpty(t, stderr)
		assert.Empty(t, unsafeInOutput(strings.ReplaceAll(stderr, "\t", " ")), "%q: %q", args, stderr)
	}
}
