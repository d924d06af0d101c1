package buildmonreceiver

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"

	bmetadata "github.com/buildmon/buildmon/internal/metadata"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/metadata"
)

// spanRecords are the spans of two builds in one emission, interleaved as a registry can
// finish them: named, unnamed and batched steps, phases, a failed phase and a build's root.
func spanRecords() []events.SpanRecord {
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	a := &events.Identity{ID: "build-a", Pipeline: "api", Host: "ci-1", Started: t0,
		Attributes: events.Attributes{Worker: "w1", Repository: "https://git.example/api", Branch: "main", Revision: "abc123"}}
	b := &events.Identity{ID: "build-b", Pipeline: "web", Host: "ci-2", Started: t0}
	return []events.SpanRecord{
		{Build: a, Phase: "BUILD", Step: "compile", StepNumber: 1, StepCount: 1, Start: at(0), End: at(1), Result: "success"},
		{Build: b, Phase: "TEST", StepNumber: 3, StepCount: 1, Start: at(0), End: at(2), Result: "success"},
		{Build: a, Phase: "BUILD", StepNumber: 5, StepCount: 4, Start: at(1), End: at(3), Result: "success"},
		{Build: a, Phase: "BUILD", StepNumber: 0, Start: at(0), End: at(3), Result: "success"},
		{Build: b, Phase: "TEST", StepNumber: 4, StepCount: 1, Start: at(2), End: at(4), Result: "failure", Message: "2 tests failed"},
		{Build: b, Phase: "TEST", Start: at(0), End: at(4), Result: "failure", Message: "2 tests failed"},
		{Build: b, Start: at(0), End: at(5), Result: "failure", Message: "2 tests failed"},
		{Build: a, Phase: "DEPLOY", Step: "push", StepNumber: 1, StepCount: 1, Start: at(3), End: at(4), Result: "success"},
	}
}

// TestTracesGolden pins the spans of an emission byte for byte, trace and span ids
// included: ids derive from build, phase and step, so the spans a restarted collector
// emits for a build land in the same trace as those before (UPDATE_GOLDEN=1 rewrites it).
func TestTracesGolden(t *testing.T) {
	e := newEmitter(bmetadata.NewDefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type))
	got, err := (&ptrace.JSONMarshaler{}).MarshalTraces(e.traces(spanRecords()))
	require.NoError(t, err)
	file := filepath.Join("testdata", "golden", "spans.json")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		require.NoError(t, os.WriteFile(file, append(got, '\n'), 0o600))
	}
	want, err := os.ReadFile(file)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(got))
}

// BenchmarkEmitTraces: the spans of 1000 step_completed events of 100 builds, as one NDJSON
// batch of BenchmarkNDJSONBatch finishes them.
func BenchmarkEmitTraces(b *testing.B) {
	e := newEmitter(bmetadata.NewDefaultMetricsBuilderConfig(), receivertest.NewNopSettings(metadata.Type))
	t0 := time.Now()
	ids := make([]*events.Identity, 100)
	for i := range ids {
		ids[i] = &events.Identity{ID: fmt.Sprintf("build-%03d", i), Pipeline: "bench", Host: "ci", Started: t0}
	}
	spans := make([]events.SpanRecord, 1000)
	for i := range spans {
		n := int64(i/len(ids) + 1)
		spans[i] = events.SpanRecord{Build: ids[i%len(ids)], Phase: "BUILD", StepNumber: n, StepCount: 1,
			Start: t0, End: t0.Add(time.Second), Result: "success"}
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = e.traces(spans)
	}
}
