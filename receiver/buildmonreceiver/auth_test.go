package buildmonreceiver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension/extensionauth"

	"github.com/buildmon/buildmon/internal/wire"
)

// bearerAuth is a server authenticator for tests: "Bearer <name>" authenticates as <name>
// (as the "subject" attribute; with anonymous set, with no auth data at all, the way
// bearertokenauth does).
type bearerAuth struct {
	component.StartFunc
	component.ShutdownFunc
	anonymous bool
}

var _ extensionauth.Server = bearerAuth{}

type subjectData struct{ subject string }

func (d subjectData) GetAttribute(name string) any {
	if name == "subject" && d.subject != "" {
		return d.subject
	}
	return nil
}

func (d subjectData) GetAttributeNames() []string { return []string{"subject"} }

func (a bearerAuth) Authenticate(ctx context.Context, headers map[string][]string) (context.Context, error) {
	v := headers["Authorization"]
	if len(v) == 0 || !strings.HasPrefix(v[0], "Bearer ") || len(v[0]) == len("Bearer ") {
		return ctx, errors.New("missing or invalid bearer token")
	}
	if a.anonymous {
		// As bearertokenauth: the context is returned as it came, with no auth data.
		return ctx, nil
	}
	info := client.FromContext(ctx)
	info.Auth = subjectData{subject: strings.TrimPrefix(v[0], "Bearer ")}
	return client.NewContext(ctx, info), nil
}

func authReceiver(t *testing.T, anonymous bool, mutate func(*Config)) *testReceiver {
	id := component.MustNewID("bearer")
	host := hostWithExtensions{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{id: bearerAuth{anonymous: anonymous}}}
	return startReceiver(t, host, func(c *Config) {
		c.Events.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: id}})
		if mutate != nil {
			mutate(c)
		}
	})
}

func (tr *testReceiver) postAs(t *testing.T, token, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, tr.url+"/v1/events", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-ndjson")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header
}

func TestAuthRequired(t *testing.T) {
	tr := authReceiver(t, false, nil)
	start := `{"type":"build_started","build_id":"b1","pipeline":"p"}`
	code, body, _ := tr.postAs(t, "", start)
	require.Equal(t, http.StatusUnauthorized, code, body)
	var eb wire.Error
	require.NoError(t, json.Unmarshal([]byte(body), &eb), "401 has the API's JSON error body")
	assert.Contains(t, eb.Error, "bearer token")
	_, known := tr.r.registry.Get("b1")
	assert.False(t, known)

	code, body, _ = tr.postAs(t, "ci-runner", start)
	require.Equal(t, http.StatusAccepted, code, body)
}

// With auth the rate limit is per authenticated subject: one client exhausting its bucket does
// not slow down another behind the same address.
func TestRateLimitPerSubject(t *testing.T) {
	tr := authReceiver(t, false, func(c *Config) { c.RateLimit = RateLimitConfig{EventsPerSecond: 1, Burst: 2} })
	two := `{"type":"build_started","build_id":"a1","pipeline":"p"}` + "\n" + `{"type":"build_started","build_id":"a2","pipeline":"p"}`
	code, body, _ := tr.postAs(t, "alice", two)
	require.Equal(t, http.StatusAccepted, code, body)
	code, body, hdr := tr.postAs(t, "alice", `{"type":"build_started","build_id":"a3","pipeline":"p"}`)
	require.Equal(t, http.StatusTooManyRequests, code, body)
	assert.Equal(t, "1", hdr.Get("Retry-After"))
	code, body, _ = tr.postAs(t, "bob", `{"type":"build_started","build_id":"b1","pipeline":"p"}`)
	require.Equal(t, http.StatusAccepted, code, body)
}

// An authenticator that names no subject (bearertokenauth) gets a bucket per credential.
func TestRateLimitPerCredential(t *testing.T) {
	tr := authReceiver(t, true, func(c *Config) { c.RateLimit = RateLimitConfig{EventsPerSecond: 1, Burst: 1} })
	code, _, _ := tr.postAs(t, "token-1", `{"type":"build_started","build_id":"a1","pipeline":"p"}`)
	require.Equal(t, http.StatusAccepted, code)
	code, _, _ = tr.postAs(t, "token-1", `{"type":"build_started","build_id":"a2","pipeline":"p"}`)
	require.Equal(t, http.StatusTooManyRequests, code)
	code, _, _ = tr.postAs(t, "token-2", `{"type":"build_started","build_id":"a3","pipeline":"p"}`)
	require.Equal(t, http.StatusAccepted, code)
}
