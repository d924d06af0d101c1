package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingServer answers every request 202 and counts events (non-empty lines).
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var events atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n := 0
		for _, l := range strings.Split(string(body), "\n") {
			if strings.TrimSpace(l) != "" {
				n++
			}
		}
		events.Add(int64(n))
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"accepted":%d,"duplicates":0}`, n)
	}))
	t.Cleanup(srv.Close)
	return srv, &events
}

func TestRunBatchJSON(t *testing.T) {
	srv, events := countingServer(t)
	var out bytes.Buffer
	err := run(context.Background(), []string{
		"-target", srv.URL, "-mode", "batch", "-batch", "10", "-builds", "4", "-workers", "2",
		"-max-requests", "6", "-prefix", "t", "-json",
	}, &out)
	require.NoError(t, err)
	var s runSummary
	require.NoError(t, json.Unmarshal(out.Bytes(), &s))
	assert.Equal(t, int64(6), s.Requests)
	assert.Equal(t, int64(60), s.Events)
	assert.Equal(t, int64(60), s.Accepted)
	// 4 build_started + 4 phase_started, then the run.
	assert.Equal(t, int64(68), events.Load())
}

func TestRunStartOnly(t *testing.T) {
	srv, events := countingServer(t)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-target", srv.URL, "-mode", "start", "-builds", "3", "-prefix", "s"}, &out))
	assert.Equal(t, "started 3 builds s-00000..s-00002\n", out.String())
	assert.Equal(t, int64(6), events.Load())
}

func TestRunPacedText(t *testing.T) {
	srv, events := countingServer(t)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-target", srv.URL, "-mode", "paced", "-builds", "2", "-hz", "500", "-max-requests", "3"}, &out))
	assert.Contains(t, out.String(), "paced: 3 ticks")
	assert.Equal(t, int64(4+6), events.Load())
}

func TestRunRefusesRemoteTarget(t *testing.T) {
	err := run(context.Background(), []string{"-target", "http://10.1.2.3:4320"}, io.Discard)
	require.ErrorContains(t, err, "not a loopback address")
}

func TestParseFlags(t *testing.T) {
	_, err := parseFlags([]string{"-mode", "flood"})
	require.ErrorContains(t, err, "-mode")
	_, err = parseFlags([]string{"-builds", "0"})
	require.ErrorContains(t, err, "-builds")
	_, err = parseFlags([]string{"extra"})
	require.ErrorContains(t, err, "unexpected")
	o, err := parseFlags(nil)
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:4320", o.target)
	assert.True(t, strings.HasPrefix(o.prefix, "load-"))
}
