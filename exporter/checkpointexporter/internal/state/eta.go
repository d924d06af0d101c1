package state

// The ETA the buildprogress processor predicted, kept so that the build report can show how
// good it was: the first prediction at each of PredictionMarks of progress, beside the real
// duration once the build finished.

// PredictionMarks are the progress values at which a build's ETA is recorded.
var PredictionMarks = [...]float64{0.5, 0.9}

// ETAPrediction is the ETA of a build when its progress first reached a mark.
type ETAPrediction struct {
	// Mark is the progress mark (0.5, 0.9); Progress the build's progress then.
	Mark     float64 `json:"mark"`
	Progress float64 `json:"progress"`
	// Elapsed is the build's duration then (build.duration, s), ETA the processor's build.eta
	// (s) and Source its build.eta.source.
	Elapsed float64 `json:"elapsed"`
	ETA     float64 `json:"eta"`
	Source  string  `json:"source,omitempty"`
	// T is the timestamp of the ETA data point.
	T int64 `json:"t"`
}

// notePredictions records the ETA at the marks the build's progress reached, once per mark,
// while the build runs and the progress and ETA are of the same report. It reports whether
// it recorded one.
func (b *Build) notePredictions() bool {
	if b.finished() || !b.Progress.Set() || !b.ETA.Set() || b.ETA.T != b.Progress.T {
		return false
	}
	added := false
	for _, mark := range PredictionMarks {
		if b.Progress.V < mark-1e-9 || b.hasPrediction(mark) || len(b.ETAPredictions) >= len(PredictionMarks) {
			continue
		}
		b.ETAPredictions = append(b.ETAPredictions, ETAPrediction{Mark: mark, Progress: b.Progress.V,
			Elapsed: b.Duration.V, ETA: b.ETA.V, Source: b.ETASource.V, T: b.ETA.T})
		added = true
	}
	return added
}

func (b *Build) hasPrediction(mark float64) bool {
	for _, p := range b.ETAPredictions {
		if p.Mark == mark {
			return true
		}
	}
	return false
}

func checkPredictions(what string, ps []ETAPrediction) error {
	if len(ps) > len(PredictionMarks) {
		return invalid("%s: %d ETA predictions, more than %d", what, len(ps), len(PredictionMarks))
	}
	for i, p := range ps {
		if len(p.Source) > MaxNameBytes {
			return invalid("%s.eta_predictions[%d].source longer than %d bytes", what, i, MaxNameBytes)
		}
	}
	return nil
}
