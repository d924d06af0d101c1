//go:build e2e

package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// accessPKI is a CA, the events API's server certificate and the runners' client certificates.
type accessPKI struct {
	caFile, serverCert, serverKey string
	pool                          *x509.CertPool
	clients                       map[string]tls.Certificate
}

func newAccessPKI(t *testing.T, dir string) *accessPKI {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(err)
	ca, err := x509.ParseCertificate(caDER)
	must(err)
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		must(os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return path
	}
	p := &accessPKI{pool: x509.NewCertPool(), clients: map[string]tls.Certificate{}}
	p.pool.AddCert(ca)
	p.caFile = write("ca.crt", "CERTIFICATE", caDER)
	serial := int64(2)
	issue := func(cn string, dns []string, usage x509.ExtKeyUsage) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		serial++
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		must(err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		must(err)
		return write(cn+".crt", "CERTIFICATE", der), write(cn+".key", "EC PRIVATE KEY", keyDER)
	}
	p.serverCert, p.serverKey = issue("events-api", nil, x509.ExtKeyUsageServerAuth)
	for name, dns := range map[string][]string{"runner-a": nil, "runner-b": {"runner-b.team-b.ci"}, "ops": nil, "stranger": nil} {
		cert, key := issue(name, dns, x509.ExtKeyUsageClientAuth)
		pair, err := tls.LoadX509KeyPair(cert, key)
		must(err)
		p.clients[name] = pair
	}
	return p
}

