package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const secret = "0123456789abcdef0123456789abcdef"

// opensslSignature signs as the README tells a shell to: openssl, not Go's crypto.
func opensslSignature(t *testing.T, key, ts string, body []byte) string {
	t.Helper()
	cmd := exec.Command("openssl", "dgst", "-sha256", "-hmac", key)
	cmd.Stdin = bytes.NewReader(append([]byte(ts+"."), body...))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl (the README's shell verifier needs it): %v", err)
	}
	s := strings.TrimSpace(string(out))
	return s[strings.LastIndex(s, " ")+1:]
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"version":"1","sender":"buildmon","alerts":[]}`)
	good := "v1=" + opensslSignature(t, secret, ts, body)
	other := "v1=" + opensslSignature(t, "another-secret-of-32-bytes-long!", ts, body)
	tests := []struct {
		name, ts, sigs string
		body           []byte
		now            time.Time
		wantErr        string
	}{
		{"valid", ts, good, body, now, ""},
		{"valid within the window", ts, good, body, now.Add(4 * time.Minute), ""},
		{"rotation: the old secret's signature first", ts, other + "," + good, body, now, ""},
		{"tampered body", ts, good, []byte(strings.Replace(string(body), "[]", `[{"status":"resolved"}]`, 1)), now, "no valid signature"},
		{"stale timestamp", ts, good, body, now.Add(6 * time.Minute), "outside the replay window"},
		{"timestamp from the future", ts, good, body, now.Add(-6 * time.Minute), "outside the replay window"},
		{"timestamp changed", strconv.FormatInt(now.Unix()+1, 10), good, body, now, "no valid signature"},
		{"wrong secret", ts, other, body, now, "no valid signature"},
		{"no scheme", ts, strings.TrimPrefix(good, "v1="), body, now, "no valid signature"},
		{"no timestamp", "", good, body, now, "malformed X-Buildmon-Timestamp"},
		{"no signature", ts, "", body, now, "no valid signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify([]byte(secret), tt.ts, tt.sigs, tt.body, tt.now, 5*time.Minute)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("want %q, got %v", tt.wantErr, err)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var out bytes.Buffer
	srv := httptest.NewServer(handler([]byte(secret), 5*time.Minute, func() time.Time { return now }, &out))
	defer srv.Close()
	post := func(ts, sig, body string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set("X-Buildmon-Timestamp", ts)
		req.Header.Set("X-Buildmon-Signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	body := `{"alerts":[]}`
	if code := post(ts, "v1="+opensslSignature(t, secret, ts, []byte(body)), body); code != http.StatusNoContent {
		t.Fatalf("valid request got %d", code)
	}
	if code := post(ts, "v1="+opensslSignature(t, secret, ts, []byte(body)), body+" "); code != http.StatusUnauthorized {
		t.Fatalf("tampered request got %d", code)
	}
	if !strings.Contains(out.String(), "verified: "+body) {
		t.Fatalf("output %q", out.String())
	}
}

// TestShellVerifier runs verify.sh, the README's shell verifier.
func TestShellVerifier(t *testing.T) {
	dir := t.TempDir()
	body := []byte(`{"version":"1","alerts":[{"status":"firing"}]}`)
	file := filepath.Join(dir, "body.json")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(dir, "tampered.json")
	if err := os.WriteFile(tampered, bytes.Replace(body, []byte("firing"), []byte("resolved"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(ts, sigs, f string) (bool, string) {
		out, err := exec.Command("sh", "verify.sh", secret, ts, sigs, f).CombinedOutput()
		return err == nil, string(out)
	}
	now := time.Now().Unix()
	ts := strconv.FormatInt(now, 10)
	// Signed by Go's crypto (Verify's side), checked by openssl in the script.
	sig := "v1=" + goSignature(secret, ts, body)
	if ok, out := run(ts, sig, file); !ok {
		t.Fatalf("valid: %s", out)
	}
	if ok, out := run(ts, "v1="+goSignature("another-secret-of-32-bytes-long!", ts, body)+","+sig, file); !ok {
		t.Fatalf("rotation: %s", out)
	}
	if ok, out := run(ts, sig, tampered); ok || !strings.Contains(out, "invalid signature") {
		t.Fatalf("tampered body accepted: %s", out)
	}
	old := strconv.FormatInt(now-600, 10)
	if ok, out := run(old, "v1="+goSignature(secret, old, body), file); ok || !strings.Contains(out, "stale timestamp") {
		t.Fatalf("stale timestamp accepted: %s", out)
	}
}
