package checkpointexporter // import "github.com/buildmon/buildmon/exporter/checkpointexporter"

import (
	"fmt"
	"os"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/checkpoint"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
)

// ReadCheckpointProgress reads an unencrypted checkpoint file, checks it as a restore would
// (header, checksum, payload) and returns every build's overall progress (0 to 1) as the
// status API shows it. It is for tools and tests that inspect the checkpoint folder.
func ReadCheckpointProgress(path string) (map[string]float64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	kind, payload, err := checkpoint.Codec{}.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("decoding checkpoint %q: %w", path, err)
	}
	if kind != checkpoint.KindCheckpoint {
		return nil, fmt.Errorf("decoding checkpoint %q: a file of kind %d, not a checkpoint", path, kind)
	}
	s := state.New(clock.System{}, state.Limits{}, plainNamer{})
	if err := s.Load(payload); err != nil {
		return nil, fmt.Errorf("decoding checkpoint %q: %w", path, err)
	}
	out := map[string]float64{}
	for _, b := range s.Builds(state.BuildFilter{}) {
		out[b.ID] = b.Progress
	}
	return out, nil
}
