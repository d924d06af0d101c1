package checkpointexporter

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/checkpoint"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
)

// legacyFolder is the folder name that releases before injective naming gave a build id that
// is no safe file name.
func legacyFolder(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "x-" + hex.EncodeToString(sum[:16])
}

// reportOf reads the build id, phase and result a report answer names.
func reportOf(t *testing.T, body []byte) (id, phase, result string) {
	t.Helper()
	var r struct {
		BuildID string `json:"build_id"`
		Phase   string `json:"phase"`
		Result  string `json:"result"`
	}
	require.NoError(t, json.Unmarshal(body, &r), string(body))
	return r.BuildID, r.Phase, r.Result
}

func TestReportFolderCannotBeTakenOverByAnotherBuild(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, testConfig(dir), nil).mustStart()
	const victim = "checkout:1842"
	h.consume(finishedBuild(victim, "checkout").metrics())
	h.tick()

	// The attacker names its build after the folder the victim's id used to map to.
	attacker := finishedBuild(legacyFolder(victim), "evil")
	attacker.result = "failure"
	h.consume(attacker.metrics())
	h.tick()

	code, body := h.get("/v1/builds/" + victim + "/report")
	require.Equal(t, http.StatusOK, code, string(body))
	id, _, result := reportOf(t, body)
	assert.Equal(t, victim, id)
	assert.Equal(t, "success", result)
	code, body = h.get("/v1/builds/" + victim + "/phases/BUILD/report")
	require.Equal(t, http.StatusOK, code, string(body))
	id, phase, _ := reportOf(t, body)
	assert.Equal(t, victim, id)
	assert.Equal(t, "BUILD", phase)

	code, body = h.get("/v1/builds/" + legacyFolder(victim) + "/report")
	require.Equal(t, http.StatusOK, code, string(body))
	id, _, result = reportOf(t, body)
	assert.Equal(t, legacyFolder(victim), id)
	assert.Equal(t, "failure", result)
	assert.Len(t, reportDirs(t, dir), 2, "one folder per build")
}

// A report file that names another build (a folder shared before injective naming, or a file
// put there by hand) is not served: the answer comes from the state, and the mismatch is logged.
func TestReportOfAnotherBuildIsNotServed(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, testConfig(dir), nil).mustStart()
	h.consume(finishedBuild("victim", "checkout").metrics())
	attacker := finishedBuild("attacker", "evil")
	attacker.result = "failure"
	h.consume(attacker.metrics())
	h.tick()

	for _, file := range []string{"build.json", "phase-BUILD.json"} {
		forged, err := os.ReadFile(filepath.Join(dir, reportsDir, "attacker", file))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, reportsDir, "victim", file), forged, 0o600))
	}
	// A phase report that names the build but another phase.
	initReport, err := os.ReadFile(filepath.Join(dir, reportsDir, "victim", "phase-INIT.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, reportsDir, "victim", "phase-BUILD.json"), initReport, 0o600))

	code, body := h.get("/v1/builds/victim/report")
	require.Equal(t, http.StatusOK, code, string(body))
	id, _, result := reportOf(t, body)
	assert.Equal(t, "victim", id)
	assert.Equal(t, "success", result)
	code, body = h.get("/v1/builds/victim/phases/BUILD/report")
	require.Equal(t, http.StatusOK, code, string(body))
	id, phase, _ := reportOf(t, body)
	assert.Equal(t, "victim", id)
	assert.Equal(t, "BUILD", phase)
	assert.True(t, h.logged("error", "belongs to another build"), "the mismatch is logged")
}

// forgedSealed is a checkpoint envelope flagged as sealed with a key id no one has, with a
// valid checksum (anyone who can write the folder can make one: the checksum is not keyed).
func forgedSealed(t *testing.T) []byte {
	t.Helper()
	env, err := checkpoint.Codec{}.Encode(checkpoint.KindCheckpoint, []byte(`{"format":1}`))
	require.NoError(t, err)
	env = append(env, make([]byte, 40)...)
	env[11] |= 2 // sealed
	copy(env[12:20], "bogus-id")
	binary.BigEndian.PutUint64(env[20:28], uint64(len(env)-60))
	sum := sha256.New()
	sum.Write(env[:28])
	sum.Write(env[60:])
	copy(env[28:60], sum.Sum(nil))
	return env
}

// A file named with the largest sequence number made the sequence wrap and every new
// checkpoint was pruned as soon as it was written; a forged sealed header stopped Start.
func TestHostileCheckpointFilesDoNotStopCheckpointing(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, testConfig(dir), nil).mustStart()
	h.consume(finishedBuild("before", "pipe").metrics())
	h.tick()
	h.stop()

	for name, data := range map[string][]byte{
		"state-18446744073709551615.ckpt": []byte("planted"),
		"state-99999.ckpt":                []byte("planted"),
		checkpoint.FileName(1000):         forgedSealed(t),
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o600))
	}

	h2 := newHarness(t, testConfig(dir), nil).mustStart()
	assert.Equal(t, "success", status(t, h2, "before").Result, "restored from the real generation")
	assert.True(t, h2.logged("error", "state-18446744073709551615.ckpt"), "the absurd name is logged")
	assert.True(t, h2.logged("error", "sealed with a key that is not configured"))
	h2.consume(finishedBuild("after", "pipe").metrics())
	h2.tick()
	h2.stop()

	h3 := newHarness(t, testConfig(dir), nil).mustStart()
	assert.Equal(t, "success", status(t, h3, "before").Result)
	assert.Equal(t, "success", status(t, h3, "after").Result, "the build finished after the planted files is restored")
}

