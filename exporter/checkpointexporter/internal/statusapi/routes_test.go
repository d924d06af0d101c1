package statusapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/audit"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
)

// recordingSource serves two builds and one host, and remembers what it was asked.
type recordingSource struct {
	filter          state.BuildFilter
	reportID, phase string
}

func (s *recordingSource) Builds(f state.BuildFilter) []state.BuildSummary {
	s.filter = f
	return []state.BuildSummary{{ID: "a", Derived: true}, {ID: "b"}}
}

func (s *recordingSource) BuildStatus(id string) (state.BuildStatus, bool) {
	if id != "a" {
		return state.BuildStatus{}, false
	}
	return state.BuildStatus{ID: "a", Progress: 0.5, Derived: true}, true
}

func (s *recordingSource) Report(id, phase string) ([]byte, error) {
	s.reportID, s.phase = id, phase
	switch {
	case id == "running":
		return nil, fmt.Errorf("build %q has not finished: %w", id, ErrNotReady)
	case id != "a":
		return nil, fmt.Errorf("unknown build %q: %w", id, ErrNotFound)
	}
	return []byte(`{"kind":"phase","phase":"` + phase + `"}`), nil
}

func (s *recordingSource) Hosts() []state.HostStatus { return []state.HostStatus{{Name: "h"}} }

func (s *recordingSource) Host(name string) (state.HostStatus, bool) {
	return state.HostStatus{Name: name, Builds: []string{"a"}}, name == "h"
}

func TestRoutes(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		wantCode   int
		wantBody   string // JSON, compared with JSONEq
		wantFilter *state.BuildFilter
		wantReport []string // id, phase asked of the source
	}{
		{name: "build list", method: http.MethodGet, path: "/v1/builds",
			wantCode: 200, wantBody: `{"builds":[` + summary("a", true) + `,` + summary("b", false) + `],"count":2}`, wantFilter: &state.BuildFilter{}},
		{name: "build list filters", method: http.MethodGet, path: "/v1/builds?state=finished&host=h1&pipeline=p",
			wantCode: 200, wantFilter: &state.BuildFilter{State: "finished", Host: "h1", Pipeline: "p"}},
		{name: "empty state filter is no filter", method: http.MethodGet, path: "/v1/builds?state=",
			wantCode: 200, wantFilter: &state.BuildFilter{}},
		{name: "unknown state", method: http.MethodGet, path: "/v1/builds?state=done",
			wantCode: 400, wantBody: `{"error":"query parameter state is \"done\"; allowed values: running, finished"}`},
		{name: "state twice", method: http.MethodGet, path: "/v1/builds?state=running&state=running", wantCode: 400},
		{name: "build report", method: http.MethodGet, path: "/v1/builds/a/report", wantCode: 200,
			wantBody: `{"kind":"phase","phase":""}`, wantReport: []string{"a", ""}},
		{name: "phase report", method: http.MethodGet, path: "/v1/builds/a/phases/BUILD/report", wantCode: 200,
			wantBody: `{"kind":"phase","phase":"BUILD"}`, wantReport: []string{"a", "BUILD"}},
		{name: "report not ready", method: http.MethodGet, path: "/v1/builds/running/report", wantCode: 404,
			wantBody: `{"error":"build \"running\" has not finished: no report yet"}`, wantReport: []string{"running", ""}},
		{name: "report of an unknown build", method: http.MethodGet, path: "/v1/builds/zz/phases/X/report", wantCode: 404, wantReport: []string{"zz", "X"}},
		{name: "host list", method: http.MethodGet, path: "/v1/hosts", wantCode: 200},
		{name: "host", method: http.MethodGet, path: "/v1/hosts/h", wantCode: 200},
		{name: "unknown host", method: http.MethodGet, path: "/v1/hosts/x", wantCode: 404, wantBody: `{"error":"unknown host \"x\""}`},
		{name: "unknown endpoint", method: http.MethodGet, path: "/v2/builds", wantCode: 404, wantBody: `{"error":"no such endpoint \"/v2/builds\""}`},
		{name: "trailing slash", method: http.MethodGet, path: "/v1/builds/", wantCode: 404},
		{name: "POST", method: http.MethodPost, path: "/v1/builds", wantCode: 405},
		{name: "DELETE of a build", method: http.MethodDelete, path: "/v1/builds/a", wantCode: 405},
		{name: "dot segment", method: http.MethodGet, path: "/v1/builds/./a", wantCode: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &recordingSource{}
			rec := serve(NewHandler(src), tt.method, tt.path)
			assert.Equal(t, tt.wantCode, rec.Code, rec.Body.String())
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			if tt.wantBody != "" {
				assert.JSONEq(t, tt.wantBody, rec.Body.String())
			}
			if tt.wantFilter != nil {
				assert.Equal(t, *tt.wantFilter, src.filter)
			}
			if tt.wantReport != nil {
				assert.Equal(t, tt.wantReport, []string{src.reportID, src.phase})
			}
			if tt.wantCode == 405 {
				assert.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
			}
			if tt.wantCode >= 400 {
				var e Error
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
				assert.NotEmpty(t, e.Error)
			}
		})
	}
}

