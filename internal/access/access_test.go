package access

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

var allEnv = Env{Prefix: "events.access", Served: []Action{EventsWrite, StatusRead}, Auth: true, ClientCerts: true}

func TestValidate(t *testing.T) {
	ok := Rule{Subjects: []string{"alice"}, Actions: []string{"events:write"}, Pipelines: []string{"team-a/*"}}
	tests := []struct {
		name  string
		env   Env
		rules []Rule
		want  []string // substrings of the error; none: valid
	}{
		{"no rules", Env{Prefix: "events.access"}, nil, nil},
		{"valid", allEnv, []Rule{ok, {Subjects: []string{"cn:runner-*", "*"}, Actions: []string{"status:read", "reports:read"}, Hosts: []string{"pool-[ab]-?"}}}, nil},
		{"empty subjects", allEnv, []Rule{{Actions: []string{"events:write"}, Pipelines: []string{"p"}}}, []string{"events.access.rules[0].subjects must name at least one subject"}},
		{"blank subject", allEnv, []Rule{{Subjects: []string{" "}, Actions: []string{"events:write"}, Pipelines: []string{"p"}}}, []string{"events.access.rules[0].subjects[0] must not be empty"}},
		{"bad subject glob", allEnv, []Rule{{Subjects: []string{"team-["}, Actions: []string{"events:write"}, Pipelines: []string{"p"}}}, []string{`events.access.rules[0].subjects[0] "team-[" is not a valid glob`}},
		{"bad pipeline glob", allEnv, []Rule{{Subjects: []string{"a"}, Actions: []string{"events:write"}, Pipelines: []string{"ok", "x[a-"}}}, []string{`events.access.rules[0].pipelines[1] "x[a-" is not a valid glob`}},
		{"bad host glob", allEnv, []Rule{{Subjects: []string{"a"}, Actions: []string{"events:write"}, Hosts: []string{`h\`}}}, []string{`events.access.rules[0].hosts[0] "h\\" is not a valid glob`}},
		{"empty pipeline", allEnv, []Rule{{Subjects: []string{"a"}, Actions: []string{"events:write"}, Pipelines: []string{""}}}, []string{"events.access.rules[0].pipelines[0] must not be empty"}},
		{"unknown action", allEnv, []Rule{{Subjects: []string{"a"}, Actions: []string{"events:read"}, Pipelines: []string{"p"}}}, []string{`events.access.rules[0].actions[0] "events:read" is not an action; use events:write, status:read, reports:read`}},
		{"no actions", allEnv, []Rule{{Subjects: []string{"a"}, Pipelines: []string{"p"}}}, []string{"events.access.rules[0].actions must name at least one action"}},
		{"action not served", allEnv, []Rule{{Subjects: []string{"a"}, Actions: []string{"reports:read"}, Pipelines: []string{"p"}}}, []string{"events.access.rules[0].actions: this API checks only events:write, status:read; the rule can never match here"}},
		{"no pipelines or hosts", allEnv, []Rule{{Subjects: []string{"a"}, Actions: []string{"events:write"}}}, []string{`events.access.rules[0] must list pipelines or hosts`}},
		{"no auth, no certs", Env{Prefix: "status.access", Served: []Action{StatusRead}}, []Rule{{Subjects: []string{"*"}, Actions: []string{"status:read"}, Pipelines: []string{"*"}}}, []string{"status.access.rules: no request can have a subject"}},
		{"auth subject without auth", Env{Prefix: "status.access", Served: []Action{StatusRead}, ClientCerts: true}, []Rule{{Subjects: []string{"cn:a", "alice", "group:ops"}, Actions: []string{"status:read"}, Pipelines: []string{"*"}}},
			[]string{`status.access.rules[0].subjects[1] "alice" names an authenticator subject, but auth.authenticator is not set`, `status.access.rules[0].subjects[2] "group:ops" names an authenticator subject`}},
		{"cert subject without client CA", Env{Prefix: "status.access", Served: []Action{StatusRead}, Auth: true}, []Rule{{Subjects: []string{"dns:runner.example"}, Actions: []string{"status:read"}, Pipelines: []string{"*"}}},
			[]string{`status.access.rules[0].subjects[0] "dns:runner.example" names a client certificate, but tls.client_ca_file is not set`}},
		{"every problem at once", allEnv, []Rule{ok, {}, {Subjects: []string{"["}, Actions: []string{"x"}}}, []string{
			"rules[1].subjects must name", "rules[1].actions must name", "rules[1] must list pipelines or hosts",
			"rules[2].subjects[0]", `rules[2].actions[0] "x"`, "rules[2] must list",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Config{Rules: tt.rules}.Validate(tt.env)
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func ids(names ...string) Identity { return Identity{Names: names} }

func TestPolicyAllowed(t *testing.T) {
	p := New(Config{Rules: []Rule{
		{Subjects: []string{"team-a"}, Actions: []string{"events:write", "status:read"}, Pipelines: []string{"team-a/*"}},
		{Subjects: []string{"team-a"}, Actions: []string{"reports:read"}, Pipelines: []string{"team-a/app"}, Hosts: []string{"pool-a-*"}},
		{Subjects: []string{"cn:runner-*", "dns:*.pool-b.example"}, Actions: []string{"events:write"}, Hosts: []string{"pool-b-?"}},
		{Subjects: []string{"group:sre"}, Actions: []string{"status:read", "reports:read"}, Pipelines: []string{"*"}, Hosts: []string{"*"}},
		{Subjects: []string{"*"}, Actions: []string{"status:read"}, Pipelines: []string{"public"}},
	}})
	require.True(t, p.Enabled())
	tests := []struct {
		id     Identity
		action Action
		target Target
		want   bool
	}{
		{ids("team-a"), EventsWrite, Build("team-a/app", "h1"), true},
		{ids("team-a"), EventsWrite, Build("team-a/lib/x", "h1"), false}, // * does not cross /
		{ids("team-a"), EventsWrite, Build("team-b/app", "h1"), false},
		{ids("team-a"), StatusRead, Build("team-a/app", "h1"), true},
		{ids("team-a"), ReportsRead, Build("team-a/app", "h1"), false}, // host not listed
		{ids("team-a"), ReportsRead, Build("team-a/app", "pool-a-7"), true},
		{ids("team-a"), StatusRead, Host("h1"), false}, // rule lists no hosts: no host targets
		{ids("team-b"), EventsWrite, Build("team-a/app", "h1"), false},
		{ids("cn:runner-1"), EventsWrite, Build("anything", "pool-b-1"), true},
		{ids("cn:runner-1"), EventsWrite, Build("anything", "pool-b-12"), false},
		{ids("cn:builder"), EventsWrite, Build("anything", "pool-b-1"), false},
		{ids("cn:builder", "dns:x.pool-b.example"), EventsWrite, Build("p", "pool-b-1"), true},
		{ids("cn:runner-1"), StatusRead, Build("p", "pool-b-1"), false},
		{ids("alice", "group:sre"), ReportsRead, Build("team-b/app", "h9"), true},
		{ids("alice", "group:sre"), StatusRead, Host("h9"), true},
		{ids("alice", "group:sre"), EventsWrite, Build("team-b/app", "h9"), false},
		{ids("bob"), StatusRead, Build("public", "any/host"), true},
		{ids(), StatusRead, Build("public", "h"), false}, // anonymous matches no subject, not even *
	}
	for _, tt := range tests {
		got := p.Allowed(tt.id, tt.action, tt.target)
		assert.Equal(t, tt.want, got, "%v %s %s", tt.id.Names, tt.action, tt.target)
		err := p.Check(tt.id, tt.action, tt.target)
		if tt.want {
			assert.NoError(t, err)
			continue
		}
		var d *Denied
		require.ErrorAs(t, err, &d)
		assert.Equal(t, tt.action, d.Action)
		assert.Equal(t, tt.target, d.Target)
		assert.Equal(t, tt.id.Subject(), d.Subject)
	}
}

func TestNoRulesAllowsEverything(t *testing.T) {
	p := New(Config{})
	assert.False(t, p.Enabled())
	assert.True(t, p.Allowed(Identity{}, EventsWrite, Build("x", "y")))
	assert.NoError(t, p.Check(Identity{}, ReportsRead, Host("y")))
}

func TestDeniedMessage(t *testing.T) {
	d := &Denied{Subject: "cn:runner-a", Action: EventsWrite, Target: Build("team-b", "h1")}
	assert.Equal(t, `forbidden: cn:runner-a lacks events:write on pipeline "team-b" on host "h1"`, d.Error())
	d = &Denied{Subject: "anonymous", Action: StatusRead, Target: Host("h1")}
	assert.Equal(t, `forbidden: anonymous lacks status:read on host "h1"`, d.Error())
}

type authData map[string]any

func (a authData) GetAttribute(n string) any { return a[n] }
func (a authData) GetAttributeNames() []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	return out
}

func requestWith(auth client.AuthData, certs []*x509.Certificate, header string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/builds", nil)
	if header != "" {
		r.Header.Set("Authorization", header)
	}
	if auth != nil {
		r = r.WithContext(client.NewContext(context.Background(), client.Info{Auth: auth}))
	}
	if certs != nil {
		r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{certs}}
	}
	return r
}

func TestIdentify(t *testing.T) {
	u, _ := url.Parse("spiffe://ci/runner-a")
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "runner-a"}, DNSNames: []string{"runner-a.ci"}, URIs: []*url.URL{u}, EmailAddresses: []string{"ci@example.com"}}
	tests := []struct {
		name   string
		r      *http.Request
		authID string
		want   []string
	}{
		{"nothing", requestWith(nil, nil, ""), "", nil},
		{"subject attribute", requestWith(authData{"subject": "alice"}, nil, "Bearer x"), "oidc", []string{"alice"}},
		{"sub before username", requestWith(authData{"sub": "s1", "username": "u"}, nil, ""), "a", []string{"s1"}},
		{"groups", requestWith(authData{"subject": "alice", "membership": []string{"sre", "dev"}}, nil, ""), "oidc", []string{"alice", "group:sre", "group:dev"}},
		{"groups as any", requestWith(authData{"subject": "alice", "membership": []any{"sre", 3}}, nil, ""), "oidc", []string{"alice", "group:sre"}},
		{"credential fingerprint", requestWith(authData{}, nil, "Bearer t1"), "bearertokenauth", []string{CredentialSubject("bearertokenauth", "Bearer t1")}},
		{"credential fingerprint without auth data", requestWith(nil, nil, "Bearer t1"), "bearertokenauth", []string{CredentialSubject("bearertokenauth", "Bearer t1")}},
		{"no authenticator, no fingerprint", requestWith(nil, nil, "Bearer t1"), "", nil},
		{"reserved prefix from the authenticator is not used", requestWith(authData{"subject": "cn:admin"}, nil, ""), "a", nil},
		{"certificate", requestWith(nil, []*x509.Certificate{cert}, ""), "", []string{"cn:runner-a", "dns:runner-a.ci", "uri:spiffe://ci/runner-a", "email:ci@example.com"}},
		{"subject and certificate", requestWith(authData{"subject": "alice"}, []*x509.Certificate{cert}, ""), "x", []string{"alice", "cn:runner-a", "dns:runner-a.ci", "uri:spiffe://ci/runner-a", "email:ci@example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Identify(tt.r, tt.authID).Names)
		})
	}
	fp := CredentialSubject("bearertokenauth", "Bearer t1")
	assert.Regexp(t, `^bearertokenauth/credential-sha256:[0-9a-f]{12}$`, fp)
	assert.NotEqual(t, fp, CredentialSubject("bearertokenauth", "Bearer t2"))
	assert.Equal(t, "anonymous", Identity{}.Subject())

	many := &x509.Certificate{Subject: pkix.Name{CommonName: "c"}}
	for range 200 {
		many.DNSNames = append(many.DNSNames, "x")
	}
	assert.Len(t, Identify(requestWith(nil, []*x509.Certificate{many}, ""), "").Names, maxNames)
}

func TestAuditBounded(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	a := NewAudit(zap.New(core))
	now := time.Unix(1000, 0)
	deny := Decision{Subject: "cn:x", Action: EventsWrite, Target: Build("p", "h")}
	for range 1000 {
		a.Record(deny, now)
	}
	denied := logs.FilterField(zap.String("decision", "deny")).AllUntimed()
	require.Len(t, denied, AuditBurst, "a flood of denials writes a bounded number of lines")
	assert.Equal(t, zapcore.WarnLevel, denied[0].Level)
	ctx := denied[0].ContextMap()
	assert.Equal(t, "cn:x", ctx["subject"])
	assert.Equal(t, "events:write", ctx["action"])
	assert.Equal(t, `pipeline "p" on host "h"`, ctx["target"])

	// A second later the bucket has room again, and the line says how many were left out.
	a.Record(deny, now.Add(time.Second))
	last := logs.AllUntimed()[logs.Len()-1]
	assert.EqualValues(t, 1000-AuditBurst, last.ContextMap()["lines_left_out"])

	a.Record(Decision{Subject: "alice", Action: StatusRead, Target: Host("h"), Allowed: true, Count: 3}, now)
	allowed := logs.FilterField(zap.String("decision", "allow")).AllUntimed()
	require.Len(t, allowed, 1)
	assert.Equal(t, zapcore.DebugLevel, allowed[0].Level)
	assert.EqualValues(t, 3, allowed[0].ContextMap()["count"])

	// At info level the allowed decisions cost nothing and write nothing.
	infoCore, infoLogs := observer.New(zapcore.InfoLevel)
	b := NewAudit(zap.New(infoCore))
	b.Record(Decision{Subject: "alice", Action: StatusRead, Target: Host("h"), Allowed: true}, now)
	b.Record(deny, now)
	assert.Equal(t, 1, infoLogs.Len())
	assert.True(t, strings.Contains(infoLogs.All()[0].Message, "access"))
}
