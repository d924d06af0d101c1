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
)

// Generations keeps the newest Keep checkpoints in Dir. Write and Restore must not be called
// concurrently (the writer goroutine owns Write; Restore runs before it starts).
type Generations struct {
	Dir   string
	FS    FS
	Codec Codec
	Keep  int

	seq uint64
}

// CorruptFile is a checkpoint that failed its checks during Restore.
type CorruptFile struct {
	Path string
	// MovedTo is where it was moved aside ("" if the rename failed too).
	MovedTo string
	Err     error
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

func parseSeq(name string) (uint64, bool) {
	if !strings.HasPrefix(name, checkpointPrefix) || !strings.HasSuffix(name, checkpointSuffix) {
		return 0, false
	}
	n, err := strconv.ParseUint(name[len(checkpointPrefix):len(name)-len(checkpointSuffix)], 10, 64)
	return n, err == nil
}

// list returns the sequence numbers of the checkpoints in Dir, newest first.
func (g *Generations) list() ([]uint64, error) {
	entries, err := g.FS.ReadDir(g.Dir)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var seqs []uint64
	for _, e := range entries {
		if seq, ok := parseSeq(e.Name()); ok && !e.IsDir() {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	slices.Reverse(seqs)
	return seqs, nil
}

// Restore loads the newest checkpoint that passes its checks and that load accepts. A file
// that is corrupt (or that load rejects) is moved aside to <name>.corrupt and the previous
// generation is tried. A checkpoint sealed with a key that is not configured is no
// corruption: Restore stops with an error naming the file and the key id.
func (g *Generations) Restore(load func(payload []byte) error) (RestoreResult, error) {
	var res RestoreResult
	removeTemps(g.FS, g.Dir)
	seqs, err := g.list()
	if err != nil {
		return res, fmt.Errorf("listing checkpoints in %q: %w", g.Dir, err)
	}
	res.Found = len(seqs)
	if len(seqs) > 0 {
		g.seq = seqs[0]
	}
	for _, seq := range seqs {
		path := filepath.Join(g.Dir, FileName(seq))
		err := g.restoreOne(path, load)
		if err == nil {
			res.Path, res.Seq = path, seq
			break
		}
		if errors.Is(err, encryption.ErrUnknownKey) {
			return res, fmt.Errorf("checkpoint %q is encrypted with a key that is neither encryption.key_file/key_env nor one of encryption.previous_keys: %w", path, err)
		}
		if errors.Is(err, ErrNoKey) {
			return res, fmt.Errorf("checkpoint %q: %w (configure encryption with the key it was written with)", path, err)
		}
		cf := CorruptFile{Path: path, Err: err}
		if rerr := g.FS.Rename(path, path+corruptSuffix); rerr == nil {
			cf.MovedTo = path + corruptSuffix
		}
		res.Corrupt = append(res.Corrupt, cf)
	}
	if len(res.Corrupt) > 0 {
		_ = g.FS.SyncDir(g.Dir)
		g.pruneCorrupt()
	}
	return res, nil
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
// returns the size of the file written.
func (g *Generations) Write(payload []byte) (int, error) {
	data, err := g.Codec.Encode(KindCheckpoint, payload)
	if err != nil {
		return 0, fmt.Errorf("encoding checkpoint: %w", err)
	}
	seq := g.seq + 1
	if err := WriteFileAtomic(g.FS, g.Dir, FileName(seq), data); err != nil {
		return 0, err
	}
	g.seq = seq
	seqs, err := g.list()
	if err == nil && len(seqs) > g.Keep {
		for _, old := range seqs[max(g.Keep, 1):] {
			_ = g.FS.Remove(filepath.Join(g.Dir, FileName(old)))
		}
		_ = g.FS.SyncDir(g.Dir)
	}
	return len(data), nil
}
