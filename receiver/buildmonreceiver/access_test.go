package buildmonreceiver

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/buildmon/buildmon/internal/access"
	"github.com/buildmon/buildmon/internal/wire"
)

// teamRules: alice writes and reads team-a's builds, bob team-b's; ci writes every pipeline
// but only on the hosts of pool-1.
var teamRules = access.Config{Rules: []access.Rule{
	{Subjects: []string{"alice"}, Actions: []string{"events:write", "status:read"}, Pipelines: []string{"team-a/*"}},
	{Subjects: []string{"bob"}, Actions: []string{"events:write"}, Pipelines: []string{"team-b/*"}},
	{Subjects: []string{"ci"}, Actions: []string{"events:write"}, Hosts: []string{"pool-1-*"}},
}}

// accessReceiver starts a receiver behind the test bearer authenticator with teamRules, with
// or without storage (the committer path), logging to logs.
func accessReceiver(t *testing.T, withStorage bool) (*testReceiver, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	set := nopSettings()
	set.Logger = zap.New(core)
	authID := component.MustNewID("bearer")
	storeID := component.MustNewID("mem")
	ext := map[component.ID]component.Component{authID: bearerAuth{}}
	if withStorage {
		ext[storeID] = newMemStorage()
	}
	host := hostWithExtensions{Host: componenttest.NewNopHost(), ext: ext}
	tr := startReceiverWithSettings(t, host, set, func(c *Config) {
		c.Events.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: authID}})
		c.Events.Access = teamRules
		if withStorage {
			c.Storage = &storeID
		}
	})
	return tr, logs
}

func forbidden(t *testing.T, code int, body string) wire.Error {
	t.Helper()
	require.Equal(t, http.StatusForbidden, code, body)
	var e wire.Error
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	return e
}

func TestAccessEvents(t *testing.T) {
	for _, withStorage := range []bool{false, true} {
		name := "memory"
		if withStorage {
			name = "storage"
		}
		t.Run(name, func(t *testing.T) {
			tr, logs := accessReceiver(t, withStorage)
			startA := `{"type":"build_started","build_id":"a1","pipeline":"team-a/app"}`
			code, body, _ := tr.postAs(t, "alice", startA)
			require.Equal(t, http.StatusAccepted, code, body)

			// bob may not write events for team-a's build, not even a duplicate of its start.
			for _, ev := range []string{
				`{"type":"phase_started","build_id":"a1","phase":"INIT"}`,
				startA,
				`{"type":"build_finished","build_id":"a1","result":"success"}`,
			} {
				e := tr.forbiddenAs(t, "bob", ev)
				assert.Equal(t, "events:write", e.Permission)
				assert.Equal(t, "team-a/app", e.Pipeline)
				assert.Equal(t, "build-host-1", e.Host)
				assert.Equal(t, "bob", e.Subject)
				assert.Nil(t, e.Index, "a single event has no index")
				assert.Contains(t, e.Error, `forbidden: bob lacks events:write on pipeline "team-a/app"`)
			}
			b, _ := tr.r.registry.Get("a1")
			assert.Equal(t, "pending", string(b.Phases[0].State), "a refused request changes nothing")
			assert.True(t, b.Finished.IsZero())

			// A batch that mixes permitted and forbidden pipelines is refused whole.
			mixed := strings.Join([]string{
				`{"type":"build_started","build_id":"a2","pipeline":"team-a/lib"}`,
				`{"type":"phase_started","build_id":"a1","phase":"INIT"}`,
				`{"type":"build_started","build_id":"b2","pipeline":"team-b/app"}`,
			}, "\n")
			e := tr.forbiddenAs(t, "alice", mixed)
			require.NotNil(t, e.Index)
			assert.Equal(t, 2, *e.Index)
			assert.Equal(t, "team-b/app", e.Pipeline)
			_, created := tr.r.registry.Get("a2")
			assert.False(t, created)
			b, _ = tr.r.registry.Get("a1")
			assert.Equal(t, "pending", string(b.Phases[0].State))

			// The build's host counts: ci writes any pipeline on pool-1 hosts only.
			code, body, _ = tr.postAs(t, "ci", `{"type":"build_started","build_id":"c1","pipeline":"team-b/app","attributes":{"host":"pool-1-a"}}`)
			require.Equal(t, http.StatusAccepted, code, body)
			e = tr.forbiddenAs(t, "ci", `{"type":"build_started","build_id":"c2","pipeline":"team-b/app","attributes":{"host":"pool-2-a"}}`)
			assert.Equal(t, "pool-2-a", e.Host)
			e = tr.forbiddenAs(t, "ci", `{"type":"phase_started","build_id":"a1","phase":"INIT"}`)
			assert.Equal(t, "build-host-1", e.Host, "the receiver's host is the host of a build that names none")

			// Unknown builds stay 404, so the answer tells no more than without rules.
			code, _, _ = tr.postAs(t, "bob", `{"type":"phase_started","build_id":"nope","phase":"INIT"}`)
			assert.Equal(t, http.StatusNotFound, code)

			// The permitted batch passes, and its allowed decision is audited at debug.
			code, body, _ = tr.postAs(t, "alice", `{"type":"phase_started","build_id":"a1","phase":"INIT"}`+"\n"+`{"type":"step_completed","build_id":"a1","phase":"INIT"}`+
				"\n"+`{"type":"build_started","build_id":"a3","pipeline":"team-a/lib"}`)
			require.Equal(t, http.StatusAccepted, code, body)

			denied := logs.FilterMessage("access decision").FilterField(zap.String("decision", "deny")).All()
			require.Len(t, denied, 6)
			assert.Equal(t, zapcore.WarnLevel, denied[0].Level)
			assert.Equal(t, "bob", denied[0].ContextMap()["subject"])
			assert.Equal(t, "events:write", denied[0].ContextMap()["action"])
			allowed := logs.FilterMessage("access decision").FilterField(zap.String("decision", "allow")).All()
			require.NotEmpty(t, allowed)
			last := allowed[len(allowed)-1].ContextMap()
			assert.Equal(t, "alice", last["subject"])
			assert.EqualValues(t, 2, last["count"], "two builds")
		})
	}
}

