package connlimit

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func startServer(t *testing.T, maxConns int, h http.Handler, useTLS bool) (*httptest.Server, *Limiter) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	l := New(maxConns)
	l.Install(srv.Config)
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, l
}

func ok(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }

// slowHandler answers "ok", but holds requests to /slow until release is closed; entered
// receives one value per held request (up to n without blocking).
func slowHandler(n int) (h http.Handler, entered chan struct{}, release chan struct{}) {
	entered, release = make(chan struct{}, n), make(chan struct{})
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		ok(w, r)
	})
	return h, entered, release
}

// dialSilent opens a connection that sends nothing, and waits until the server has taken it.
func dialSilent(t *testing.T, srv *httptest.Server, l *Limiter, wantOpen int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.Eventually(t, func() bool { return l.Stats().Open == wantOpen }, 5*time.Second, time.Millisecond)
	return c
}

// closedByServer reports whether the server closed c (a read ends at once with EOF or reset).
func closedByServer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// stillOpen reports whether c is still open on the server's side (a short read times out).
func stillOpen(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestSilentConnectionsAreReapedOldestFirst(t *testing.T) {
	srv, l := startServer(t, 3, http.HandlerFunc(ok), false)
	first := dialSilent(t, srv, l, 1)
	second := dialSilent(t, srv, l, 2)
	third := dialSilent(t, srv, l, 3)

	// A real client at the cap is served: the connection that waited longest makes room.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "ok", string(body))

	assert.True(t, closedByServer(first), "the oldest silent connection is closed")
	assert.True(t, stillOpen(second), "younger silent connections stay")
	assert.True(t, stillOpen(third))
	assert.Equal(t, int64(1), l.Stats().Reaped)
	assert.Zero(t, l.Stats().Refused)
	assert.LessOrEqual(t, l.Stats().Open, 3)
}

func TestNewConnectionIsRefusedWhenEverySlotIsBusy(t *testing.T) {
	h, entered, release := slowHandler(2)
	srv, l := startServer(t, 2, h, false)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	done := make(chan error, 2)
	for range 2 {
		go func() {
			resp, err := client.Get(srv.URL + "/slow")
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
	}
	<-entered
	<-entered
	assert.Equal(t, 2, l.Stats().Busy)

	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	assert.True(t, closedByServer(c), "a third connection is closed while both slots have a request in flight")
	assert.Equal(t, int64(1), l.Stats().Refused)
	assert.Zero(t, l.Stats().Reaped)

	close(release)
	require.NoError(t, <-done)
	require.NoError(t, <-done)
	// With the slots free again, new requests are served.
	require.Eventually(t, func() bool { return l.Stats().Open == 0 }, 5*time.Second, time.Millisecond)
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestIdleKeepAliveIsReapedBeforeABusyConnection(t *testing.T) {
	h, entered, release := slowHandler(1)
	srv, l := startServer(t, 2, h, false)
	defer close(release)

	// A keep-alive connection that served one request and now waits for the next.
	keep, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer keep.Close()
	_, err = io.WriteString(keep, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(keep), nil)
	require.NoError(t, err)
	resp.Body.Close()

	// A connection busy with a slow request: it was accepted later than keep, but it is busy.
	busyDone := make(chan struct{})
	go func() {
		defer close(busyDone)
		if resp, err := http.Get(srv.URL + "/slow"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	// The server marks keep idle only after the client may have read its answer.
	require.Eventually(t, func() bool { st := l.Stats(); return st.Open == 2 && st.Busy == 1 }, 5*time.Second, time.Millisecond)

	// At the cap, a third connection makes room by closing the idle keep-alive connection.
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	assert.True(t, closedByServer(keep))
	assert.Equal(t, int64(1), l.Stats().Reaped)
	assert.True(t, stillOpen(c), "the new connection is served")
}

// The limiter keeps net/http's view of TLS: handlers see the TLS state (what client
// certificate authentication needs), unlike a limit wrapped around the TLS listener.
func TestTLSStateReachesHandlers(t *testing.T) {
	var sawTLS bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawTLS = r.TLS != nil
		ok(w, r)
	})
	srv, _ := startServer(t, 4, h, true)
	client := srv.Client()
	client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // httptest's self-signed certificate
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.True(t, sawTLS, "the handler sees r.TLS")
}

func TestNoLimit(t *testing.T) {
	plain := &http.Server{ReadHeaderTimeout: time.Second}
	New(0).Install(plain)
	assert.Nil(t, plain.ConnState, "no hook without a limit")

	srv, l := startServer(t, 0, http.HandlerFunc(ok), false)
	for range 5 {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		require.NoError(t, err)
		defer c.Close()
	}
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, Stats{}, l.Stats())
}

func TestInstallKeepsAnExistingHook(t *testing.T) {
	var mu sync.Mutex
	var states []string
	seen := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(states, ",")
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(ok))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		mu.Lock()
		states = append(states, s.String())
		mu.Unlock()
	}
	New(2).Install(srv.Config)
	srv.Start()
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Eventually(t, func() bool { return strings.Contains(seen(), "closed") }, 5*time.Second, time.Millisecond)
	assert.True(t, strings.HasPrefix(seen(), "new,active,"), "the earlier hook still sees every state: %s", seen())
}
