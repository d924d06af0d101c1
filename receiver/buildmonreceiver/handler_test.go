package buildmonreceiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/internal/wire"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"
)

// Only the handler knows HTTP: each kind of event error has the status the README documents.
func TestEventErrorStatus(t *testing.T) {
	tests := []struct {
		kind events.Kind
		want int
	}{
		{events.KindInvalid, http.StatusBadRequest},
		{events.KindUnknownBuild, http.StatusNotFound},
		{events.KindConflict, http.StatusConflict},
		{events.KindTooManyBuilds, http.StatusTooManyRequests},
		{events.Kind(0), http.StatusInternalServerError},
		{events.Kind(42), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			assert.Equal(t, tt.want, eventErrorStatus(tt.kind))
		})
	}
}

// writeEventError answers an *events.Error with its kind's status, its message, field and
// index; any other error is a 500 and counts as rejected.
func TestWriteEventError(t *testing.T) {
	tr := startReceiver(t, nil, nil)
	tests := []struct {
		name   string
		err    error
		status int
		body   string
	}{
		{"invalid single event", &events.Error{Kind: events.KindInvalid, Field: "phase", Message: "bad", Index: -1}, 400, `{"error":"phase: bad","field":"phase"}`},
		{"unknown build in a batch", &events.Error{Kind: events.KindUnknownBuild, Field: "build_id", Message: "unknown build x", Index: 2}, 404, `{"error":"event 2: build_id: unknown build x","field":"build_id","index":2}`},
		{"conflict, first line", &events.Error{Kind: events.KindConflict, Field: "build_id", Message: "m", Index: 0}, 409, `{"error":"event 0: build_id: m","field":"build_id","index":0}`},
		{"too many builds", &events.Error{Kind: events.KindTooManyBuilds, Field: "build_id", Message: "m", Index: -1}, 429, `{"error":"build_id: m","field":"build_id"}`},
		{"wrapped", fmt.Errorf("applying: %w", &events.Error{Kind: events.KindConflict, Message: "m", Index: -1}), 409, `{"error":"m"}`},
		{"not an event error", errors.New("boom"), 500, `{"error":"boom"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tr.r.writeEventError(w, httptest.NewRequest(http.MethodPost, eventsPath, http.NoBody), tt.err)
			assert.Equal(t, tt.status, w.Code)
			assert.JSONEq(t, tt.body, w.Body.String())
			assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
		})
	}
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var v map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	return resp.StatusCode, v
}

// GET /v1/registry/builds/{id} is the registry's view; the old path, which in buildmon means
// the status API's view, answers a JSON 404 that names the new path, for known and unknown
// builds alike.
func TestRegistryBuildPath(t *testing.T) {
	tr := startReceiver(t, nil, nil)
	tr.postOK(t, `{"type":"build_started","build_id":"b1","pipeline":"p","phases":[{"name":"BUILD","steps":2}]}`,
		`{"type":"phase_started","build_id":"b1","phase":"BUILD"}`)

	code, v := getJSON(t, tr.url+"/v1/registry/builds/b1")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "b1", v["id"])
	assert.Equal(t, "running", v["state"])
	phases := v["phases"].([]any)
	require.Len(t, phases, 1)
	assert.Equal(t, "running", phases[0].(map[string]any)["state"])

	for _, id := range []string{"b1", "nope"} {
		code, v = getJSON(t, tr.url+"/v1/builds/"+id)
		assert.Equal(t, http.StatusNotFound, code)
		assert.Contains(t, v["error"], "GET /v1/registry/builds/{id}")
		assert.Contains(t, v["error"], "status API")
	}

	code, v = getJSON(t, tr.url+"/v1/registry/builds/nope")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, "unknown build", v["error"])

	code, v = getJSON(t, tr.url+"/nothing/here")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, "not found: the API is POST /v1/events and GET /v1/registry/builds/{id}", v["error"])
}

// A finished build's view says so, with its result.
func TestRegistryBuildPathFinished(t *testing.T) {
	tr := startReceiver(t, nil, nil)
	tr.postOK(t, script("b9")...)
	code, v := getJSON(t, tr.url+"/v1/registry/builds/b9")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "finished", v["state"])
	assert.Equal(t, "failure", v["result"])
	_, hasIDs := v["event_ids"]
	assert.False(t, hasIDs, "the view carries no event ids")
}

func TestRegistryBuildPathMethods(t *testing.T) {
	tr := startReceiver(t, nil, nil)
	tr.postOK(t, `{"type":"build_started","build_id":"b1","pipeline":"p"}`)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, err := http.NewRequest(m, tr.url+"/v1/registry/builds/b1", http.NoBody)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, m)
		assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"), m)
		assert.JSONEq(t, `{"error":"use GET"}`, string(body), m)
	}
	req, err := http.NewRequest(http.MethodHead, tr.url+"/v1/registry/builds/b1", http.NoBody)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// The events endpoint itself answers 405 with Allow: POST to every other method.
func TestEventsPathMethods(t *testing.T) {
	tr := startReceiver(t, nil, nil)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		req, err := http.NewRequest(m, tr.url+eventsPath, strings.NewReader("{}"))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, m)
		assert.Equal(t, http.MethodPost, resp.Header.Get("Allow"), m)
		assert.JSONEq(t, `{"error":"use POST"}`, string(body), m)
	}
}

// writeJSON encodes first: a value that cannot be encoded is a JSON 500 that says so.
func TestWriteJSON(t *testing.T) {
	w := httptest.NewRecorder()
	writeJSON(w, http.StatusOK, map[string]float64{"x": 1})
	assert.Equal(t, http.StatusOK, w.Code)
	assert.JSONEq(t, `{"x":1}`, w.Body.String())
	assert.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))

	w = httptest.NewRecorder()
	writeJSON(w, http.StatusOK, map[string]float64{"x": math.NaN()})
	assert.Equal(t, http.StatusInternalServerError, w.Code)
	var eb wire.Error
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &eb))
	assert.Contains(t, eb.Error, "encoding the answer")
}

func TestWriteAccepted(t *testing.T) {
	tests := []struct {
		res  events.Result
		want string
	}{
		{events.Result{}, `{"accepted":0,"duplicates":0}`},
		{events.Result{Accepted: 3, Duplicates: 1}, `{"accepted":3,"duplicates":1}`},
		{events.Result{Accepted: 123456}, `{"accepted":123456,"duplicates":0}`},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		writeAccepted(w, tt.res)
		assert.Equal(t, http.StatusAccepted, w.Code)
		assert.Equal(t, tt.want+"\n", w.Body.String())
		assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
		assert.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
	}
}

// TestAcceptedBodyIsTheWireShape: the hand-written 202 body is what encoding a
// wire.Accepted writes, and decodes back into the same counts.
func TestAcceptedBodyIsTheWireShape(t *testing.T) {
	for _, res := range []events.Result{{}, {Accepted: 1}, {Duplicates: 7}, {Accepted: 999, Duplicates: 1000}, {Accepted: math.MaxInt32, Duplicates: math.MaxInt32}} {
		w := httptest.NewRecorder()
		writeAccepted(w, res)
		want, err := json.Marshal(wire.Accepted{Accepted: res.Accepted, Duplicates: res.Duplicates})
		require.NoError(t, err)
		assert.Equal(t, string(want)+"\n", w.Body.String())
		var got wire.Accepted
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
		assert.Equal(t, wire.Accepted{Accepted: res.Accepted, Duplicates: res.Duplicates}, got)
	}
}

func TestBatchContentType(t *testing.T) {
	tests := []struct {
		ct        string
		batch, ok bool
	}{
		{"application/json", false, true},
		{"application/json; charset=utf-8", false, true},
		{"Application/JSON", false, true},
		{"application/x-ndjson", true, true},
		{"application/ndjson", true, true},
		{"application/jsonl", true, true},
		{"application/x-jsonlines", true, true},
		{"text/plain", false, false},
		{"", false, false},
		{"application/json; =", false, false},
	}
	for _, tt := range tests {
		batch, ok := batchContentType(tt.ct)
		assert.Equal(t, tt.batch, batch, tt.ct)
		assert.Equal(t, tt.ok, ok, tt.ct)
	}
}
