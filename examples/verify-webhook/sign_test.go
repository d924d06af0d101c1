package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// goSignature signs with Go's crypto, for the shell verifier's test.
func goSignature(key, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
