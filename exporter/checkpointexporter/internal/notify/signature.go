package notify // import "github.com/buildmon/buildmon/exporter/checkpointexporter/internal/notify"

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a signed webhook request.
const (
	// TimestampHeader holds the Unix time in seconds when the request was signed.
	TimestampHeader = "X-Buildmon-Timestamp"
	// SignatureHeader holds "v1=<hex>" signatures, comma-separated: one per secret.
	SignatureHeader = "X-Buildmon-Signature"
	// signatureScheme prefixes each signature; a new scheme would get a new prefix.
	signatureScheme = "v1="
)

// Signer signs webhook requests: HMAC-SHA256 over timestamp + "." + body, in the style of
// the webhook signatures of Stripe, GitHub and Slack. With two secrets (a rotation), both
// signatures are sent, the current one first, so that a receiver that knows either accepts.
type Signer struct {
	// Secrets are the keys, the current one first; at most two are used.
	Secrets [][]byte
	// Now is the clock of the timestamp.
	Now func() time.Time
}

// Signature is the hex HMAC-SHA256 of timestamp + "." + body with secret.
func Signature(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Sign sets the timestamp and signature headers of a request with body.
func (s *Signer) Sign(h http.Header, body []byte) {
	ts := strconv.FormatInt(s.Now().Unix(), 10)
	sigs := make([]string, 0, 2)
	for i, secret := range s.Secrets {
		if i == 2 {
			break
		}
		sigs = append(sigs, signatureScheme+Signature(secret, ts, body))
	}
	h.Set(TimestampHeader, ts)
	h.Set(SignatureHeader, strings.Join(sigs, ","))
}
