package checkpoint

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/encryption"
)

// names lists the file names in dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestParseSeq(t *testing.T) {
	for _, tc := range []struct {
		name   string
		seq    uint64
		ok     bool
		errMsg string
	}{
		{"state-00000000000000000042.ckpt", 42, true, ""},
		{FileName(MaxSeq), MaxSeq, true, ""},
		{"audit.log", 0, false, ""},
		{"state-00000000000000000042.ckpt.corrupt", 0, false, ""},
		{"state-99999.ckpt", 0, true, "no checkpoint generation name"},
		{"state-.ckpt", 0, true, "no checkpoint generation name"},
		{"state-+0000000000000000042.ckpt", 0, true, "no checkpoint generation name"},
		{"state-0000000000000000004a.ckpt", 0, true, "no checkpoint generation name"},
		{"state-000000000000000000042.ckpt", 0, true, "no checkpoint generation name"},
		{"state-18446744073709551615.ckpt", 0, true, "outside 1 to"},
		{"state-99999999999999999999.ckpt", 0, true, "outside 1 to"},
		{"state-01000000000000000000.ckpt", 0, true, "outside 1 to"},
		{"state-00000000000000000000.ckpt", 0, true, "outside 1 to"},
	} {
		seq, ok, err := parseSeq(tc.name)
		assert.Equal(t, tc.ok, ok, tc.name)
		assert.Equal(t, tc.seq, seq, tc.name)
		if tc.errMsg == "" {
			assert.NoError(t, err, tc.name)
		} else {
			assert.ErrorContains(t, err, tc.errMsg, tc.name)
			assert.ErrorIs(t, err, ErrCorrupt, tc.name)
		}
	}
}

// A file named with the largest uint64 made the sequence wrap to 0, and every new checkpoint
// was pruned as soon as it was written; unpadded names counted as phantom generations.
func TestAbsurdGenerationNamesAreSetAside(t *testing.T) {
	dir := t.TempDir()
	g := &Generations{Dir: dir, FS: OS{}, Keep: 3}
	_, err := g.Write([]byte("1"))
	require.NoError(t, err)
	for _, name := range []string{"state-18446744073709551615.ckpt", "state-99999.ckpt", "state-99998.ckpt", "state-99997.ckpt"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("planted"), 0o600))
	}

	g2 := &Generations{Dir: dir, FS: OS{}, Keep: 3}
	var loaded []byte
	res, err := g2.Restore(func(p []byte) error { loaded = p; return nil })
	require.NoError(t, err)
	assert.Equal(t, "1", string(loaded))
	assert.Equal(t, uint64(1), res.Seq)
	require.Len(t, res.Corrupt, 4)
	for _, c := range res.Corrupt {
		assert.ErrorIs(t, c.Err, ErrCorrupt)
		assert.Equal(t, c.Path+".corrupt", c.MovedTo)
	}
	for i := 2; i <= 6; i++ {
		_, err := g2.Write([]byte{byte('0' + i)})
		require.NoError(t, err)
	}
	// The newest three generations, numbered on from the last real one.
	got := slices.DeleteFunc(names(t, dir), func(n string) bool { return filepath.Ext(n) != ".ckpt" })
	assert.Equal(t, []string{FileName(4), FileName(5), FileName(6)}, got)

	g3 := &Generations{Dir: dir, FS: OS{}, Keep: 3}
	_, err = g3.Restore(func(p []byte) error { loaded = p; return nil })
	require.NoError(t, err)
	assert.Equal(t, "6", string(loaded), "the newest checkpoint is restored")
}

// When the sequence reaches MaxSeq the generations are renumbered from 1, in their order.
func TestSequenceNeverWraps(t *testing.T) {
	dir := t.TempDir()
	g := &Generations{Dir: dir, FS: OS{}, Keep: 2}
	_, err := g.Write([]byte("old"))
	require.NoError(t, err)
	env, err := Codec{}.Encode(KindCheckpoint, []byte("last"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName(MaxSeq)), env, 0o600))

	g2 := &Generations{Dir: dir, FS: OS{}, Keep: 2}
	var loaded []byte
	_, err = g2.Restore(func(p []byte) error { loaded = p; return nil })
	require.NoError(t, err)
	assert.Equal(t, "last", string(loaded))
	_, err = g2.Write([]byte("next"))
	require.NoError(t, err)
	assert.Equal(t, []string{FileName(2), FileName(3)}, names(t, dir))

	g3 := &Generations{Dir: dir, FS: OS{}, Keep: 2}
	_, err = g3.Restore(func(p []byte) error { loaded = p; return nil })
	require.NoError(t, err)
	assert.Equal(t, "next", string(loaded))
	// The generation before it is the one that was newest before the renumbering.
	require.NoError(t, os.Remove(filepath.Join(dir, FileName(3))))
	g4 := &Generations{Dir: dir, FS: OS{}, Keep: 2}
	_, err = g4.Restore(func(p []byte) error { loaded = p; return nil })
	require.NoError(t, err)
	assert.Equal(t, "last", string(loaded))
}

