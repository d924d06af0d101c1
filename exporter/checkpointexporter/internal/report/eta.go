package report

import "github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"

// ETAAccuracy is how good the build's ETA was: the duration the ETA predicted when progress
// first reached 50 % and 90 %, beside the real duration.
type ETAAccuracy struct {
	// RealDurationSeconds is the build's duration (build.duration).
	RealDurationSeconds float64         `json:"real_duration_seconds"`
	Predictions         []ETAPrediction `json:"predictions"`
}

// ETAPrediction is the ETA at one progress mark.
type ETAPrediction struct {
	// AtProgress is the mark (0.5, 0.9); Progress the build's progress when it was reached.
	AtProgress float64 `json:"at_progress"`
	Progress   float64 `json:"progress"`
	// ElapsedSeconds is how long the build had run, ETASeconds the ETA then, from Source
	// (history, rate or blend).
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	ETASeconds     float64 `json:"eta_seconds"`
	Source         string  `json:"source,omitempty"`
	// PredictedDurationSeconds = elapsed + ETA.
	PredictedDurationSeconds float64 `json:"predicted_duration_seconds"`
	// ErrorSeconds = predicted − real duration (positive: the ETA was too long);
	// ErrorShare = ErrorSeconds / real duration.
	ErrorSeconds float64 `json:"error_seconds"`
	ErrorShare   float64 `json:"error_share"`
	At           string  `json:"at"`
}

// etaAccuracy returns the ETA accuracy of a finished build, nil when no prediction was
// recorded (no buildprogress processor, or the build finished before 50 %).
func etaAccuracy(b *state.Build) *ETAAccuracy {
	if len(b.ETAPredictions) == 0 {
		return nil
	}
	actual := b.Duration.V
	out := &ETAAccuracy{RealDurationSeconds: round(actual), Predictions: make([]ETAPrediction, 0, len(b.ETAPredictions))}
	for _, p := range b.ETAPredictions {
		predicted := p.Elapsed + p.ETA
		e := ETAPrediction{AtProgress: p.Mark, Progress: round(p.Progress), ElapsedSeconds: round(p.Elapsed),
			ETASeconds: round(p.ETA), Source: p.Source, PredictedDurationSeconds: round(predicted),
			ErrorSeconds: round(predicted - actual), At: state.FormatTime(p.T)}
		if actual > 0 {
			e.ErrorShare = round((predicted - actual) / actual)
		}
		out.Predictions = append(out.Predictions, e)
	}
	return out
}
