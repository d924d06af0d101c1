package checkpoint

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/encryption"
)

// Checkpoint files are named state-<sequence, 20 digits>.ckpt; a file that fails its checks
// is renamed to <name>.corrupt.
const (
	checkpointPrefix = "state-"
	checkpointSuffix = ".ckpt"
	corruptSuffix    = ".corrupt"
	seqDigits        = 20
)

// MaxSeq is the largest sequence number a checkpoint name may carry (a checkpoint every
// millisecond would reach it after 31 million years). A name beyond it is no generation of
// ours and is set aside; when the sequence reaches it, the generations are renumbered from 1
// (Write), so the sequence never wraps.
const MaxSeq uint64 = 999_999_999_999_999_999

// Generations keeps the newest Keep checkpoints in Dir. Write and Restore must not be called
// concurrently (the writer goroutine owns Write; Restore runs before it starts).
type Generations struct {
	Dir   string
	FS    FS
	Codec Codec
	Keep  int

	seq uint64
}

// CorruptFile is a checkpoint that failed its checks during Restore, or a file whose name
// looks like a checkpoint's but is no generation name.
type CorruptFile struct {
	Path string
	// MovedTo is where it was moved aside ("" if the rename failed too).
	MovedTo string
	Err     error
	// Sealed is set for a checkpoint sealed with a key that is not configured (or flagged as
	// sealed without any key configured); it was set aside because an older generation
	// could be loaded.
	Sealed bool
}

// RestoreResult says what Restore found.
type RestoreResult struct {
	// Path and Seq name the checkpoint that was loaded ("" if none).
	Path string
	Seq  uint64
	// Found counts the checkpoint files found, Corrupt those that failed.
	Found   int
	Corrupt []CorruptFile
}

// FileName returns the name of checkpoint number seq.
func FileName(seq uint64) string {
	return fmt.Sprintf("%s%020d%s", checkpointPrefix, seq, checkpointSuffix)
}

// parseSeq reads a file name: ok is false for names that are no checkpoint's at all; err is
// set for names that look like a checkpoint's (state-….ckpt) but are no generation: anything
// but exactly 20 digits, 0, or a number beyond MaxSeq.
func parseSeq(name string) (seq uint64, ok bool, err error) {
	if !strings.HasPrefix(name, checkpointPrefix) || !strings.HasSuffix(name, checkpointSuffix) ||
		len(name) < len(checkpointPrefix)+len(checkpointSuffix) {
		return 0, false, nil
	}
	digits := name[len(checkpointPrefix) : len(name)-len(checkpointSuffix)]
	if len(digits) != seqDigits || strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, true, fmt.Errorf("%w: %q is no checkpoint generation name (state-<%d digits>.ckpt)", ErrCorrupt, name, seqDigits)
	}
	n, perr := strconv.ParseUint(digits, 10, 64)
	if perr != nil || n == 0 || n > MaxSeq {
		return 0, true, fmt.Errorf("%w: %q carries sequence number %s, outside 1 to %d", ErrCorrupt, name, strings.TrimLeft(digits, "0"), MaxSeq)
	}
	return n, true, nil
}

// badName is a file named like a checkpoint that is no generation.
type badName struct {
	name string
	err  error
}

