package buildmonreceiver

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The default config bounds how long a client may take: confighttp's default has no read
// timeout, so a body that never ends held its connection forever.
func TestDefaultConfigBoundsSlowClients(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	assert.Positive(t, cfg.Events.ReadHeaderTimeout)
	assert.Positive(t, cfg.Events.ReadTimeout)
	assert.Greater(t, cfg.Events.WriteTimeout, cfg.Events.ReadTimeout, "the write timeout counts from the headers")
	require.True(t, cfg.Events.Keepalive.HasValue())
	assert.Positive(t, cfg.Events.Keepalive.Get().IdleTimeout)
	assert.Positive(t, cfg.Events.MaxConnections)
}

// rawConn opens a connection to the receiver that the test writes by hand.
func rawConn(t *testing.T, tr *testReceiver) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(tr.url, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func postHeaders(tr *testReceiver, contentLength int, extra string) string {
	return fmt.Sprintf("POST /v1/events HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-ndjson\r\nContent-Length: %d\r\n%s\r\n",
		strings.TrimPrefix(tr.url, "http://"), contentLength, extra)
}

// A body that trickles is cut off by the read timeout with a JSON 408, and the connection
// closes.
func TestTricklingBodyIsCutOff(t *testing.T) {
	tr := startReceiver(t, nil, func(c *Config) { c.Events.ReadTimeout = 300 * time.Millisecond })
	conn := rawConn(t, tr)
	_, err := io.WriteString(conn, postHeaders(tr, 1000, "")+`{"type":"build_`)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second))) // a hang fails, not a slow machine
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode, string(body))
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Contains(t, string(body), "read_timeout")
	_, err = conn.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the connection is closed")
}

// The body buffer grows with the bytes that arrive, not to the Content-Length a client
// announces. With Expect: 100-continue the server says when the handler starts reading, so
// the test knows every handler holds its buffer when it measures the heap.
func TestAnnouncedContentLengthReservesNothing(t *testing.T) {
	const conns, announced = 32, 1 << 20
	tr := startReceiver(t, nil, func(c *Config) { c.Events.MaxRequestBodySize = announced })
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range conns {
		conn := rawConn(t, tr)
		_, err := io.WriteString(conn, postHeaders(tr, announced, "Expect: 100-continue\r\n"))
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
		line, err := bufio.NewReader(conn).ReadString('\n')
		require.NoError(t, err)
		require.Contains(t, line, "100 Continue", "the handler reads the body")
		_, err = io.WriteString(conn, `{"type":`)
		require.NoError(t, err)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	assert.Less(t, grown, int64(conns*announced/4), "heap grew by %d bytes for %d connections announcing %d bytes", grown, conns, announced)
}

// At events.max_connections a new connection is served: the keep-alive connection that has
// waited longest without a request is closed to make room (internal/connlimit has the cases
// of silent and busy connections).
func TestConnectionsAtTheCapMakeRoom(t *testing.T) {
	tr := startReceiver(t, nil, func(c *Config) { c.Events.MaxConnections = 2 })
	request := "GET /v1/registry/builds/x HTTP/1.1\r\nHost: h\r\n\r\n"
	ask := func(conn net.Conn) *bufio.Reader {
		t.Helper()
		_, err := io.WriteString(conn, request)
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
		reader := bufio.NewReader(conn)
		resp, err := http.ReadResponse(reader, nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		return reader
	}
	var held []*bufio.Reader
	for i := range 2 {
		held = append(held, ask(rawConn(t, tr))) // kept alive, idle after its answer
		// The server marks a connection idle only after the client may have read its answer;
		// wait for it, so that held[0] has waited longest.
		require.Eventually(t, func() bool { st := tr.r.conns.Stats(); return st.Open == i+1 && st.Busy == 0 }, 10*time.Second, time.Millisecond)
	}
	ask(rawConn(t, tr))

	_, err := held[0].ReadByte()
	assert.ErrorIs(t, err, io.EOF, "the connection idle longest was closed to make room")
}

// A batch larger than the rate limit's burst can never pass: 413 without Retry-After, found
// before the batch is decoded (a malformed last line does not change the answer).
func TestBatchLargerThanBurst(t *testing.T) {
	tr := startReceiver(t, nil, func(c *Config) { c.RateLimit = RateLimitConfig{EventsPerSecond: 1, Burst: 3} })
	tr.postOK(t, `{"type":"build_started","build_id":"b1","pipeline":"p"}`)
	line := `{"type":"step_completed","build_id":"b1","phase":"INIT"}`
	for _, body := range []string{
		strings.Repeat(line+"\n", 4),
		strings.Repeat(line+"\n\n  \n", 3) + `{"type":`,
	} {
		code, answer, hdr := tr.post(t, "application/x-ndjson", body)
		assert.Equal(t, http.StatusRequestEntityTooLarge, code, answer)
		assert.Empty(t, hdr.Get("Retry-After"))
		assert.Contains(t, answer, "can never pass")
		assert.Contains(t, answer, "rate_limit.burst (3)")
	}
	// Blank lines are not events: two events and blank lines fit.
	code, answer, _ := tr.post(t, "application/x-ndjson", "\n"+`{"type":"phase_started","build_id":"b1","phase":"INIT"}`+"\n\n \n"+line+"\n")
	assert.Equal(t, http.StatusAccepted, code, answer)
}

func TestCountLines(t *testing.T) {
	tests := []struct {
		body string
		want int
	}{
		{"", 0},
		{"\n\n", 0},
		{"{}", 1},
		{"{}\n", 1},
		{"{}\r\n \t\n{}", 2},
		{" \n{}\n\n{}\n{", 3},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, countLines([]byte(tt.body)), "%q", tt.body)
	}
}

// Unclean paths get the API's JSON 404, not net/http's HTML redirect.
func TestUncleanPathsAnswerJSON(t *testing.T) {
	tr := startReceiver(t, nil, nil)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"//v1/events", "/v1/../v1/events", "/v1/./events", "/v1/events/", "/v1/builds/x/../x", "/v1//builds/x", "/v1/registry/builds/x/../x", "/v1/registry//builds/x"} {
		req, err := http.NewRequest(http.MethodPost, tr.url+p, strings.NewReader(`{"type":"build_started","build_id":"b","pipeline":"p"}`))
		require.NoError(t, err)
		req.URL.Opaque = p // sent as written
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, "%s: %s", p, body)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), p)
		assert.Empty(t, resp.Header.Get("Location"), p)
	}
	assert.Equal(t, 0, tr.r.registry.Len())
}

// An answer that cannot be encoded is a JSON 500, not a 200 with an empty body (a build whose
// time JSON could not write was answered that way).
func TestUnencodableAnswerIs500(t *testing.T) {
	rec := httptest.NewRecorder()
	writeJSON(rec, http.StatusOK, map[string]float64{"x": math.Inf(1)})
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	assert.Contains(t, rec.Body.String(), `"error":"encoding the answer`)

	rec = httptest.NewRecorder()
	writeJSON(rec, http.StatusOK, map[string]int{"x": 1})
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"x":1}`, rec.Body.String())
}
