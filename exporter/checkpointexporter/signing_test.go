package checkpointexporter

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension/extensionauth"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/notify"
)

// hmacSHA256 is HMAC as RFC 2104 defines it, written out over crypto/sha256, so that the
// test checks the sender's signatures with an implementation other than crypto/hmac.
func hmacSHA256(key, msg []byte) string {
	const block = 64
	if len(key) > block {
		k := sha256.Sum256(key)
		key = k[:]
	}
	k := make([]byte, block)
	copy(k, key)
	inner, outer := make([]byte, block), make([]byte, block)
	for i := range k {
		inner[i], outer[i] = k[i]^0x36, k[i]^0x5c
	}
	ih := sha256.Sum256(append(inner, msg...))
	oh := sha256.Sum256(append(outer, ih[:]...))
	return hex.EncodeToString(oh[:])
}

// capture is a webhook endpoint that records each request's headers and body.
type capture struct {
	srv  *httptest.Server
	reqs chan capturedRequest
}

type capturedRequest struct {
	header http.Header
	body   []byte
}

func newCapture(t *testing.T, srv func(http.Handler) *httptest.Server) *capture {
	c := &capture{reqs: make(chan capturedRequest, 100)}
	c.srv = srv(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.reqs <- capturedRequest{header: r.Header.Clone(), body: b}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *capture) next(t *testing.T) capturedRequest {
	t.Helper()
	select {
	case r := <-c.reqs:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("no request arrived")
		return capturedRequest{}
	}
}

const (
	newSecret = "new-secret-0123456789abcdef-XYZ"
	oldSecret = "old-secret-fedcba9876543210-ABC"
)

func TestWebhookSigned(t *testing.T) {
	for _, tc := range []struct {
		name    string
		signing SigningConfig
		secrets []string
	}{
		{"one secret", SigningConfig{Secret: newSecret}, []string{newSecret}},
		{"rotation", SigningConfig{Secret: newSecret, PreviousSecret: oldSecret}, []string{newSecret, oldSecret}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wh := newCapture(t, httptest.NewServer)
			cfg := testConfig(t.TempDir())
			cfg.Webhook.Endpoint = wh.srv.URL + "/hook"
			cfg.Webhook.Signing = tc.signing
			require.NoError(t, cfg.Validate())
			h := newHarness(t, cfg, nil).mustStart()
			h.consume(withAlert(running("b1", 1), "ERROR", 1).metrics())
			req := wh.next(t)

			ts := req.header.Get(notify.TimestampHeader)
			assert.Equal(t, strconv.FormatInt(t0.Unix(), 10), ts, "the timestamp is the exporter's clock")
			sigs := strings.Split(req.header.Get(notify.SignatureHeader), ",")
			require.Len(t, sigs, len(tc.secrets))
			for i, secret := range tc.secrets {
				assert.Equal(t, "v1="+hmacSHA256([]byte(secret), append([]byte(ts+"."), req.body...)), sigs[i], "signature %d, the current secret first", i)
			}
			var p notify.WebhookPayload
			require.NoError(t, json.Unmarshal(req.body, &p))

			// The README's shell verifier accepts the real request with either secret, and
			// refuses it tampered or replayed later.
			dir := t.TempDir()
			body := filepath.Join(dir, "body.json")
			require.NoError(t, os.WriteFile(body, req.body, 0o600))
			tampered := filepath.Join(dir, "tampered.json")
			require.NoError(t, os.WriteFile(tampered, []byte(strings.Replace(string(req.body), "firing", "resolved", 1)), 0o600))
			// The harness's clock is fixed in the past: the window spans from it to now.
			window := strconv.FormatInt(int64(time.Since(t0).Seconds())+60, 10)
			verify := func(secret, file, window string) (bool, string) {
				out, err := exec.Command("sh", "../../examples/verify-webhook/verify.sh", secret, ts, req.header.Get(notify.SignatureHeader), file, window).CombinedOutput()
				return err == nil, string(out)
			}
			for _, secret := range tc.secrets {
				ok, out := verify(secret, body, window)
				assert.True(t, ok, out)
				ok, out = verify(secret, tampered, window)
				assert.False(t, ok, out)
				assert.Contains(t, out, "invalid signature")
				ok, out = verify(secret, body, "300")
				assert.False(t, ok, out)
				assert.Contains(t, out, "stale timestamp")
			}
			ok, out := verify("not-the-secret-at-all-0123456789", body, window)
			assert.False(t, ok, out)
		})
	}
}

func TestWebhookUnsignedWithoutSecret(t *testing.T) {
	wh := newCapture(t, httptest.NewServer)
	cfg := testConfig(t.TempDir())
	cfg.Webhook.Endpoint = wh.srv.URL
	h := newHarness(t, cfg, nil).mustStart()
	h.consume(withAlert(running("b1", 1), "ERROR", 1).metrics())
	req := wh.next(t)
	assert.Empty(t, req.header.Get(notify.SignatureHeader))
	assert.Empty(t, req.header.Get(notify.TimestampHeader))
}

