package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

// Write keeps the newest Keep generations (at least one), numbered on from the newest
// restored one.
func TestGenerationsWriteKeeps(t *testing.T) {
	tests := []struct {
		keep, writes int
		want         []uint64
	}{
		{keep: 3, writes: 2, want: []uint64{1, 2}},
		{keep: 3, writes: 5, want: []uint64{3, 4, 5}},
		{keep: 1, writes: 4, want: []uint64{4}},
		{keep: 0, writes: 3, want: []uint64{3}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("keep %d of %d", tt.keep, tt.writes), func(t *testing.T) {
			dir := t.TempDir()
			g := &Generations{Dir: dir, FS: OS{}, Keep: tt.keep}
			for i := 0; i < tt.writes; i++ {
				payload := fmt.Appendf(nil, `{"n":%d}`, i)
				n, err := g.Write(payload)
				require.NoError(t, err)
				assert.Positive(t, n)
			}
			var want []string
			for _, s := range tt.want {
				want = append(want, FileName(s))
			}
			assert.Equal(t, want, dirNames(t, dir))

			// A restart goes on from the newest and loads it.
			g2 := &Generations{Dir: dir, FS: OS{}, Keep: tt.keep}
			var loaded string
			res, err := g2.Restore(func(p []byte) error { loaded = string(p); return nil })
			require.NoError(t, err)
			assert.Equal(t, tt.want[len(tt.want)-1], res.Seq)
			assert.Equal(t, fmt.Sprintf(`{"n":%d}`, tt.writes-1), loaded)
			_, err = g2.Write([]byte("{}"))
			require.NoError(t, err)
			assert.Contains(t, dirNames(t, dir), FileName(tt.want[len(tt.want)-1]+1))
		})
	}
}

// A generation the loader refuses is set aside and the previous one is used; files of
// another kind are corrupt too.
func TestRestoreFallsBackPastRefusedGenerations(t *testing.T) {
	dir := t.TempDir()
	g := &Generations{Dir: dir, FS: OS{}, Keep: 5}
	for _, p := range []string{"good", "refused"} {
		_, err := g.Write([]byte(p))
		require.NoError(t, err)
	}
	report, err := Codec{}.Encode(KindReport, []byte("a report"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName(3)), report, 0o600))

	var loaded string
	res, err := (&Generations{Dir: dir, FS: OS{}, Keep: 5}).Restore(func(p []byte) error {
		if string(p) == "refused" {
			return errors.New("payload does not validate")
		}
		loaded = string(p)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, "good", loaded)
	assert.Equal(t, uint64(1), res.Seq)
	assert.Equal(t, 3, res.Found)
	require.Len(t, res.Corrupt, 2)
	assert.ErrorIs(t, res.Corrupt[0].Err, ErrCorrupt)
	assert.Contains(t, res.Corrupt[0].Err.Error(), "kind 2")
	assert.Contains(t, res.Corrupt[1].Err.Error(), "does not validate")
	assert.Equal(t, []string{FileName(1), FileName(2) + corruptSuffix, FileName(3) + corruptSuffix}, dirNames(t, dir))
}

// Only the newest Keep files set aside stay.
func TestPruneCorruptKeepsNewest(t *testing.T) {
	dir := t.TempDir()
	for i := 1; i <= 5; i++ {
		require.NoError(t, os.WriteFile(filepath.Join(dir, FileName(uint64(i))+corruptSuffix), nil, 0o600))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "other.corrupt"), nil, 0o600))
	(&Generations{Dir: dir, FS: OS{}, Keep: 2}).pruneCorrupt()
	assert.Equal(t, []string{"other.corrupt", FileName(4) + corruptSuffix, FileName(5) + corruptSuffix}, dirNames(t, dir))
}

// A payload beyond the bound is not written and the previous generations stay.
func TestWriteRefusesTooLargeAndFailedWritesKeepTheSequence(t *testing.T) {
	dir := t.TempDir()
	g := &Generations{Dir: dir, FS: OS{}, Keep: 3, Codec: Codec{MaxPayload: 10}}
	_, err := g.Write([]byte("small"))
	require.NoError(t, err)
	_, err = g.Write([]byte(strings.Repeat("x", 11)))
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), "11 bytes, more than the 10")
	assert.Equal(t, []string{FileName(1)}, dirNames(t, dir))

	failing := &Generations{Dir: dir, FS: &faultyFS{failOn: "write", err: errors.New("disk full")}, Keep: 3}
	failing.seq = 1
	_, err = failing.Write([]byte("x"))
	require.Error(t, err)
	assert.Equal(t, uint64(1), failing.seq, "a failed write does not use up a number")
	assert.Equal(t, []string{FileName(1)}, dirNames(t, dir))
}

// FileName and parseSeq agree over the whole range of sequence numbers.
func TestFileNameRoundTrip(t *testing.T) {
	for _, seq := range []uint64{1, 9, 10, 12345678901234567, MaxSeq} {
		name := FileName(seq)
		assert.Len(t, name, len(checkpointPrefix)+seqDigits+len(checkpointSuffix))
		got, ok, err := parseSeq(name)
		require.NoError(t, err, name)
		assert.True(t, ok, name)
		assert.Equal(t, seq, got, name)
	}
	for _, name := range []string{FileName(0), FileName(MaxSeq + 1)} {
		_, ok, err := parseSeq(name)
		assert.True(t, ok, name)
		assert.Error(t, err, "%s is no generation", name)
	}
	for _, name := range []string{"audit.log", "state-00000000000000000001.ckpt.corrupt", "reports"} {
		_, ok, err := parseSeq(name)
		assert.False(t, ok, name)
		assert.NoError(t, err, name)
	}
}
