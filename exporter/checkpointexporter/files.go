package checkpointexporter // import "github.com/buildmon/buildmon/exporter/checkpointexporter"

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"

	"go.uber.org/zap"

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

// legacyEscaped matches the names that releases before injective naming gave ids that are no
// safe file name (x-<first 16 bytes of the SHA-256, hex>). Report folders of builds restored
// from such a release keep these names, so no id may map to one of them now.
var legacyEscaped = regexp.MustCompile(`^x-[0-9a-f]{32}$`)

// escapedPrefix starts the name of every id that is not kept as it is. Names kept as they are
// start with a letter or a digit, so an escaped name is never the name of another id.
const escapedPrefix = "_"

// plainNamer names report files after build ids and phase names (hashed when they are not
// safe as file names).
type plainNamer struct{}

// fileSafe maps an id to a file name injectively: a safe name that cannot be mistaken for an
// escaped one stays as it is; every other id becomes escapedPrefix and the hex SHA-256 of the
// id, which no name kept as it is can start with.
func fileSafe(s string) string {
	if safeName.MatchString(s) && !legacyEscaped.MatchString(s) {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return escapedPrefix + hex.EncodeToString(sum[:])
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
		path := filepath.Join(e.dir, reportsDir, dir, file)
		data, err := e.readReport(path)
		if err == nil {
			err = reportBelongsTo(data, id, phase)
			if err == nil {
				return data, nil
			}
			e.logger.Error("report file belongs to another build or phase; answering from the state",
				zapPath(path), zap.String("build_id", id), zap.String("phase", phase), zapErr(err))
		} else {
			e.logger.Warn("reading report file failed; answering from the state", zapPath(path), zapErr(err))
		}
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

// reportBelongsTo checks that a report file is the report asked for: a build report of build
// id, or the report of that build's phase. A report folder shared with another build, or a
// file put there by hand, must not be served as this build's report.
func reportBelongsTo(data []byte, id, phase string) error {
	var r struct {
		Kind    string `json:"kind"`
		BuildID string `json:"build_id"`
		Phase   string `json:"phase"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("decoding report: %w", err)
	}
	wantKind := "build"
	if phase != "" {
		wantKind = "phase"
	}
	switch {
	case r.BuildID != id:
		return fmt.Errorf("the report belongs to another build: build_id %q", r.BuildID)
	case r.Kind != wantKind:
		return fmt.Errorf("a report of kind %q, not %q", r.Kind, wantKind)
	case r.Phase != phase:
		return fmt.Errorf("the report belongs to another build phase: phase %q", r.Phase)
	}
	return nil
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
