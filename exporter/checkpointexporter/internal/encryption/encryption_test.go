package encryption

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKey(t *testing.T) {
	k := randomKey(t)
	raw := bytes.Repeat([]byte{0xff}, KeySize)
	tests := []struct {
		name    string
		in      []byte
		want    []byte
		wantErr bool
	}{
		{"hex with newline", []byte(hex.EncodeToString(k) + "\n"), k, false},
		{"upper hex", []byte(strings.ToUpper(hex.EncodeToString(k))), k, false},
		{"base64", []byte(base64.StdEncoding.EncodeToString(k)), k, false},
		{"raw base64url", []byte(base64.RawURLEncoding.EncodeToString(k) + "\n"), k, false},
		{"raw bytes", raw, raw, false},
		{"too short hex", []byte(hex.EncodeToString(k[:16])), nil, true},
		{"garbage", []byte("not a key at all"), nil, true},
		{"empty", nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got %x, want %x", got, tt.want)
			}
		})
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	k := randomKey(t)
	file := filepath.Join(dir, "key")
	if err := os.WriteFile(file, []byte(hex.EncodeToString(k)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GOOD": base64.StdEncoding.EncodeToString(k), "BAD": "xyz", "BLANK": " "}
	lookup := func(n string) (string, bool) { v, ok := env[n]; return v, ok }

	fromFile, err := LoadKey(Source{File: file}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	fromEnv, err := LoadKey(Source{Env: "GOOD"}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if fromFile.ID() != fromEnv.ID() {
		t.Fatal("the same key from a file and from env has different ids")
	}
	for _, tc := range []struct {
		src  Source
		want string
	}{
		{Source{File: filepath.Join(dir, "missing")}, "missing"},
		{Source{Env: "UNSET"}, `"UNSET"`},
		{Source{Env: "BLANK"}, `"BLANK"`},
		{Source{Env: "BAD"}, `key_env "BAD"`},
		{Source{File: file, Env: "GOOD"}, "not both"},
		{Source{}, "no key_file"},
	} {
		if _, err := LoadKey(tc.src, lookup); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadKey(%+v) = %v, want an error mentioning %s", tc.src, err, tc.want)
		}
	}
}

func TestSealOpenRotation(t *testing.T) {
	oldKey, err := NewKey(randomKey(t))
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := NewKey(randomKey(t))
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("header")
	oldRing := NewKeyring(oldKey)
	sealedOld, err := oldRing.Seal(nil, []byte("before rotation"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealedOld) != len("before rotation")+oldRing.Overhead() {
		t.Fatalf("sealed length %d", len(sealedOld))
	}

	rotated := NewKeyring(newKey, oldKey)
	got, err := rotated.Open(oldKey.ID(), sealedOld, aad)
	if err != nil || string(got) != "before rotation" {
		t.Fatalf("old data after rotation: %q %v", got, err)
	}
	sealedNew, err := rotated.Seal(nil, []byte("after"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oldRing.Open(newKey.ID(), sealedNew, aad); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old keyring opened new data: %v", err)
	}
	if _, err := rotated.Open(newKey.ID(), sealedNew, []byte("other header")); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("modified header: %v", err)
	}
	tampered := append([]byte(nil), sealedNew...)
	tampered[len(tampered)-1] ^= 1
	if _, err := rotated.Open(newKey.ID(), tampered, aad); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("tampered data: %v", err)
	}
	if _, err := rotated.Open(newKey.ID(), tampered[:5], aad); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("truncated data: %v", err)
	}
	// Two seals of the same plaintext differ (fresh nonce).
	again, _ := rotated.Seal(nil, []byte("after"), aad)
	if bytes.Equal(again, sealedNew) {
		t.Fatal("nonce reused")
	}
}

func TestNameHash(t *testing.T) {
	k1, _ := NewKey(randomKey(t))
	k2, _ := NewKey(randomKey(t))
	r1, r2 := NewKeyring(k1), NewKeyring(k2)
	a, b := r1.NameHash("build-1"), r1.NameHash("build-1")
	if a != b || len(a) != 32 || strings.Contains(a, "build") {
		t.Fatalf("name hash %q / %q", a, b)
	}
	if r1.NameHash("build-2") == a || r2.NameHash("build-1") == a {
		t.Fatal("name hash does not depend on its input and key")
	}
}
