package statusapi

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawGet sends a request line as it is (Go's client would clean the path) and returns the
// answer.
func rawGet(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")))
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestUncleanPathsAnswerJSON(t *testing.T) {
	h := NewHandler(fakeSource{})
	for _, target := range []string{
		"//v1/builds", "/v1//builds", "/v1/builds/../hosts", "/v1/builds/./b", "/v1/builds/.", "/v1/builds/..",
		"/v1/hosts/", "/v1/builds/b/", "/./v1/builds",
	} {
		rec := rawGet(t, h, target)
		assert.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound}, rec.Code, target)
		assert.Empty(t, rec.Header().Get("Location"), target)
		assert.Equal(t, "application/json", rec.Header().Get("Content-Type"), target)
		var e Error
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e), "%s: %s", target, rec.Body.String())
		assert.NotEmpty(t, e.Error, target)
	}
	assert.Equal(t, http.StatusOK, rawGet(t, h, "/v1/builds").Code)
	assert.Equal(t, http.StatusOK, rawGet(t, h, "/v1/builds/b").Code)
}

func TestClosedFiltersAreChecked(t *testing.T) {
	h := NewHandler(fakeSource{})
	for _, q := range []string{"state=bogus", "state=RUNNING", "state=running&state=finished"} {
		rec := serve(h, http.MethodGet, "/v1/builds?"+q)
		assert.Equal(t, http.StatusBadRequest, rec.Code, q)
		var e Error
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
		assert.Contains(t, e.Error, "state", q)
		assert.Contains(t, e.Error, "running", q)
		assert.Contains(t, e.Error, "finished", q)
	}
	for _, q := range []string{"", "state=running", "state=finished", "state=", "host=h&pipeline=p"} {
		assert.Equal(t, http.StatusOK, serve(h, http.MethodGet, "/v1/builds?"+q).Code, q)
	}
}
