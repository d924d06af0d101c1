package checkpointexporter // import "github.com/buildmon/buildmon/exporter/checkpointexporter"

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/checkpoint"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/encryption"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/report"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/statusapi"
)

// reportsDir is the folder of the reports inside the checkpoint directory.
const reportsDir = "reports"

// safeName matches build ids and phase names that can be file names as they are.
var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// plainNamer names report files after build ids and phase names (hashed when they are not
// safe as file names).
type plainNamer struct{}

func fileSafe(s string) string {
	if safeName.MatchString(s) {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "x-" + hex.EncodeToString(sum[:16])
}

func (plainNamer) BuildDir(id string) string     { return fileSafe(id) }
func (plainNamer) BuildFile() string             { return "build.json" }
func (plainNamer) PhaseFile(phase string) string { return "phase-" + fileSafe(phase) + ".json" }

// hashedNamer names report files with keyed hashes so that encrypted reports do not reveal
// build ids or phase names in their names.
type hashedNamer struct{ keys *encryption.Keyring }

func (n hashedNamer) BuildDir(id string) string { return "b-" + n.keys.NameHash("build\x00"+id) }
func (hashedNamer) BuildFile() string           { return "build.json.enc" }
func (n hashedNamer) PhaseFile(phase string) string {
	return "phase-" + n.keys.NameHash("phase\x00"+phase) + ".json.enc"
}

// writeReport generates a due report and writes it atomically; it returns the bytes written.
func (e *checkpointExporter) writeReport(job state.ReportJob) (int, error) {
	doc, ok := e.generateReport(job.Build, job.Phase)
	if !ok {
		return 0, nil
	}
	data, err := report.Marshal(doc)
	if err != nil {
		return 0, fmt.Errorf("encoding report: %w", err)
	}
	if e.codec.Keyring != nil {
		if data, err = e.codec.Encode(checkpoint.KindReport, data); err != nil {
			return 0, fmt.Errorf("encrypting report: %w", err)
		}
	}
	dir := filepath.Join(e.dir, reportsDir, job.Dir)
	if err := e.fs.MkdirAll(dir, 0o750); err != nil {
		return 0, fmt.Errorf("creating report folder: %w", err)
	}
	if err := checkpoint.WriteFileAtomic(e.fs, dir, job.File, data); err != nil {
		return 0, err
	}
	return len(data), nil
}

func (e *checkpointExporter) generateReport(b *state.Build, phase string) (any, bool) {
	now := e.clock.Now()
	if phase == "" {
		return report.ForBuild(b, now), true
	}
	r, ok := report.ForPhase(b, phase, now)
	return r, ok
}

// Report implements statusapi.Source: it reads (and decrypts) the report file, or, while
// the file is not written yet (or cannot be read), generates the report from the state.
func (e *checkpointExporter) Report(id, phase string) ([]byte, error) {
	dir, file, written, known := e.store.ReportLocation(id, phase)
	if !known {
		if phase == "" {
			return nil, fmt.Errorf("unknown build %q: %w", id, statusapi.ErrNotFound)
		}
		return nil, fmt.Errorf("unknown build %q or phase %q: %w", id, phase, statusapi.ErrNotFound)
	}
	if written {
		data, err := e.readReport(filepath.Join(e.dir, reportsDir, dir, file))
		if err == nil {
			return data, nil
		}
		e.logger.Warn("reading report file failed; answering from the state", zapPath(filepath.Join(e.dir, reportsDir, dir, file)), zapErr(err))
	}
	b, ok := e.store.BuildCopy(id)
	if !ok {
		return nil, fmt.Errorf("unknown build %q: %w", id, statusapi.ErrNotFound)
	}
	if phase == "" {
		if b.State.V != state.BuildFinished {
			return nil, fmt.Errorf("build %q has not finished: %w", id, statusapi.ErrNotReady)
		}
	} else {
		for _, p := range b.Phases {
			if p.Name == phase && !ended(p) {
				return nil, fmt.Errorf("phase %q of build %q has not ended: %w", phase, id, statusapi.ErrNotReady)
			}
		}
	}
	doc, ok := e.generateReport(b, phase)
	if !ok {
		return nil, fmt.Errorf("unknown phase %q: %w", phase, statusapi.ErrNotFound)
	}
	return report.Marshal(doc)
}

func ended(p *state.Phase) bool {
	switch p.State.V {
	case state.PhaseCompleted, state.PhaseFailed, state.PhaseSkipped:
		return true
	}
	return false
}

func (e *checkpointExporter) readReport(path string) ([]byte, error) {
	data, err := e.fs.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !checkpoint.IsEnvelope(data) {
		return data, nil
	}
	kind, payload, err := e.codec.Decode(data)
	if err != nil {
		return nil, err
	}
	if kind != checkpoint.KindReport {
		return nil, errors.New("not a report file")
	}
	return payload, nil
}
