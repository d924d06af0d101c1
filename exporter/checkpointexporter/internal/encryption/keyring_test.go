package encryption

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustKey(t *testing.T, b byte) *Key {
	t.Helper()
	k, err := NewKey(bytes.Repeat([]byte{b}, KeySize))
	require.NoError(t, err)
	return k
}

func TestNewKeyTable(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		wantErr string
	}{
		{name: "32 bytes", size: 32},
		{name: "16 bytes (AES-128) is refused", size: 16, wantErr: "must be 32 bytes, not 16"},
		{name: "empty", size: 0, wantErr: "not 0"},
		{name: "33 bytes", size: 33, wantErr: "not 33"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := NewKey(make([]byte, tt.size))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.Nil(t, k)
				return
			}
			require.NoError(t, err)
			assert.Len(t, k.ID().String(), 2*KeyIDSize)
		})
	}
}

// The key id names the key (same key, same id; another key, another id) and is not the key.
func TestKeyIDs(t *testing.T) {
	a1, a2, b := mustKey(t, 1), mustKey(t, 1), mustKey(t, 2)
	assert.Equal(t, a1.ID(), a2.ID())
	assert.NotEqual(t, a1.ID(), b.ID())
	assert.NotContains(t, a1.ID().String(), hex.EncodeToString(bytes.Repeat([]byte{1}, 4)))
}

func TestSourceString(t *testing.T) {
	assert.Equal(t, `key_file "/k"`, Source{File: "/k"}.String())
	assert.Equal(t, `key_env "K"`, Source{Env: "K"}.String())
}

func TestKeyringOpenTable(t *testing.T) {
	cur, old, other := mustKey(t, 1), mustKey(t, 2), mustKey(t, 3)
	r := NewKeyring(cur, old, cur) // the current key listed again as previous is harmless
	assert.Equal(t, cur.ID(), r.CurrentID())
	assert.True(t, r.Has(old.ID()))
	assert.False(t, r.Has(other.ID()))
	ad := []byte("header")
	sealed, err := r.Seal(nil, []byte("payload"), ad)
	require.NoError(t, err)
	assert.Len(t, sealed, len("payload")+r.Overhead())
	oldSealed, err := NewKeyring(old).Seal([]byte("prefix"), []byte("old"), ad)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(oldSealed, []byte("prefix")), "Seal appends to dst")
	oldSealed = oldSealed[len("prefix"):]

	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name    string
		id      KeyID
		sealed  []byte
		ad      []byte
		want    string
		wantErr error
	}{
		{name: "current key", id: cur.ID(), sealed: sealed, ad: ad, want: "payload"},
		{name: "previous key", id: old.ID(), sealed: oldSealed, ad: ad, want: "old"},
		{name: "unknown key", id: other.ID(), sealed: sealed, ad: ad, wantErr: ErrUnknownKey},
		{name: "wrong key id for the data", id: old.ID(), sealed: sealed, ad: ad, wantErr: ErrAuthentication},
		{name: "modified header", id: cur.ID(), sealed: sealed, ad: []byte("Header"), wantErr: ErrAuthentication},
		{name: "modified ciphertext", id: cur.ID(), sealed: flipped, ad: ad, wantErr: ErrAuthentication},
		{name: "too short for nonce and tag", id: cur.ID(), sealed: sealed[:NonceSize+3], ad: ad, wantErr: ErrAuthentication},
		{name: "empty", id: cur.ID(), sealed: nil, ad: ad, wantErr: ErrAuthentication},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Open(tt.id, tt.sealed, tt.ad)
			if tt.wantErr != nil {
				assert.True(t, errors.Is(err, tt.wantErr), "err = %v", err)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

// Two seals of the same plaintext differ (a fresh nonce each time).
func TestSealNoncesDiffer(t *testing.T) {
	r := NewKeyring(mustKey(t, 1))
	a, err := r.Seal(nil, []byte("same"), nil)
	require.NoError(t, err)
	b, err := r.Seal(nil, []byte("same"), nil)
	require.NoError(t, err)
	assert.NotEqual(t, a[:NonceSize], b[:NonceSize])
	assert.NotEqual(t, a, b)
}

// Name hashes depend on the current key only, are 32 hex digits, and reveal nothing of the
// name.
func TestNameHashTable(t *testing.T) {
	r1 := NewKeyring(mustKey(t, 1))
	r1b := NewKeyring(mustKey(t, 1), mustKey(t, 9))
	r2 := NewKeyring(mustKey(t, 2), mustKey(t, 1))
	for _, name := range []string{"", "build-1", "checkout-service/1842"} {
		h := r1.NameHash(name)
		assert.Len(t, h, 32)
		_, err := hex.DecodeString(h)
		assert.NoError(t, err)
		assert.Equal(t, h, r1b.NameHash(name), "previous keys do not matter")
		assert.NotEqual(t, h, r2.NameHash(name), "another current key, another name")
		if name != "" {
			assert.NotContains(t, h, name)
		}
	}
	assert.NotEqual(t, r1.NameHash("a"), r1.NameHash("b"))
}