func TestSigningConfigValidate(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Webhook.Endpoint = "http://127.0.0.1:1/hook"
	cfg.Webhook.Signing = SigningConfig{PreviousSecret: "short"}
	cfg.Alertmanager.Endpoint = "http://127.0.0.1:1"
	cfg.Alertmanager.Signing = SigningConfig{Secret: newSecret}
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"webhook.signing.previous_secret needs webhook.signing.secret",
		"webhook.signing.previous_secret must be at least 16 bytes",
		"alertmanager.signing: Alertmanager does not check signatures",
	} {
		assert.ErrorContains(t, err, want)
	}
	cfg.Alertmanager.Signing = SigningConfig{}
	cfg.Webhook.Signing = SigningConfig{Secret: "too-short"}
	assert.ErrorContains(t, cfg.Validate(), "webhook.signing.secret must be at least 16 bytes")
	cfg.Webhook.Signing = SigningConfig{Secret: newSecret, PreviousSecret: newSecret}
	assert.ErrorContains(t, cfg.Validate(), "webhook.signing.previous_secret is the same as webhook.signing.secret")
	cfg.Webhook.Signing = SigningConfig{Secret: newSecret, PreviousSecret: oldSecret}
	assert.NoError(t, cfg.Validate())
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client certificate, as files.
type testPKI struct {
	dir                           string
	caFile, serverCert, serverKey string
	clientCert, clientKey         string
	pool                          *x509.CertPool
	serverTLS                     tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	p := &testPKI{dir: dir, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = writePEM(t, dir, "ca.crt", "CERTIFICATE", caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string, tls.Certificate) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		certFile := writePEM(t, dir, name+".crt", "CERTIFICATE", der)
		keyFile := writePEM(t, dir, name+".key", "EC PRIVATE KEY", keyDER)
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		require.NoError(t, err)
		return certFile, keyFile, pair
	}
	p.serverCert, p.serverKey, p.serverTLS = issue("alertmanager", 2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey, _ = issue("buildmon", 3, x509.ExtKeyUsageClientAuth)
	return p
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return path
}

// bearerClient is a client authenticator extension that sets a bearer token, as
// bearertokenauth does on the client side.
type bearerClient struct {
	component.StartFunc
	component.ShutdownFunc
	token string
}

var _ extensionauth.HTTPClient = (*bearerClient)(nil)

func (b *bearerClient) RoundTripper(base http.RoundTripper) (http.RoundTripper, error) {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.token)
		return base.RoundTrip(r)
	}), nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The Alertmanager notifier is a confighttp client: mutual TLS through tls, bearer through a
// client authenticator extension, basic through headers.
func TestAlertmanagerTLSAndAuth(t *testing.T) {
	pki := newTestPKI(t)
	tlsServer := func(h http.Handler) *httptest.Server {
		s := httptest.NewUnstartedServer(h)
		s.TLS = &tls.Config{Certificates: []tls.Certificate{pki.serverTLS}, ClientCAs: pki.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
		s.StartTLS()
		return s
	}
	for _, tc := range []struct {
		name       string
		configure  func(*Config, *harness)
		wantHeader string
	}{
		{"bearer via client authenticator", func(cfg *Config, h *harness) {
			id := component.MustNewID("bearer")
			cfg.Alertmanager.Auth = configoptional.Some(configauth.Config{AuthenticatorID: id})
			h.host = hostWithExtensions{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{id: &bearerClient{token: "am-token"}}}
		}, "Bearer am-token"},
		{"basic via headers", func(cfg *Config, _ *harness) {
			cfg.Alertmanager.Headers = configopaque.MapList{{Name: "Authorization", Value: configopaque.String("Basic " + base64.StdEncoding.EncodeToString([]byte("buildmon:pw")))}}
		}, "Basic " + base64.StdEncoding.EncodeToString([]byte("buildmon:pw"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			am := newCapture(t, tlsServer)
			cfg := testConfig(t.TempDir())
			cfg.Alertmanager.Endpoint = am.srv.URL
			cfg.Alertmanager.TLS.CAFile = pki.caFile
			cfg.Alertmanager.TLS.CertFile = pki.clientCert
			cfg.Alertmanager.TLS.KeyFile = pki.clientKey
			h := newHarness(t, cfg, nil)
			tc.configure(cfg, h)
			require.NoError(t, cfg.Validate())
			h.mustStart()
			h.consume(withAlert(running("b1", 1), "ERROR", 1).metrics())
			req := am.next(t)
			assert.Equal(t, tc.wantHeader, req.header.Get("Authorization"))
			var alerts []amAlert
			require.NoError(t, json.Unmarshal(req.body, &alerts))
			require.Len(t, alerts, 1)
		})
	}

	// Without the client certificate the TLS handshake fails: the server requires it.
	am := newCapture(t, tlsServer)
	cfg := testConfig(t.TempDir())
	cfg.Alertmanager.Endpoint = am.srv.URL
	cfg.Alertmanager.TLS.CAFile = pki.caFile
	cfg.Alertmanager.RetryOnFailure.Enabled = false
	h := newHarness(t, cfg, nil).mustStart()
	h.consume(withAlert(running("b1", 1), "ERROR", 1).metrics())
	require.Eventually(t, func() bool { return h.logged("error", "alert notifications dropped") }, 20*time.Second, 10*time.Millisecond)
	select {
	case <-am.reqs:
		t.Fatal("a request without the client certificate reached the server")
	default:
	}
}
