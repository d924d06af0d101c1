package loadgen

import (
	"bytes"
	"strconv"
	"time"
)

// Event bodies are written by hand rather than with encoding/json: the generator must spend as
// little CPU as possible on a machine it shares with the collector it measures, and the
// handful of fields it sends are plain ASCII identifiers it validated itself.

// BuildPlan is the plan every generated build starts with: one phase with a step count.
type BuildPlan struct {
	Pipeline string // cicd.pipeline.name of the builds; default "loadgen"
	Phase    string // the one phase of the plan; default "BUILD"
	Steps    int    // steps of that phase; default 1,000,000 so no run completes it
}

func (p BuildPlan) withDefaults() BuildPlan {
	if p.Pipeline == "" {
		p.Pipeline = "loadgen"
	}
	if p.Phase == "" {
		p.Phase = "BUILD"
	}
	if p.Steps <= 0 {
		p.Steps = 1_000_000
	}
	return p
}

func appendBuildStarted(b []byte, id string, p BuildPlan) []byte {
	b = append(b, `{"type":"build_started","build_id":"`...)
	b = append(b, id...)
	b = append(b, `","pipeline":"`...)
	b = append(b, p.Pipeline...)
	b = append(b, `","phases":[{"name":"`...)
	b = append(b, p.Phase...)
	b = append(b, `","steps":`...)
	b = strconv.AppendInt(b, int64(p.Steps), 10)
	b = append(b, `}]}`...)
	return b
}

func appendPhaseStarted(b []byte, id, phase string) []byte {
	b = append(b, `{"type":"phase_started","build_id":"`...)
	b = append(b, id...)
	b = append(b, `","phase":"`...)
	b = append(b, phase...)
	b = append(b, `"}`...)
	return b
}

// appendStepCompleted writes a step_completed event; a zero t leaves the time to the receiver.
func appendStepCompleted(b []byte, id, phase string, t time.Time) []byte {
	b = append(b, `{"type":"step_completed","build_id":"`...)
	b = append(b, id...)
	b = append(b, `","phase":"`...)
	b = append(b, phase...)
	if !t.IsZero() {
		b = append(b, `","time":"`...)
		b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	}
	b = append(b, `"}`...)
	return b
}

// ndjson joins events into an NDJSON body, one event per line.
func ndjson(lines [][]byte) []byte {
	var buf bytes.Buffer
	for _, l := range lines {
		buf.Write(l)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// BuildIDs returns n build ids prefix-00000, prefix-00001, … (valid build ids as long as the
// prefix is one).
func BuildIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = prefix + "-" + pad5(i)
	}
	return ids
}

func pad5(i int) string {
	s := strconv.Itoa(i)
	for len(s) < 5 {
		s = "0" + s
	}
	return s
}