func TestAccessRegistryView(t *testing.T) {
	tr, _ := accessReceiver(t, false)
	code, body, _ := tr.postAs(t, "alice", `{"type":"build_started","build_id":"a1","pipeline":"team-a/app"}`)
	require.Equal(t, http.StatusAccepted, code, body)
	get := func(token string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, tr.url+"/v1/registry/builds/a1", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body = get("alice")
	require.Equal(t, http.StatusOK, code, body)
	code, body = get("bob")
	e := forbidden(t, code, body)
	assert.Equal(t, "status:read", e.Permission)
	assert.Equal(t, "team-a/app", e.Pipeline)
}

// Without rules any authenticated subject may write any pipeline, as before.
func TestAccessOffWithoutRules(t *testing.T) {
	tr := authReceiver(t, false, nil)
	code, body, _ := tr.postAs(t, "alice", `{"type":"build_started","build_id":"b1","pipeline":"team-b/app"}`)
	require.Equal(t, http.StatusAccepted, code, body)
	code, body, _ = tr.postAs(t, "bob", `{"type":"build_finished","build_id":"b1","result":"success"}`)
	require.Equal(t, http.StatusAccepted, code, body)
}

func (tr *testReceiver) forbiddenAs(t *testing.T, token, body string) wire.Error {
	t.Helper()
	code, b, _ := tr.postAs(t, token, body)
	return forbidden(t, code, b)
}

func TestAccessConfigValidate(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Events.Access = access.Config{Rules: []access.Rule{
		{Subjects: []string{"alice"}, Actions: []string{"reports:read"}, Pipelines: []string{"["}},
	}}
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"events.access.rules: no request can have a subject: set auth.authenticator or tls.client_ca_file",
		`events.access.rules[0].subjects[0] "alice" names an authenticator subject, but auth.authenticator is not set`,
		`events.access.rules[0].pipelines[0] "[" is not a valid glob`,
	} {
		assert.Contains(t, err.Error(), want)
	}
	cfg.Events.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: component.MustNewID("bearer")}})
	cfg.Events.Access.Rules[0].Pipelines = []string{"team-a/*"}
	assert.ErrorContains(t, cfg.Validate(), "events.access.rules[0].actions: this API checks only events:write, status:read; the rule can never match here")
	cfg.Events.Access.Rules[0].Actions = []string{"events:write"}
	assert.NoError(t, cfg.Validate())
}
