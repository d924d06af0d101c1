package checkpoint

import (
	"bytes"
	"errors"
	"testing"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/encryption"
)

// FuzzDecode feeds arbitrary bytes to the decoder, plain and with a keyring: no panic,
// decoded payloads bounded by MaxPayload, and whatever decodes re-encodes to a payload that
// decodes the same.
func FuzzDecode(f *testing.F) {
	key, err := encryption.NewKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	plain := Codec{}
	sealed := Codec{Keyring: encryption.NewKeyring(key)}
	for _, c := range []Codec{plain, sealed} {
		for _, payload := range []string{`{"builds":{}}`, `{"builds":{"b":{"id":"b"}}}`, ""} {
			env, err := c.Encode(KindCheckpoint, []byte(payload))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(env)
			f.Add(env[:len(env)/2]) // truncated
		}
	}
	f.Add([]byte("BMCKPT\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range []Codec{plain, sealed} {
			kind, payload, err := c.Decode(data)
			if err != nil {
				continue
			}
			env, err := c.Encode(kind, payload)
			if err != nil {
				t.Fatalf("re-encoding a decoded payload: %v", err)
			}
			_, again, err := c.Decode(env)
			if err != nil || !bytes.Equal(again, payload) {
				t.Fatalf("round trip changed the payload: %v", err)
			}
		}
	})
}

// TestDecodeBoundsDecompressedSize: a payload that decompresses past MaxPayload is a corrupt
// file, not an allocation of that size.
func TestDecodeBoundsDecompressedSize(t *testing.T) {
	c := Codec{MaxPayload: 1 << 10}
	env, err := c.Encode(KindCheckpoint, bytes.Repeat([]byte("x"), 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Decode(env); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a 1 MiB payload with a 1 KiB bound decoded: %v", err)
	}
	if _, payload, err := (Codec{}).Decode(env); err != nil || len(payload) != 1<<20 {
		t.Fatalf("the default bound refused a 1 MiB payload: %v", err)
	}
}
