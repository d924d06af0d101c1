package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadResponse(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       string
		status   int
		accepted int64
		body     string
		keep     bool
	}{
		{"content length", "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 32\r\n\r\n{\"accepted\": 5, \"duplicates\": 1}", 202, 5, "", true},
		{"chunked", "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"acc\r\n10;ext=1\r\nepted\": 7, \"dup\"\r\n0\r\nX-Trailer: 1\r\n\r\n", 202, 7, "", true},
		{"error body", "HTTP/1.1 400 Bad Request\r\nContent-Length: 15\r\n\r\n{\"error\":\"bad\"}", 400, 0, `{"error":"bad"}`, true},
		{"connection close", "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: 2\r\n\r\n{}", 429, 0, "{}", false},
		{"http/1.0", "HTTP/1.0 202 Accepted\r\nContent-Length: 15\r\n\r\n{\"accepted\": 1}", 202, 1, "", false},
		{"http/1.0 keep-alive", "HTTP/1.0 202 Accepted\r\nConnection: keep-alive\r\nContent-Length: 15\r\n\r\n{\"accepted\": 1}", 202, 1, "", true},
		{"body to close", "HTTP/1.1 500 Internal Server Error\r\n\r\noops", 500, 0, "oops", false},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", 204, 0, "", true},
		{"bare LF", "HTTP/1.1 202 Accepted\nContent-Length: 15\n\n{\"accepted\": 3}", 202, 3, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, keep, err := readResponse(bufio.NewReader(strings.NewReader(tc.in)))
			require.NoError(t, err)
			assert.Equal(t, tc.status, r.status)
			assert.Equal(t, tc.accepted, r.accepted)
			assert.Equal(t, tc.body, string(r.body))
			assert.Equal(t, tc.keep, keep)
		})
	}
}

func TestReadResponseRejectsMalformed(t *testing.T) {
	for name, in := range map[string]string{
		"not http":       "SMTP ready\r\n\r\n",
		"bad status":     "HTTP/1.1 2x2 Accepted\r\n\r\n",
		"header":         "HTTP/1.1 202 Accepted\r\nno colon\r\n\r\n",
		"length":         "HTTP/1.1 202 Accepted\r\nContent-Length: -1\r\n\r\n",
		"too long":       "HTTP/1.1 202 Accepted\r\nContent-Length: 99999999\r\n\r\n",
		"short body":     "HTTP/1.1 202 Accepted\r\nContent-Length: 10\r\n\r\nabc",
		"chunk size":     "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"chunk trailer":  "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
		"truncated head": "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := readResponse(bufio.NewReader(strings.NewReader(in)))
			require.Error(t, err)
		})
	}
}

func TestRunReconnectsWhenTheServerCloses(t *testing.T) {
	var events, conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		events.Add(1)
		// Every third answer closes the connection, as a server does after an error.
		if events.Load()%3 == 0 {
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"accepted":1,"duplicates":0}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c, err := NewClient(srv.URL, ClientOptions{Conns: 2, Timeout: 5 * time.Second})
	require.NoError(t, err)
	defer c.Close()
	res, err := c.Run(context.Background(), RunOptions{Builds: BuildIDs("b", 2), BatchSize: 1, Workers: 2, Duration: time.Minute, MaxRequests: 30})
	require.NoError(t, err)
	assert.Equal(t, int64(30), res.OK)
	assert.Zero(t, res.Errors)
	assert.Equal(t, int64(30), events.Load())
	assert.Greater(t, conns.Load(), int64(2), "closed connections were replaced")
	assert.Less(t, conns.Load(), int64(30), "open connections were reused")
}

func TestRawRequest(t *testing.T) {
	u, err := CheckTarget("http://127.0.0.1:4320")
	require.NoError(t, err)
	req := rawRequest(u, contentNDJSON, "s3cret", []byte("{}\n{}\n"))
	parsed, err := http.ReadRequest(bufio.NewReader(strings.NewReader(string(req))))
	require.NoError(t, err)
	assert.Equal(t, "/v1/events", parsed.URL.Path)
	assert.Equal(t, "127.0.0.1:4320", parsed.Host)
	assert.Equal(t, contentNDJSON, parsed.Header.Get("Content-Type"))
	assert.Equal(t, "Bearer s3cret", parsed.Header.Get("Authorization"))
	assert.Equal(t, int64(6), parsed.ContentLength)
}
