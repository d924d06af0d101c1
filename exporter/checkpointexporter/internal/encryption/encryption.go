// Package encryption seals checkpoints and reports at rest with AES-256-GCM (seed §9.1). A
// Keyring holds the current key, which seals, and any previous keys, which only open what
// they sealed before a rotation. Each key is known by a key id derived from it, written in
// the clear beside the sealed data so that the right key is picked without trial
// decryption.
package encryption // import "github.com/buildmon/buildmon/exporter/checkpointexporter/internal/encryption"

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the size of an AES-256 key in bytes.
const KeySize = 32

// KeyIDSize is the size of a key id in bytes.
const KeyIDSize = 8

// NonceSize is the size of the GCM nonce that precedes every sealed payload.
const NonceSize = 12

// KeyID names a key without revealing it: the first 8 bytes of a SHA-256 over a fixed label
// and the key.
type KeyID [KeyIDSize]byte

// String returns the key id in hex.
func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// ErrUnknownKey is returned by Open for data sealed with a key the keyring does not hold.
var ErrUnknownKey = errors.New("sealed with a key that is not configured")

// ErrAuthentication is returned by Open when the data or its header were modified (or the
// key with the same id is a different key, which the id makes all but impossible).
var ErrAuthentication = errors.New("authentication failed: the data is corrupt or was modified")

// Source says where a key comes from: a file or an environment variable. The key is 32 bytes,
// written as 64 hex digits or in base64 (a file may also hold the 32 raw bytes).
type Source struct {
	File string
	Env  string
}

// String describes the source for error messages.
func (s Source) String() string {
	if s.File != "" {
		return fmt.Sprintf("key_file %q", s.File)
	}
	return fmt.Sprintf("key_env %q", s.Env)
}

// Key is one AES-256-GCM key.
type Key struct {
	id      KeyID
	aead    cipher.AEAD
	nameKey []byte
}

// ID returns the key's id.
func (k *Key) ID() KeyID { return k.id }

// LoadKey reads and parses the key named by src. lookupEnv is os.LookupEnv outside tests.
func LoadKey(src Source, lookupEnv func(string) (string, bool)) (*Key, error) {
	var raw []byte
	switch {
	case src.File != "" && src.Env != "":
		return nil, errors.New("set key_file or key_env, not both")
	case src.File != "":
		b, err := os.ReadFile(src.File)
		if err != nil {
			return nil, fmt.Errorf("reading encryption key file: %w", err)
		}
		raw = b
	case src.Env != "":
		v, ok := lookupEnv(src.Env)
		if !ok || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("environment variable %q with the encryption key is not set", src.Env)
		}
		raw = []byte(v)
	default:
		return nil, errors.New("no key_file or key_env")
	}
	key, err := ParseKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	return NewKey(key)
}

// ParseKey decodes a key written as 64 hex digits, as base64, or as 32 raw bytes.
func ParseKey(b []byte) ([]byte, error) {
	if len(b) == KeySize && !isText(b) {
		return append([]byte(nil), b...), nil
	}
	s := strings.TrimSpace(string(b))
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == KeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("the key must be %d bytes, written as %d hex digits or in base64 (got %d characters that decode to neither)", KeySize, 2*KeySize, len(s))
}

func isText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			if c != '\n' && c != '\r' && c != '\t' {
				return false
			}
		}
	}
	return true
}

// NewKey returns the Key for 32 bytes of key material.
func NewKey(key []byte) (*Key, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("the key must be %d bytes, not %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("buildmon checkpoint key id\x00"), key...))
	k := &Key{aead: aead}
	copy(k.id[:], sum[:KeyIDSize])
	// File names are hashed with a key derived from, not equal to, the encryption key.
	m := hmac.New(sha256.New, key)
	m.Write([]byte("buildmon file names"))
	k.nameKey = m.Sum(nil)
	return k, nil
}

// Keyring is the current key and the previous keys. It is safe for concurrent use (it is
// never modified after NewKeyring).
type Keyring struct {
	current *Key
	byID    map[KeyID]*Key
}

// NewKeyring returns a keyring that seals with current and opens with any of the keys.
func NewKeyring(current *Key, previous ...*Key) *Keyring {
	r := &Keyring{current: current, byID: map[KeyID]*Key{current.id: current}}
	for _, k := range previous {
		if _, ok := r.byID[k.id]; !ok {
			r.byID[k.id] = k
		}
	}
	return r
}

// CurrentID returns the id of the key that seals.
func (r *Keyring) CurrentID() KeyID { return r.current.id }

// Has reports whether the keyring holds the key with this id.
func (r *Keyring) Has(id KeyID) bool {
	_, ok := r.byID[id]
	return ok
}

// Overhead is how many bytes Seal adds to the plaintext.
func (r *Keyring) Overhead() int { return NonceSize + r.current.aead.Overhead() }

// Seal encrypts and authenticates plaintext and additionalData with the current key and a
// fresh random nonce; it returns nonce ‖ ciphertext, appended to dst.
func (r *Keyring) Seal(dst, plaintext, additionalData []byte) ([]byte, error) {
	var nonce [NonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("reading a random nonce: %w", err)
	}
	dst = append(dst, nonce[:]...)
	return r.current.aead.Seal(dst, nonce[:], plaintext, additionalData), nil
}

// Open decrypts what Seal returned, with the key named by id.
func (r *Keyring) Open(id KeyID, sealed, additionalData []byte) ([]byte, error) {
	k, ok := r.byID[id]
	if !ok {
		return nil, fmt.Errorf("key id %s: %w", id, ErrUnknownKey)
	}
	if len(sealed) < NonceSize+k.aead.Overhead() {
		return nil, ErrAuthentication
	}
	out, err := k.aead.Open(nil, sealed[:NonceSize], sealed[NonceSize:], additionalData)
	if err != nil {
		return nil, ErrAuthentication
	}
	return out, nil
}

// NameHash returns a keyed hash of s (32 hex digits) to name files without revealing s. It
// uses the current key, so a name computed before a key rotation must be remembered, not
// recomputed.
func (r *Keyring) NameHash(s string) string {
	m := hmac.New(sha256.New, r.current.nameKey)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil)[:16])
}
