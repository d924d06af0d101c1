package notify

import (
	"net/http"
	"testing"
	"time"
)

// The signature of a known input, as `printf '1700000000.{}' | openssl dgst -sha256 -hmac
// 0123456789abcdef` prints it.
func TestSignatureKnownAnswer(t *testing.T) {
	const want = "e4f8e2ecae2295b2ddb2f0b5584c8275e226c0ebe9b3b819e70156bb67122e3e"
	got := Signature([]byte("0123456789abcdef"), "1700000000", []byte("{}"))
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestSignerHeaders(t *testing.T) {
	at := time.Unix(1700000000, 0)
	s := &Signer{Secrets: [][]byte{[]byte("new"), []byte("old"), []byte("ignored")}, Now: func() time.Time { return at }}
	h := http.Header{}
	s.Sign(h, []byte("{}"))
	if got := h.Get(TimestampHeader); got != "1700000000" {
		t.Fatalf("timestamp %q", got)
	}
	want := "v1=" + Signature([]byte("new"), "1700000000", []byte("{}")) + ",v1=" + Signature([]byte("old"), "1700000000", []byte("{}"))
	if got := h.Get(SignatureHeader); got != want {
		t.Fatalf("signature %q, want %q", got, want)
	}
}
