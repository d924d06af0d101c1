package checkpointexporter

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension/extensionauth"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/audit"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/statusapi"
)

// pausedBuild is a running build that the processor paused, with a build alert; its host
// has a CRITICAL alert.
func pausedBuild() (buildSpec, hostSpec) {
	b := running("paused-1", 2)
	b.paused = true
	b.alerts = []alertSpec{{rule: "build_slow", level: "WARNING", state: "firing", active: 1, value: 1.5}}
	h := hostSpec{name: "host-a", at: t0.Add(2 * time.Second), cpu: 0.99, memUtil: 0.4,
		alerts: []alertSpec{{rule: "host_cpu_saturated", level: "CRITICAL", state: "firing", active: 1, value: 0.99}}}
	return b, h
}

func TestStatusAPI(t *testing.T) {
	h := newHarness(t, testConfig(t.TempDir()), nil).mustStart()
	b, host := pausedBuild()
	h.consume(host.metrics(), b.metrics(), finishedBuild("done", "other").metrics())
	h.tick()

	t.Run("build status", func(t *testing.T) {
		code, body := h.get("/v1/builds/paused-1")
		require.Equal(t, http.StatusOK, code)
		var m map[string]any
		require.NoError(t, json.Unmarshal(body, &m))
		for _, key := range []string{"id", "pipeline", "host", "state", "result", "phase", "progress", "eta_seconds",
			"paused", "alerts", "phases", "updated_at", "active_operations", "host_resources"} {
			assert.Contains(t, m, key)
		}
		st := status(t, h, "paused-1")
		assert.Equal(t, "paused-1", st.ID)
		assert.Equal(t, "pipe", st.Pipeline)
		assert.Equal(t, "host-a", st.Host)
		assert.Equal(t, "running", st.State)
		assert.Equal(t, "", st.Result)
		assert.Equal(t, "BUILD", st.Phase)
		assert.InDelta(t, 0.5, st.Progress, 1e-9)
		assert.InDelta(t, 50, st.ProgressPercent, 1e-9)
		require.NotNil(t, st.ETASeconds)
		assert.InDelta(t, 30, *st.ETASeconds, 1e-9)
		assert.True(t, st.Paused)
		require.Len(t, st.Alerts, 2)
		assert.Equal(t, "build_slow", st.Alerts[0].Rule)
		assert.Equal(t, "build", st.Alerts[0].Scope)
		assert.Equal(t, "host_cpu_saturated", st.Alerts[1].Rule)
		assert.Equal(t, "CRITICAL", st.Alerts[1].Level)
		assert.Equal(t, "firing", st.Alerts[1].State)
		assert.Equal(t, "host", st.Alerts[1].Scope)
		assert.InDelta(t, 0.99, st.Alerts[1].Value, 1e-9)
		require.Len(t, st.Phases, 3)
		assert.Equal(t, "BUILD", st.Phases[1].Name)
		assert.Equal(t, "running", st.Phases[1].State)
		assert.Equal(t, int64(4), st.Phases[1].StepsTotal)
		assert.Equal(t, int64(2), st.Phases[1].StepsCompleted)
		assert.InDelta(t, 0.5, st.Phases[1].Progress, 1e-9)
		assert.InDelta(t, 2, st.Phases[1].DurationSeconds, 1e-9)
		assert.Equal(t, []string{"BUILD"}, st.ActiveOperations)
		require.NotNil(t, st.HostResources)
		assert.InDelta(t, 0.99, *st.HostResources.CPUUtilization, 1e-9)
		assert.InDelta(t, 0.7, *st.HostResources.FilesystemUtilization, 1e-9)
		assert.Equal(t, "/data", st.HostResources.FilesystemMountpoint)
		assert.InDelta(t, 150, *st.HostResources.NetworkTransmitBytesPS, 1e-9)
		assert.Equal(t, "/v1/builds/paused-1/phases/INIT/report", st.Reports.Phases["INIT"])
		assert.Equal(t, t0.Add(2*time.Second).Format(time.RFC3339Nano), st.UpdatedAt)
	})

	t.Run("finished build", func(t *testing.T) {
		st := status(t, h, "done")
		assert.Equal(t, "finished", st.State)
		assert.Equal(t, "success", st.Result)
		require.NotNil(t, st.ETASeconds)
		assert.Zero(t, *st.ETASeconds)
		assert.Empty(t, st.ActiveOperations)
		assert.Equal(t, "BUILD", st.Phase, "the last phase that ended")
		assert.Equal(t, "/v1/builds/done/report", st.Reports.Build)
	})

	t.Run("list and filters", func(t *testing.T) {
		for query, want := range map[string][]string{
			"":                  {"done", "paused-1"},
			"?state=running":    {"paused-1"},
			"?state=finished":   {"done"},
			"?pipeline=other":   {"done"},
			"?host=nowhere":     nil,
			"?host=host-a&x=1":  {"done", "paused-1"},
			"?state=running&h=": {"paused-1"},
		} {
			code, body := h.get("/v1/builds" + query)
			require.Equal(t, http.StatusOK, code)
			var list statusapi.BuildList
			require.NoError(t, json.Unmarshal(body, &list))
			var ids []string
			for _, b := range list.Builds {
				ids = append(ids, b.ID)
			}
			assert.Equal(t, want, ids, query)
			assert.Equal(t, len(want), list.Count)
		}
	})

	t.Run("reports", func(t *testing.T) {
		code, body := h.get("/v1/builds/done/report")
		require.Equal(t, http.StatusOK, code)
		assert.Contains(t, string(body), `"kind": "build"`)
		code, body = h.get("/v1/builds/paused-1/phases/INIT/report")
		require.Equal(t, http.StatusOK, code)
		assert.Contains(t, string(body), `"kind": "phase"`)
		for path, want := range map[string]string{
			"/v1/builds/paused-1/report":              "has not finished",
			"/v1/builds/paused-1/phases/BUILD/report": "has not ended",
			"/v1/builds/paused-1/phases/NOPE/report":  "unknown",
			"/v1/builds/nope/report":                  "unknown build",
		} {
			code, body := h.get(path)
			assert.Equal(t, http.StatusNotFound, code, path)
			var e statusapi.Error
			require.NoError(t, json.Unmarshal(body, &e), path)
			assert.Contains(t, e.Error, want, path)
		}
	})

	t.Run("hosts", func(t *testing.T) {
		code, body := h.get("/v1/hosts")
		require.Equal(t, http.StatusOK, code)
		var list statusapi.HostList
		require.NoError(t, json.Unmarshal(body, &list))
		require.Equal(t, 1, list.Count)
		hs := list.Hosts[0]
		assert.Equal(t, "host-a", hs.Name)
		assert.Equal(t, []string{"paused-1"}, hs.Builds)
		require.Len(t, hs.Alerts, 1)
		assert.InDelta(t, 0.4, *hs.Resources.MemoryUtilization, 1e-9)
		assert.Equal(t, int64(16e9), *hs.Resources.MemoryTotalBytes)
		assert.InDelta(t, 7, *hs.Resources.DiskWriteOpsPS, 1e-9)
		code, _ = h.get("/v1/hosts/host-a")
		assert.Equal(t, http.StatusOK, code)
		code, _ = h.get("/v1/hosts/nope")
		assert.Equal(t, http.StatusNotFound, code)
	})

	t.Run("not found and read-only", func(t *testing.T) {
		for _, p := range []string{"/", "/v1", "/v1/builds/", "/v1/builds/x/y", "/v2/builds"} {
			code, _ := h.get(p)
			assert.Equal(t, http.StatusNotFound, code, p)
		}
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			req, err := http.NewRequest(m, h.url("/v1/builds/paused-1"), strings.NewReader("{}"))
			require.NoError(t, err)
			resp, err := h.client.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, m)
			assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
		}
		// Nothing changed.
		assert.True(t, status(t, h, "paused-1").Paused)
	})

	t.Run("audit log", func(t *testing.T) {
		recs := auditRecords(t, filepath.Join(h.cfg.Directory, "audit.log"))
		var get, post bool
		for _, r := range recs {
			if r.Kind != audit.KindStatusRequest {
				continue
			}
			assert.Equal(t, "anonymous", r.Subject)
			assert.NotEmpty(t, r.Remote)
			assert.NotEmpty(t, r.Time)
			get = get || (r.Method == http.MethodGet && r.Path == "/v1/builds/paused-1" && r.Status == 200)
			post = post || (r.Method == http.MethodPost && r.Status == http.StatusMethodNotAllowed)
		}
		assert.True(t, get && post, "audit log lacks requests: %+v", recs)
	})
}