func (p *accessPKI) client(name string) *http.Client {
	cfg := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	if name != "" {
		cfg.Certificates = []tls.Certificate{p.clients[name]}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
}

// credentialSubject is the subject access rules give a bearertokenauth token.
func credentialSubject(token string) string {
	sum := sha256.Sum256([]byte("Bearer " + token))
	return "bearertokenauth/credential-sha256:" + hex.EncodeToString(sum[:6])
}

type accessErr struct {
	Error, Permission, Subject, Pipeline, Host string
	Index                                      *int
}

// TestAccessMatrix runs the distribution with access rules on both APIs: runners identified
// by client certificates write events (events:write), tokens read status and reports
// (status:read, reports:read). Every subject × action × pipeline gets what its rules say,
// a batch that mixes permitted and forbidden pipelines is refused whole, a refused request
// changes nothing, lists show only what the subject may read, and the build client names the
// permission it lacks.
func TestAccessMatrix(t *testing.T) {
	dir := t.TempDir()
	pki := newAccessPKI(t, dir)
	p := newPorts(t)
	tokens := []string{"token-a", "token-b", "token-ops", "token-none"}
	subjects := map[string]string{}
	for _, tok := range tokens {
		subjects[tok] = credentialSubject(tok)
	}
	path := renderConfig(t, "access.yaml.tmpl", dir, map[string]any{
		"Ports": p, "Dir": dir, "Tokens": tokens, "Subjects": subjects,
		"CAFile": pki.caFile, "ServerCert": pki.serverCert, "ServerKey": pki.serverKey,
	})
	col := startCollector(t, path, dir, fmt.Sprintf("http://127.0.0.1:%d/", p.Health))
	events := fmt.Sprintf("https://127.0.0.1:%d", p.Events)
	status := fmt.Sprintf("http://127.0.0.1:%d", p.Status)

	post := func(runner string, lines ...string) (int, accessErr) {
		t.Helper()
		ct := "application/json"
		if len(lines) > 1 {
			ct = "application/x-ndjson"
		}
		resp, err := pki.client(runner).Post(events+"/v1/events", ct, strings.NewReader(strings.Join(lines, "\n")))
		if err != nil {
			t.Fatalf("%s: %v", runner, err)
		}
		defer resp.Body.Close()
		var e accessErr
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e
	}
	registry := func(id string) (int, string) {
		t.Helper()
		resp, err := pki.client("ops").Get(events + "/v1/registry/builds/" + id)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct{ State string }
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v.State
	}
	started := func(id, pipeline string) string {
		return `{"type":"build_started","build_id":"` + id + `","pipeline":"` + pipeline + `","phases":[{"name":"BUILD","steps":1}]}`
	}

	// A client without a certificate does not get through the TLS handshake.
	if _, err := pki.client("").Post(events+"/v1/events", "application/json", strings.NewReader(started("x", "team-a/app"))); err == nil {
		t.Error("a client without a certificate reached the events API")
	}

	t.Run("events:write", func(t *testing.T) {
		allowed := map[string][]string{"runner-a": {"team-a/app"}, "runner-b": {"team-b/app"}, "ops": nil, "stranger": nil}
		subjectOf := map[string]string{"runner-a": "cn:runner-a", "runner-b": "cn:runner-b", "ops": "cn:ops", "stranger": "cn:stranger"}
		for runner, pipelines := range allowed {
			for _, pipeline := range []string{"team-a/app", "team-b/app"} {
				id := runner + "-" + strings.TrimSuffix(pipeline, "/app")
				code, e := post(runner, started(id, pipeline))
				want := http.StatusForbidden
				if slices.Contains(pipelines, pipeline) {
					want = http.StatusAccepted
				}
				if code != want {
					t.Errorf("%s events:write %s: %d %+v, want %d", runner, pipeline, code, e, want)
					continue
				}
				if code == http.StatusForbidden && (e.Permission != "events:write" || e.Pipeline != pipeline || e.Host != "e2e-host" || e.Subject != subjectOf[runner]) {
					t.Errorf("%s events:write %s: 403 body %+v", runner, pipeline, e)
				}
				wantReg := http.StatusNotFound
				if want == http.StatusAccepted {
					wantReg = http.StatusOK
				}
				if got, _ := registry(id); got != wantReg {
					t.Errorf("%s %s: registry answers %d, want %d", runner, id, got, wantReg)
				}
			}
		}
	})

	// The builds the status matrix reads: one per team, run to the end by its own runner.
	for runner, b := range map[string][2]string{"runner-a": {"a-1", "team-a/app"}, "runner-b": {"b-1", "team-b/app"}} {
		id := b[0]
		if code, e := post(runner, started(id, b[1]),
			`{"type":"phase_started","build_id":"`+id+`","phase":"BUILD"}`,
			`{"type":"step_completed","build_id":"`+id+`","phase":"BUILD"}`); code != http.StatusAccepted {
			t.Fatalf("%s starting %s: %d %+v", runner, id, code, e)
		}
	}

	t.Run("mixed batch is refused whole", func(t *testing.T) {
		code, e := post("runner-a",
			started("a-2", "team-a/app"),
			`{"type":"phase_completed","build_id":"a-1","phase":"BUILD"}`,
			`{"type":"phase_completed","build_id":"b-1","phase":"BUILD"}`)
		if code != http.StatusForbidden || e.Index == nil || *e.Index != 2 || e.Pipeline != "team-b/app" {
			t.Fatalf("mixed batch: %d %+v, want 403 at index 2 naming team-b/app", code, e)
		}
		if got, _ := registry("a-2"); got != http.StatusNotFound {
			t.Errorf("a-2 was created by a refused batch (%d)", got)
		}
		// Team B may not finish team A's build, not even repeat its start.
		for _, ev := range []string{`{"type":"build_finished","build_id":"a-1","result":"success"}`, started("a-1", "team-a/app")} {
			if code, e := post("runner-b", ev); code != http.StatusForbidden || e.Permission != "events:write" || e.Pipeline != "team-a/app" {
				t.Errorf("runner-b on a-1: %d %+v, want 403", code, e)
			}
		}
		if _, state := registry("a-1"); state != "running" {
			t.Errorf("a-1 is %q after refused requests, want running", state)
		}
	})

	for runner, id := range map[string]string{"runner-a": "a-1", "runner-b": "b-1"} {
		if code, e := post(runner, `{"type":"phase_completed","build_id":"`+id+`","phase":"BUILD"}`,
			`{"type":"build_finished","build_id":"`+id+`","result":"success"}`); code != http.StatusAccepted {
			t.Fatalf("%s finishing %s: %d %+v", runner, id, code, e)
		}
	}

	get := func(token, path string) (int, []byte) {
		t.Helper()
		code, body, err := httpGet(t.Context(), status+path, "Authorization", "Bearer "+token)
		if err != nil {
			t.Fatal(err)
		}
		return code, body
	}
	// Both builds reach the status API with their reports.
	eventually(t, 20*time.Second, func() error {
		for _, id := range []string{"a-1", "b-1"} {
			if code, body := get("token-ops", "/v1/builds/"+id+"/report"); code != http.StatusOK {
				return fmt.Errorf("report of %s: %d %s", id, code, body)
			}
		}
		if code, body := get("token-ops", "/v1/hosts/e2e-host"); code != http.StatusOK {
			return fmt.Errorf("host: %d %s", code, body)
		}
		return nil
	})

	t.Run("status:read and reports:read", func(t *testing.T) {
		type grant struct{ status, reports []string }
		grants := map[string]grant{
			"token-a":    {status: []string{"a-1"}, reports: []string{"a-1"}},
			"token-b":    {status: []string{"b-1"}},
			"token-ops":  {status: []string{"a-1", "b-1"}, reports: []string{"a-1", "b-1"}},
			"token-none": {},
		}
		for token, g := range grants {
			for _, id := range []string{"a-1", "b-1"} {
				for _, c := range []struct {
					action, path string
					ids          []string
				}{
					{"status:read", "/v1/builds/" + id, g.status},
					{"reports:read", "/v1/builds/" + id + "/report", g.reports},
					{"reports:read", "/v1/builds/" + id + "/phases/BUILD/report", g.reports},
				} {
					code, body := get(token, c.path)
					want := http.StatusForbidden
					if slices.Contains(c.ids, id) {
						want = http.StatusOK
					}
					if code != want {
						t.Errorf("%s GET %s: %d %s, want %d", token, c.path, code, body, want)
						continue
					}
					if code == http.StatusForbidden {
						var e accessErr
						if err := json.Unmarshal(body, &e); err != nil || e.Permission != c.action || e.Subject != subjects[token] {
							t.Errorf("%s GET %s: 403 body %s", token, c.path, body)
						}
					}
				}
			}
			code, body := get(token, "/v1/builds")
			var list struct {
				Builds []struct{ ID string }
				Count  int
			}
			if code != http.StatusOK || json.Unmarshal(body, &list) != nil {
				t.Fatalf("%s list: %d %s", token, code, body)
			}
			var ids []string
			for _, b := range list.Builds {
				if b.ID == "a-1" || b.ID == "b-1" {
					ids = append(ids, b.ID)
				}
			}
			slices.Sort(ids)
			if !slices.Equal(ids, g.status) || (token == "token-none" && list.Count != 0) {
				t.Errorf("%s lists %v (count %d), want %v", token, ids, list.Count, g.status)
			}
			code, body = get(token, "/v1/hosts")
			var hosts struct{ Count int }
			_ = json.Unmarshal(body, &hosts)
			wantHosts := 0
			if token == "token-ops" {
				wantHosts = 1
			}
			if code != http.StatusOK || hosts.Count != wantHosts {
				t.Errorf("%s hosts: %d %s, want %d hosts", token, code, body, wantHosts)
			}
		}
	})

	t.Run("build client names the missing permission", func(t *testing.T) {
		cmd := exec.Command(cliBinary(t), "status", "b-1")
		cmd.Env = append(os.Environ(), "BUILDMON_STATUS_URL="+status, "BUILDMON_TOKEN=token-a")
		out, _ := cmd.CombinedOutput()
		want := "403 subject " + subjects["token-a"] + " lacks permission status:read on pipeline team-b/app (host e2e-host)"
		if !strings.Contains(string(out), want) {
			t.Errorf("client output %q lacks %q", out, want)
		}
	})

	t.Run("denials are logged", func(t *testing.T) {
		out := col.out.String()
		for _, want := range []string{`"subject": "cn:runner-b"`, `"action": "events:write"`, `"decision": "deny"`, `"subject": "` + subjects["token-none"] + `"`} {
			if !strings.Contains(out, want) {
				t.Errorf("collector log lacks %s", want)
			}
		}
	})
}

// oidcIssuer signs ID tokens with an RSA key and writes its JWKS file.
type oidcIssuer struct {
	url  string
	key  *rsa.PrivateKey
	jwks string
}

func newOIDCIssuer(t *testing.T, dir string) *oidcIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "e2e", "alg": "RS256", "use": "sig",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	path := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(path, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	return &oidcIssuer{url: "https://issuer.e2e.invalid", key: key, jwks: path}
}

// token is a signed ID token for subject with groups.
func (i *oidcIssuer) token(t *testing.T, key *rsa.PrivateKey, subject string, groups ...string) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "e2e", "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{
		"iss": i.url, "aud": "buildmon", "sub": subject, "groups": groups,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	})
	signing := b64(header) + "." + b64(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64(sig)
}

