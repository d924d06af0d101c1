package statusapi

import (
	"errors"
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

type fakeSource struct{ reportErr error }

func (fakeSource) Builds(state.BuildFilter) []state.BuildSummary {
	return []state.BuildSummary{{ID: "b"}}
}
func (fakeSource) BuildStatus(id string) (state.BuildStatus, bool) {
	return state.BuildStatus{ID: id}, id == "b"
}
func (f fakeSource) Report(string, string) ([]byte, error) {
	if f.reportErr != nil {
		return nil, f.reportErr
	}
	return []byte(`{"kind":"build"}`), nil
}
func (fakeSource) Hosts() []state.HostStatus            { return nil }
func (fakeSource) Host(string) (state.HostStatus, bool) { return state.HostStatus{}, false }

func serve(h http.Handler, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func TestHandler(t *testing.T) {
	h := NewHandler(fakeSource{})
	assert.Equal(t, http.StatusOK, serve(h, http.MethodGet, "/v1/builds/b").Code)
	assert.Equal(t, http.StatusOK, serve(h, http.MethodHead, "/v1/builds/b").Code)
	rec := serve(h, http.MethodGet, "/v1/builds/%22x%22")
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.JSONEq(t, `{"error":"unknown build \"\\\"x\\\"\""}`, rec.Body.String())
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	assert.Equal(t, http.StatusMethodNotAllowed, serve(h, http.MethodOptions, "/v1/hosts").Code)
	assert.Equal(t, `{"kind":"build"}`, serve(h, http.MethodGet, "/v1/builds/b/report").Body.String())

	failing := NewHandler(fakeSource{reportErr: errors.New("disk on fire")})
	assert.Equal(t, http.StatusInternalServerError, serve(failing, http.MethodGet, "/v1/builds/b/report").Code)
}

func TestAuditRecordsStatusAndSubject(t *testing.T) {
	fc := clock.NewFake(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	var recs []audit.Record
	inner := Subject(NewHandler(fakeSource{}), func(*http.Request) string { return "alice" })
	// A stand-in for the authentication between the two middlewares.
	auth := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	})
	h := Audit(auth, fc, func(r audit.Record) { recs = append(recs, r) })
	serve(h, http.MethodGet, "/v1/builds")
	req := httptest.NewRequest(http.MethodGet, "/v1/builds/b", nil)
	req.Header.Set("Authorization", "Bearer x")
	h.ServeHTTP(httptest.NewRecorder(), req)
	require.Len(t, recs, 2)
	assert.Equal(t, audit.Record{Time: "2025-01-01T00:00:00Z", Kind: audit.KindStatusRequest, Subject: "unauthenticated",
		Remote: "192.0.2.1:1234", Method: http.MethodGet, Path: "/v1/builds", Status: http.StatusUnauthorized}, recs[0])
	assert.Equal(t, "alice", recs[1].Subject)
	assert.Equal(t, http.StatusOK, recs[1].Status)
}