// A payload that decompresses to more than max_builds builds can encode to is corrupt,
// however well it compresses (a forged 255 MiB payload cost 872 MiB to load).
func TestCheckpointPayloadIsBoundedByMaxBuilds(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MaxBuilds = 10
	h := newHarness(t, cfg, nil).mustStart()
	h.consume(finishedBuild("kept", "pipe").metrics())
	h.tick()
	h.stop()

	// Valid JSON, padded with spaces past the bound.
	limit := state.PayloadLimit(cfg.MaxBuilds)
	payload := append([]byte(`{"format":1,"builds":[],"hosts":[]`), bytes.Repeat([]byte(" "), int(limit))...)
	payload = append(payload, '}')
	env, err := checkpoint.Codec{}.Encode(checkpoint.KindCheckpoint, payload)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, checkpoint.FileName(1000)), env, 0o600))

	h2 := newHarness(t, cfg, nil).mustStart()
	assert.Equal(t, "success", status(t, h2, "kept").Result, "the forged checkpoint was not loaded")
	assert.True(t, h2.logged("error", "once decompressed"))
}

// rawStatus sends one request line as it is (Go's client cleans paths) and returns the status
// code, the Content-Type and the body.
func rawStatus(t *testing.T, h *harness, target string) (int, string, string) {
	t.Helper()
	conn, err := net.Dial("tcp", h.inner.listenAddr.String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: status\r\nConnection: close\r\n\r\n", target)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func TestStatusAPIHostileRequests(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, testConfig(dir), nil).mustStart()
	h.consume(finishedBuild("b1", "pipe").metrics())

	t.Run("unclean paths answer JSON, never a redirect", func(t *testing.T) {
		for _, target := range []string{"//v1/builds", "/v1/builds/../hosts", "/v1/builds/b1/.", "/v1/builds/b1/..", "/v1/hosts/"} {
			code, ctype, body := rawStatus(t, h, target)
			assert.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound}, code, "%s: %s", target, body)
			assert.Equal(t, "application/json", ctype, target)
			assert.Contains(t, body, `"error"`, target)
		}
	})
	t.Run("a closed filter with a bad value answers 400", func(t *testing.T) {
		code, body := h.get("/v1/builds?state=bogus")
		assert.Equal(t, http.StatusBadRequest, code)
		assert.Contains(t, string(body), "state")
		assert.Contains(t, string(body), "running, finished")
		code, _ = h.get("/v1/builds?state=finished")
		assert.Equal(t, http.StatusOK, code)
	})
	t.Run("long paths do not rotate the audit trail away", func(t *testing.T) {
		code, _ := h.get("/v1/builds/b1")
		require.Equal(t, http.StatusOK, code)
		long := "/v1/builds/" + strings.Repeat("A", 100_000)
		for range 300 {
			code, _ := h.get(long)
			require.Equal(t, http.StatusNotFound, code)
		}
		recs := auditRecords(t, filepath.Join(dir, "audit.log"))
		require.NotEmpty(t, recs)
		found := false
		for _, r := range recs {
			found = found || r.Path == "/v1/builds/b1"
		}
		assert.True(t, found, "the request before the flood is still in the audit log")
		assert.Contains(t, recs[len(recs)-1].Path, "[truncated, 100011 bytes]")
	})
}

// A client that sends part of its headers and then nothing is disconnected after
// read_header_timeout instead of holding the connection for ever.
func TestStatusAPIDropsStalledClients(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Status.ReadHeaderTimeout = 100 * time.Millisecond
	h := newHarness(t, cfg, nil).mustStart()
	conn, err := net.Dial("tcp", h.inner.listenAddr.String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("GET /v1/builds HTTP/1.1\r\nHost: status\r\n"))
	require.NoError(t, err)
	// The deadline only keeps a broken server from hanging the test.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err = io.ReadAll(conn)
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the server closed the stalled connection: %v", err)
}

// At max_connections, a connection that never sent a request makes room for a new client;
// one with a request in flight does not, and the new connection is closed at once.
func TestStatusAPIConnectionCap(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Status.MaxConnections = 1
	h := newHarness(t, cfg, nil).mustStart()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}

	busy, err := net.Dial("tcp", h.inner.listenAddr.String())
	require.NoError(t, err)
	defer busy.Close()
	// A request that announces a body it never sends: the server answers only once it has
	// read the body, so the connection has a request in flight.
	_, err = busy.Write([]byte("GET /v1/builds HTTP/1.1\r\nHost: status\r\nContent-Length: 10\r\n\r\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return h.inner.conns.Stats().Busy == 1 }, 10*time.Second, time.Millisecond)
	_, err = client.Get(h.url("/v1/hosts"))
	require.Error(t, err, "a second connection is refused while the only slot has a request in flight")
	require.NoError(t, busy.Close())

	require.Eventually(t, func() bool {
		resp, err := client.Get(h.url("/v1/hosts"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond, "served once the slot is free")

	require.Eventually(t, func() bool { return h.inner.conns.Stats().Open == 0 }, 10*time.Second, time.Millisecond)
	silent, err := net.Dial("tcp", h.inner.listenAddr.String())
	require.NoError(t, err)
	defer silent.Close()
	require.Eventually(t, func() bool { return h.inner.conns.Stats().Open == 1 }, 10*time.Second, time.Millisecond, "the server took the silent connection")
	resp, err := client.Get(h.url("/v1/hosts"))
	require.NoError(t, err, "a silent connection makes room")
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, silent.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = silent.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the silent connection was closed")
}
