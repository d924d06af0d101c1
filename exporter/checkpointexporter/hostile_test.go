package checkpointexporter

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