// list returns the sequence numbers of the checkpoints in Dir, newest first, and the files
// named like checkpoints that are no generation.
func (g *Generations) list() ([]uint64, []badName, error) {
	entries, err := g.FS.ReadDir(g.Dir)
	if err != nil {
		if isNotExist(err) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	var seqs []uint64
	var bad []badName
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		seq, ok, err := parseSeq(e.Name())
		switch {
		case !ok:
		case err != nil:
			bad = append(bad, badName{e.Name(), err})
		default:
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	slices.Reverse(seqs)
	return seqs, bad, nil
}

// Restore loads the newest checkpoint that passes its checks and that load accepts. A file
// that is corrupt (or that load rejects), or that is named like a checkpoint but carries no
// valid generation name, is moved aside to <name>.corrupt and the previous generation is
// tried. A checkpoint sealed with a key that is not configured (or flagged as sealed while no
// key is) is skipped too, and moved aside once an older generation loaded; only when no
// generation at all could be loaded and some were sealed with a key that is not configured
// does Restore fail, naming the file and the key id and leaving the files in place, so that
// configuring the key recovers them.
func (g *Generations) Restore(load func(payload []byte) error) (RestoreResult, error) {
	var res RestoreResult
	removeTemps(g.FS, g.Dir)
	seqs, bad, err := g.list()
	if err != nil {
		return res, fmt.Errorf("listing checkpoints in %q: %w", g.Dir, err)
	}
	res.Found = len(seqs) + len(bad)
	for _, b := range bad {
		res.Corrupt = append(res.Corrupt, g.setAside(filepath.Join(g.Dir, b.name), b.err, false))
	}
	if len(seqs) > 0 {
		g.seq = seqs[0]
	}
	type sealedFile struct {
		path string
		err  error
	}
	var sealed []sealedFile
	for _, seq := range seqs {
		path := filepath.Join(g.Dir, FileName(seq))
		err := g.restoreOne(path, load)
		if err == nil {
			res.Path, res.Seq = path, seq
			break
		}
		if errors.Is(err, encryption.ErrUnknownKey) || errors.Is(err, ErrNoKey) {
			sealed = append(sealed, sealedFile{path, err})
			continue
		}
		res.Corrupt = append(res.Corrupt, g.setAside(path, err, false))
	}
	if res.Path == "" && len(sealed) > 0 {
		if len(res.Corrupt) > 0 {
			_ = g.FS.SyncDir(g.Dir)
			g.pruneCorrupt()
		}
		f := sealed[0]
		if errors.Is(f.err, ErrNoKey) {
			return res, fmt.Errorf("checkpoint %q: %w (configure encryption with the key it was written with), and no older checkpoint could be loaded", f.path, f.err)
		}
		return res, fmt.Errorf("checkpoint %q is encrypted with a key that is neither encryption.key_file/key_env nor one of encryption.previous_keys: %w; no older checkpoint could be loaded", f.path, f.err)
	}
	for _, f := range sealed {
		res.Corrupt = append(res.Corrupt, g.setAside(f.path, f.err, true))
	}
	if len(res.Corrupt) > 0 {
		_ = g.FS.SyncDir(g.Dir)
		g.pruneCorrupt()
	}
	return res, nil
}

// setAside renames a file that Restore cannot use to <name>.corrupt.
func (g *Generations) setAside(path string, err error, sealed bool) CorruptFile {
	cf := CorruptFile{Path: path, Err: err, Sealed: sealed}
	if rerr := g.FS.Rename(path, path+corruptSuffix); rerr == nil {
		cf.MovedTo = path + corruptSuffix
	}
	return cf
}

func (g *Generations) restoreOne(path string, load func([]byte) error) error {
	data, err := g.FS.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: reading: %w", ErrCorrupt, err)
	}
	kind, payload, err := g.Codec.Decode(data)
	if err != nil {
		return err
	}
	if kind != KindCheckpoint {
		return fmt.Errorf("%w: holds a file of kind %d, not a checkpoint", ErrCorrupt, kind)
	}
	if err := load(payload); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return nil
}

// pruneCorrupt keeps only the newest Keep files moved aside.
func (g *Generations) pruneCorrupt() {
	entries, err := g.FS.ReadDir(g.Dir)
	if err != nil {
		return
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), checkpointSuffix+corruptSuffix) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for len(names) > max(g.Keep, 1) {
		_ = g.FS.Remove(filepath.Join(g.Dir, names[0]))
		names = names[1:]
	}
}

// Write writes payload as the next checkpoint and removes generations beyond Keep. It
// returns the size of the file written. A payload larger than the codec's MaxPayload is not
// written (Restore would refuse it): the error says so and the previous generations stay.
func (g *Generations) Write(payload []byte) (int, error) {
	if limit := g.Codec.maxPayload(); int64(len(payload)) > limit {
		return 0, fmt.Errorf("%w: the state encodes to %d bytes, more than the %d a checkpoint may hold", ErrTooLarge, len(payload), limit)
	}
	data, err := g.Codec.Encode(KindCheckpoint, payload)
	if err != nil {
		return 0, fmt.Errorf("encoding checkpoint: %w", err)
	}
	if g.seq >= MaxSeq {
		if err := g.renumber(); err != nil {
			return 0, err
		}
	}
	seq := g.seq + 1
	if err := WriteFileAtomic(g.FS, g.Dir, FileName(seq), data); err != nil {
		return 0, err
	}
	g.seq = seq
	g.prune(seq)
	return len(data), nil
}

// prune removes the generations beyond the newest Keep up to seq, the one just written. Files
// with higher numbers (put there while the collector runs) are left to the next Restore.
func (g *Generations) prune(seq uint64) {
	seqs, _, err := g.list()
	if err != nil {
		return
	}
	seqs = slices.DeleteFunc(seqs, func(s uint64) bool { return s > seq })
	if len(seqs) <= max(g.Keep, 1) {
		return
	}
	for _, old := range seqs[max(g.Keep, 1):] {
		_ = g.FS.Remove(filepath.Join(g.Dir, FileName(old)))
	}
	_ = g.FS.SyncDir(g.Dir)
}

// renumber gives the newest Keep generations the numbers 1 to Keep, keeping their order, when
// the sequence reached MaxSeq. The oldest is renamed first, to the lowest number, so that a
// crash at any point leaves the generations in their order.
func (g *Generations) renumber() error {
	g.prune(g.seq)
	seqs, _, err := g.list()
	if err != nil {
		return fmt.Errorf("renumbering checkpoints in %q: %w", g.Dir, err)
	}
	seqs = slices.DeleteFunc(seqs, func(s uint64) bool { return s > g.seq })
	slices.Reverse(seqs)
	for i, old := range seqs {
		next := uint64(i + 1)
		if old == next {
			continue
		}
		if err := g.FS.Rename(filepath.Join(g.Dir, FileName(old)), filepath.Join(g.Dir, FileName(next))); err != nil {
			return fmt.Errorf("renumbering checkpoints in %q: %w", g.Dir, err)
		}
	}
	if err := g.FS.SyncDir(g.Dir); err != nil {
		return fmt.Errorf("renumbering checkpoints in %q: %w", g.Dir, err)
	}
	g.seq = uint64(len(seqs))
	return nil
}
