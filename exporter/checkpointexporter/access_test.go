package checkpointexporter

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
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

	"github.com/buildmon/buildmon/internal/access"
	"github.com/buildmon/buildmon/internal/wire"
)

// tokenAuth authenticates "Bearer <subject>" for the subjects it knows, as that subject.
type tokenAuth struct {
	component.StartFunc
	component.ShutdownFunc
	subjects []string
}

var _ extensionauth.Server = (*tokenAuth)(nil)

func (a *tokenAuth) Authenticate(ctx context.Context, headers map[string][]string) (context.Context, error) {
	v := headers["Authorization"]
	for _, s := range a.subjects {
		if len(v) > 0 && v[0] == "Bearer "+s {
			info := client.FromContext(ctx)
			info.Auth = authData{"subject": s}
			return client.NewContext(ctx, info), nil
		}
	}
	return ctx, errors.New("unknown token")
}

func accessHarness(t *testing.T) *harness {
	t.Helper()
	authID := component.MustNewID("tokens")
	cfg := testConfig(t.TempDir())
	cfg.Status.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: authID}})
	cfg.Status.Access = access.Config{Rules: []access.Rule{
		{Subjects: []string{"alice"}, Actions: []string{"status:read", "reports:read"}, Pipelines: []string{"team-a/*"}},
		{Subjects: []string{"bob"}, Actions: []string{"status:read"}, Pipelines: []string{"team-b/*"}, Hosts: []string{"host-a"}},
		{Subjects: []string{"ops"}, Actions: []string{"status:read"}, Hosts: []string{"*"}},
	}}
	require.NoError(t, cfg.Validate())
	h := newHarness(t, cfg, nil)
	h.host = hostWithExtensions{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{
		authID: &tokenAuth{subjects: []string{"alice", "bob", "ops", "nobody"}},
	}}
	h.mustStart()
	h.consume(finishedBuild("a1", "team-a/app").metrics())
	h.consume(finishedBuild("b1", "team-b/app").metrics())
	h.consume(hostSpec{name: "host-a", at: t0.Add(time.Second), cpu: 0.5, memUtil: 0.3}.metrics())
	h.tick()
	return h
}

func (h *harness) getAs(subject, path string) (int, string) {
	h.t.Helper()
	code, body := h.get(path, "Authorization", "Bearer "+subject)
	return code, string(body)
}

func (h *harness) forbiddenAs(subject, path string) wire.Error {
	t := h.t
	t.Helper()
	code, body := h.getAs(subject, path)
	require.Equal(t, http.StatusForbidden, code, body)
	var e wire.Error
	require.NoError(t, json.Unmarshal([]byte(body), &e))
	return e
}

func TestStatusAccessRules(t *testing.T) {
	h := accessHarness(t)
	ids := func(subject, path string) []string {
		code, body := h.getAs(subject, path)
		require.Equal(t, http.StatusOK, code, body)
		var l wire.BuildList
		require.NoError(t, json.Unmarshal([]byte(body), &l))
		var out []string
		for _, b := range l.Builds {
			out = append(out, b.ID)
		}
		assert.Equal(t, len(out), l.Count)
		return out
	}
	// Lists show only what the subject may read.
	assert.Equal(t, []string{"a1"}, ids("alice", "/v1/builds"))
	assert.Equal(t, []string{"b1"}, ids("bob", "/v1/builds"))
	assert.ElementsMatch(t, []string{"a1", "b1"}, ids("ops", "/v1/builds"))
	assert.Empty(t, ids("nobody", "/v1/builds"))
	assert.Empty(t, ids("alice", "/v1/builds?pipeline=team-b/app"))

	code, body := h.getAs("alice", "/v1/builds/a1")
	assert.Equal(t, http.StatusOK, code, body)
	e := h.forbiddenAs("alice", "/v1/builds/b1")
	assert.Equal(t, "status:read", e.Permission)
	assert.Equal(t, "team-b/app", e.Pipeline)
	assert.Equal(t, "host-a", e.Host)
	assert.Equal(t, "alice", e.Subject)

	code, body = h.getAs("alice", "/v1/builds/a1/report")
	assert.Equal(t, http.StatusOK, code, body)
	code, body = h.getAs("alice", "/v1/builds/a1/phases/BUILD/report")
	assert.Equal(t, http.StatusOK, code, body)
	e = h.forbiddenAs("bob", "/v1/builds/b1/report")
	assert.Equal(t, "reports:read", e.Permission, "status:read does not grant reports")
	e = h.forbiddenAs("alice", "/v1/builds/b1/phases/BUILD/report")
	assert.Equal(t, "reports:read", e.Permission)
	code, _ = h.getAs("alice", "/v1/builds/nope/report")
	assert.Equal(t, http.StatusNotFound, code)

	// Hosts need a rule that lists hosts.
	hosts := func(subject string) int {
		code, body := h.getAs(subject, "/v1/hosts")
		require.Equal(t, http.StatusOK, code, body)
		var l wire.HostList
		require.NoError(t, json.Unmarshal([]byte(body), &l))
		return l.Count
	}
	assert.Equal(t, 0, hosts("alice"))
	assert.Equal(t, 1, hosts("bob"))
	assert.Equal(t, 1, hosts("ops"))
	code, body = h.getAs("ops", "/v1/hosts/host-a")
	assert.Equal(t, http.StatusOK, code, body)
	e = h.forbiddenAs("alice", "/v1/hosts/host-a")
	assert.Equal(t, "status:read", e.Permission)
	assert.Equal(t, "host-a", e.Host)
	assert.Empty(t, e.Pipeline)

	// Each denial is in the collector's log with subject, action, target and decision, and
	// the audit log has the request with its 403.
	var denials int
	for _, l := range h.logs.FilterMessage("access decision").All() {
		if l.ContextMap()["decision"] == "deny" {
			denials++
		}
	}
	assert.Equal(t, 4, denials)
	recs := auditRecords(t, h.cfg.Directory+"/audit.log")
	var forbidden []string
	for _, r := range recs {
		if r.Status == http.StatusForbidden {
			forbidden = append(forbidden, r.Subject+" "+r.Path)
		}
	}
	assert.Contains(t, strings.Join(forbidden, "\n"), "alice /v1/builds/b1")
}

func TestStatusAccessConfigValidate(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Status.Access = access.Config{Rules: []access.Rule{
		{Subjects: []string{"cn:runner-a"}, Actions: []string{"events:write"}, Pipelines: []string{"*"}},
	}}
	err := cfg.Validate()
	require.Error(t, err)
	assert.ErrorContains(t, err, "status.access.rules: no request can have a subject")
	assert.ErrorContains(t, err, `status.access.rules[0].subjects[0] "cn:runner-a" names a client certificate, but tls.client_ca_file is not set`)
	assert.ErrorContains(t, err, "status.access.rules[0].actions: this API checks only status:read, reports:read")
	cfg.Status.NetAddr.Endpoint = ""
	assert.ErrorContains(t, cfg.Validate(), "status.endpoint is empty, so the status API is off and the rules never apply")
}