func auditRecords(t *testing.T, path string) []audit.Record {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []audit.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r audit.Record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		out = append(out, r)
	}
	return out
}

// testAuth is a server authenticator extension: a fixed bearer token; with subject set it
// puts the subject into the auth data, as authenticators such as oidc do.
type testAuth struct {
	component.StartFunc
	component.ShutdownFunc
	token   string
	subject string
}

var _ extensionauth.Server = (*testAuth)(nil)

type authData map[string]any

func (a authData) GetAttribute(name string) any { return a[name] }
func (a authData) GetAttributeNames() []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	return out
}

func (a *testAuth) Authenticate(ctx context.Context, headers map[string][]string) (context.Context, error) {
	v := headers["Authorization"]
	if len(v) == 0 || v[0] != "Bearer "+a.token {
		return ctx, errors.New("missing or wrong token")
	}
	if a.subject != "" {
		info := client.FromContext(ctx)
		info.Auth = authData{"subject": a.subject}
		ctx = client.NewContext(ctx, info)
	}
	return ctx, nil
}

type hostWithExtensions struct {
	component.Host
	ext map[component.ID]component.Component
}

func (h hostWithExtensions) GetExtensions() map[component.ID]component.Component { return h.ext }

func TestStatusAPIAuthRequired(t *testing.T) {
	for _, tc := range []struct {
		name, subject, wantSubject string
	}{
		{"subject from auth data", "alice", "alice"},
		{"authenticator without subject", "", "testauth/credential-sha256:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			authID := component.MustNewID("testauth")
			cfg := testConfig(t.TempDir())
			cfg.Status.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: authID}})
			h := newHarness(t, cfg, nil)
			h.host = hostWithExtensions{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{
				authID: &testAuth{token: "s3cret", subject: tc.subject},
			}}
			h.mustStart()
			h.consume(running("b1", 1).metrics())

			code, _ := h.get("/v1/builds/b1")
			assert.Equal(t, http.StatusUnauthorized, code)
			code, _ = h.get("/v1/builds/b1", "Authorization", "Bearer wrong")
			assert.Equal(t, http.StatusUnauthorized, code)
			code, body := h.get("/v1/builds/b1", "Authorization", "Bearer s3cret")
			assert.Equal(t, http.StatusOK, code, string(body))

			recs := auditRecords(t, filepath.Join(cfg.Directory, "audit.log"))
			require.Len(t, recs, 3)
			assert.Equal(t, http.StatusUnauthorized, recs[0].Status)
			assert.Equal(t, "unauthenticated", recs[0].Subject)
			assert.Equal(t, http.StatusUnauthorized, recs[1].Status)
			assert.Equal(t, http.StatusOK, recs[2].Status)
			assert.True(t, strings.HasPrefix(recs[2].Subject, tc.wantSubject), recs[2].Subject)
			assert.NotContains(t, recs[2].Subject, "s3cret")
		})
	}
}

func TestStatusAPIDisabled(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Status.NetAddr.Endpoint = ""
	h := newHarness(t, cfg, nil).mustStart()
	assert.Nil(t, h.inner.listenAddr)
	h.consume(running("b1", 1).metrics())
}