// forgeSealed returns an envelope with the sealed flag and a key id that no keyring holds,
// with a valid checksum (the checksum is not keyed).
func forgeSealed(t *testing.T) []byte {
	t.Helper()
	env, err := Codec{}.Encode(KindCheckpoint, []byte(`{"format":1}`))
	require.NoError(t, err)
	env = append(env, make([]byte, 40)...) // room for a nonce and a tag
	env[11] |= flagSealed
	copy(env[12:20], "bogus-id")
	binary.BigEndian.PutUint64(env[20:28], uint64(len(env)-headerSize))
	putSum(env)
	return env
}

func TestForgedSealedCheckpointFallsBack(t *testing.T) {
	for name, codec := range map[string]Codec{"no key configured": {}, "unknown key id": {Keyring: keyring(t)}} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			g := &Generations{Dir: dir, FS: OS{}, Codec: codec, Keep: 3}
			_, err := g.Write([]byte("good"))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, FileName(2)), forgeSealed(t), 0o600))

			g2 := &Generations{Dir: dir, FS: OS{}, Codec: codec, Keep: 3}
			var loaded []byte
			res, err := g2.Restore(func(p []byte) error { loaded = p; return nil })
			require.NoError(t, err)
			assert.Equal(t, "good", string(loaded))
			require.Len(t, res.Corrupt, 1)
			assert.True(t, res.Corrupt[0].Sealed)
			assert.Equal(t, filepath.Join(dir, FileName(2))+".corrupt", res.Corrupt[0].MovedTo)

			// With nothing older to load, the error names the file; the file stays in place.
			require.NoError(t, os.Remove(filepath.Join(dir, FileName(1))))
			require.NoError(t, os.Rename(res.Corrupt[0].MovedTo, filepath.Join(dir, FileName(2))))
			g3 := &Generations{Dir: dir, FS: OS{}, Codec: codec, Keep: 3}
			_, err = g3.Restore(func([]byte) error { return nil })
			require.ErrorContains(t, err, FileName(2))
			require.ErrorContains(t, err, "no older checkpoint could be loaded")
			assert.FileExists(t, filepath.Join(dir, FileName(2)))
		})
	}
}

// A sealed flag on a payload too short for a nonce and a tag is damage, not a missing key.
func TestSealedFlagOnShortPayloadIsCorrupt(t *testing.T) {
	env, err := Codec{}.Encode(KindCheckpoint, []byte(`{}`))
	require.NoError(t, err)
	env = env[:headerSize+encryption.NonceSize+gcmTagSize-1]
	env[11] |= flagSealed
	binary.BigEndian.PutUint64(env[20:28], uint64(len(env)-headerSize))
	putSum(env)
	for _, c := range []Codec{{}, {Keyring: keyring(t)}} {
		_, _, err = c.Decode(env)
		assert.ErrorIs(t, err, ErrCorrupt)
	}
}

func TestPayloadBound(t *testing.T) {
	dir := t.TempDir()
	g := &Generations{Dir: dir, FS: OS{}, Codec: Codec{MaxPayload: 1000}, Keep: 3}
	_, err := g.Write(make([]byte, 1001))
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Empty(t, names(t, dir), "nothing written")

	// A file holding more than the bound (a forged, highly compressible payload) is corrupt.
	big, err := Codec{}.Encode(KindCheckpoint, make([]byte, 1001))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName(1)), big, 0o600))
	res, err := g.Restore(func([]byte) error { t.Fatal("loaded"); return nil })
	require.NoError(t, err)
	require.Len(t, res.Corrupt, 1)
	assert.ErrorContains(t, res.Corrupt[0].Err, "larger than 1000 bytes")
}