func summary(id string, derived bool) string {
	b, _ := json.Marshal(state.BuildSummary{ID: id, Derived: derived})
	return string(b)
}

// The status document is passed through as the source made it, derived flag included.
func TestBuildStatusBody(t *testing.T) {
	rec := serve(NewHandler(&recordingSource{}), http.MethodGet, "/v1/builds/a")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	var st state.BuildStatus
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &st))
	assert.Equal(t, 0.5, st.Progress)
	assert.True(t, st.Derived)
}

// An error that is neither ErrNotFound nor ErrNotReady is a 500 naming it; wrapped kinds
// still map to 404.
func TestReportErrorKinds(t *testing.T) {
	tests := []struct {
		err  error
		code int
	}{
		{err: fmt.Errorf("x: %w", ErrNotFound), code: 404},
		{err: fmt.Errorf("y: %w", fmt.Errorf("z: %w", ErrNotReady)), code: 404},
		{err: errors.New("disk on fire"), code: 500},
	}
	for _, tt := range tests {
		rec := serve(NewHandler(fakeSource{reportErr: tt.err}), http.MethodGet, "/v1/builds/b/report")
		assert.Equal(t, tt.code, rec.Code, tt.err.Error())
		var e Error
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
		assert.Equal(t, tt.err.Error(), e.Error, "the answer names the cause")
	}
}

// The audit middleware records the query, the time the request took on the clock, and the
// status the handler wrote (200 when it wrote a body without a status).
func TestAuditRecordsQueryDurationAndImplicitStatus(t *testing.T) {
	fc := clock.NewFake(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	var recs []audit.Record
	slow := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fc.Advance(1500 * time.Microsecond)
		_, _ = w.Write([]byte("ok"))
	})
	h := Audit(slow, fc, func(r audit.Record) { recs = append(recs, r) })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/builds?state=running", nil))
	silent := Audit(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), fc, func(r audit.Record) { recs = append(recs, r) })
	silent.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodHead, "/v1/hosts", nil))
	require.Len(t, recs, 2)
	assert.Equal(t, "state=running", recs[0].Query)
	assert.Equal(t, 1.5, recs[0].DurationMS)
	assert.Equal(t, http.StatusOK, recs[0].Status)
	assert.Equal(t, "anonymous", recs[0].Subject, "no Subject middleware: anonymous")
	assert.Equal(t, http.StatusOK, recs[1].Status, "a handler that wrote nothing answered 200")
	assert.Equal(t, http.MethodHead, recs[1].Method)
}

// Subject outside of Audit (no request info in the context) is harmless.
func TestSubjectWithoutAudit(t *testing.T) {
	called := false
	h := Subject(NewHandler(&recordingSource{}), func(*http.Request) string { called = true; return "x" })
	rec := serve(h, http.MethodGet, "/v1/hosts")
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.False(t, called, "nothing asks for a subject nobody records")
}