// TestAccessOIDC runs the distribution with contrib's oidcauth: rules name the token's
// subject and its groups (group:<name>), and the build client says which permission its
// token lacks.
func TestAccessOIDC(t *testing.T) {
	dir := t.TempDir()
	iss := newOIDCIssuer(t, dir)
	p := newPorts(t)
	path := renderConfig(t, "access_oidc.yaml.tmpl", dir, map[string]any{"Ports": p, "Issuer": iss.url, "JWKS": iss.jwks})
	col := startCollector(t, path, dir, fmt.Sprintf("http://127.0.0.1:%d/", p.Health))
	events := fmt.Sprintf("http://127.0.0.1:%d", p.Events)

	alice := iss.token(t, iss.key, "alice")
	bob := iss.token(t, iss.key, "bob", "team-b-runners")
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	forged := iss.token(t, other, "alice")
	post := func(token, id, pipeline string) (int, accessErr) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, events+"/v1/events", strings.NewReader(`{"type":"build_started","build_id":"`+id+`","pipeline":"`+pipeline+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e accessErr
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e
	}
	for _, c := range []struct {
		who, token, pipeline, subject string
		want                          int
	}{
		{"alice", alice, "team-a/app", "", http.StatusAccepted},
		{"alice", alice, "team-b/app", "alice", http.StatusForbidden},
		{"bob (group team-b-runners)", bob, "team-b/app", "", http.StatusAccepted},
		{"bob (group team-b-runners)", bob, "team-a/app", "bob", http.StatusForbidden},
		{"forged token", forged, "team-a/app", "", http.StatusUnauthorized},
	} {
		id := strings.NewReplacer(" ", "-", "(", "", ")", "").Replace(c.who) + "-" + strings.TrimSuffix(c.pipeline, "/app")
		code, e := post(c.token, id, c.pipeline)
		if code != c.want {
			t.Errorf("%s on %s: %d %+v, want %d", c.who, c.pipeline, code, e, c.want)
			continue
		}
		if code == http.StatusForbidden && (e.Subject != c.subject || e.Permission != "events:write" || e.Pipeline != c.pipeline) {
			t.Errorf("%s on %s: 403 body %+v", c.who, c.pipeline, e)
		}
	}

	t.Run("build client names the missing permission", func(t *testing.T) {
		cmd := exec.Command(cliBinary(t), "start")
		cmd.Env = append(os.Environ(), "BUILDMON_EVENTS_URL="+events, "BUILDMON_TOKEN="+alice,
			"BUILDMON_BUILD_ID=client-1", "BUILDMON_PIPELINE=team-b/app")
		out, _ := cmd.CombinedOutput()
		for _, want := range []string{
			"403 Forbidden: subject alice lacks permission events:write on pipeline team-b/app (host ",
			"its access rules do not grant events:write here",
		} {
			if !strings.Contains(string(out), want) {
				t.Errorf("client output %q lacks %q", out, want)
			}
		}
	})
	if !strings.Contains(col.out.String(), `"decision": "deny"`) {
		t.Error("the collector log has no denial")
	}
}
