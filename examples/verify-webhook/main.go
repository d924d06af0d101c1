// Command verify-webhook is the example receiver of buildmon's signed webhook notifications
// (the checkpoint exporter's webhook.signing): it accepts a request only when one of its
// X-Buildmon-Signature values is the HMAC-SHA256, with the shared secret, of
// X-Buildmon-Timestamp + "." + body, and the timestamp is within the replay window.
//
//	BUILDMON_WEBHOOK_SECRET=... go run ./examples/verify-webhook -listen 127.0.0.1:9095
//
// Copy Verify into your own receiver; the rest is a demonstration.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Verify checks a webhook request's signature headers against body. It accepts when any
// "v1=" signature matches (during a secret rotation buildmon sends one per secret) and the
// timestamp lies within tolerance of now, so that a captured request cannot be replayed later.
func Verify(secret []byte, timestamp, signatures string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("missing or malformed X-Buildmon-Timestamp")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("timestamp %s is %s away from now: outside the replay window", timestamp, d.Round(time.Second))
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Split(signatures, ",") {
		got, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(sig), "v1="))
		if err == nil && strings.HasPrefix(strings.TrimSpace(sig), "v1=") && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no valid signature")
}

// maxBody bounds what the example reads of a request.
const maxBody = 1 << 20

func handler(secret []byte, tolerance time.Duration, now func() time.Time, out io.Writer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := Verify(secret, r.Header.Get("X-Buildmon-Timestamp"), r.Header.Get("X-Buildmon-Signature"), body, now(), tolerance); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(out, "verified: %s\n", body)
		w.WriteHeader(http.StatusNoContent)
	})
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9095", "address to listen on")
	tolerance := flag.Duration("tolerance", 5*time.Minute, "replay window: how far the timestamp may be from now")
	flag.Parse()
	secret := os.Getenv("BUILDMON_WEBHOOK_SECRET")
	if secret == "" {
		log.Fatal("set BUILDMON_WEBHOOK_SECRET to webhook.signing.secret")
	}
	srv := &http.Server{Addr: *listen, Handler: handler([]byte(secret), *tolerance, time.Now, os.Stdout), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
