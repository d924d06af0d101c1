package buildmonreceiver // import "github.com/buildmon/buildmon/receiver/buildmonreceiver"

import (
	"crypto/sha256"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"

	bmetadata "github.com/buildmon/buildmon/internal/metadata"
	"github.com/buildmon/buildmon/internal/schema"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"
)

// emitter turns registry snapshots into the schema's build metrics and CICD spans.
type emitter struct {
	mu   sync.Mutex // guards mb, which is not safe for concurrent use, and last
	mb   *bmetadata.MetricsBuilder
	last time.Time // the now of the previous emission
}

func newEmitter(mbc bmetadata.MetricsBuilderConfig, set receiver.Settings) *emitter {
	return &emitter{mb: bmetadata.NewMetricsBuilder(mbc, set)}
}

// elapsed is the time from start to end, or to now while end is not set, never negative.
func elapsed(start, end, now time.Time) float64 {
	if start.IsZero() {
		return 0
	}
	if end.IsZero() {
		end = now
	}
	if d := end.Sub(start).Seconds(); d > 0 {
		return d
	}
	return 0
}

// unixSeconds is t as Unix time in seconds, the unit of the start-time gauges; whole seconds
// and the fraction are converted apart so that the fraction keeps its nanoseconds' precision
// as far as a float64 can.
func unixSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// metrics returns the build metrics of the given builds, one resource per build. Every data
// point of a build carries the time of the build's newest event (client timestamps honored),
// which never goes backwards, so a consumer that keeps the newest point keeps the latest
// state; the start time is the build's start. Durations of running phases and builds are
// measured up to now, so their points carry the later of now and that time: a re-emission
// never sends a new value at a time a point was already sent with (Prometheus remote write
// refuses a whole request with such a sample), and the duration series never go backwards
// when a build finishes with a client time before the last re-emission. The build's and its
// phases' start times are points of their own
// (build.start_time, build.phase.start_time), so that a consumer reads them instead of
// inferring them as end minus duration; a pending phase has none.
func (e *emitter) metrics(changes []events.Change, now time.Time) pmetric.Metrics {
	e.mu.Lock()
	defer e.mu.Unlock()
	// Emissions are a millisecond apart at least (Prometheus keeps milliseconds): each
	// measures the durations to its own now.
	if least := e.last.Add(time.Millisecond); now.Before(least) {
		now = least
	}
	e.last = now
	for i := range changes {
		if changes[i].Removed {
			continue
		}
		b := &changes[i].Build
		ts := pcommon.NewTimestampFromTime(b.Updated)
		durTS := ts
		if now.After(b.Updated) {
			durTS = pcommon.NewTimestampFromTime(now)
		}
		for j := range b.Phases {
			ph := &b.Phases[j]
			e.mb.RecordBuildPhaseStepsTotalDataPoint(ts, ph.Steps, ph.Name)
			e.mb.RecordBuildPhaseStepsCompletedDataPoint(ts, ph.Completed, ph.Name)
			// The state set is the current state (1) and the state the phase left (0): a
			// consumer that keeps the last value of every series (the Prometheus exporter)
			// sees the old state drop to 0, and states a phase never had cost no series.
			if a, ok := bmetadata.MapAttributeBuildPhaseState[string(ph.State)]; ok {
				e.mb.RecordBuildPhaseStateDataPoint(ts, 1, ph.Name, a)
			}
			if a, ok := bmetadata.MapAttributeBuildPhaseState[string(ph.Left)]; ok {
				e.mb.RecordBuildPhaseStateDataPoint(ts, 0, ph.Name, a)
			}
			end := ph.End
			if end.IsZero() && b.Done() {
				end = b.Finished
			}
			e.mb.RecordBuildPhaseDurationDataPoint(durTS, elapsed(ph.Start, end, now), ph.Name)
			if !ph.Start.IsZero() {
				e.mb.RecordBuildPhaseStartTimeDataPoint(ts, unixSeconds(ph.Start), ph.Name)
			}
			if ph.Weight != nil {
				e.mb.RecordBuildPhaseWeightDataPoint(ts, *ph.Weight, ph.Name)
			}
		}
		if b.Done() {
			e.mb.RecordBuildStateDataPoint(ts, 1, bmetadata.AttributeBuildStateFinished)
			e.mb.RecordBuildStateDataPoint(ts, 0, bmetadata.AttributeBuildStateRunning)
			if a, ok := bmetadata.MapAttributeCicdPipelineResult[b.Result]; ok {
				e.mb.RecordBuildResultDataPoint(ts, 1, a)
			}
		} else {
			e.mb.RecordBuildStateDataPoint(ts, 1, bmetadata.AttributeBuildStateRunning)
		}
		e.mb.RecordBuildDurationDataPoint(durTS, elapsed(b.Started, b.Finished, now))
		e.mb.RecordBuildStartTimeDataPoint(ts, unixSeconds(b.Started))
		e.mb.EmitForResource(bmetadata.WithResource(e.resource(b.Host, b.Pipeline, b.ID, b.Attributes)), bmetadata.WithStartTimeOverride(pcommon.NewTimestampFromTime(b.Started)))
	}
	return e.mb.Emit()
}

func (e *emitter) resource(host, pipeline, id string, attrs events.Attributes) pcommon.Resource {
	rb := e.mb.NewResourceBuilder()
	rb.SetHostName(host)
	rb.SetCicdPipelineName(pipeline)
	rb.SetCicdPipelineRunID(id)
	if v := attrs.Worker; v != "" {
		rb.SetCicdWorkerID(v)
	}
	if v := attrs.Repository; v != "" {
		rb.SetVcsRepositoryURLFull(v)
	}
	if v := attrs.Branch; v != "" {
		rb.SetVcsRefHeadName(v)
	}
	if v := attrs.Revision; v != "" {
		rb.SetVcsRefHeadRevision(v)
	}
	return rb.Emit()
}

// Span attribute keys beyond the resource's: the CICD task conventions, and ours for steps.
const (
	attrActionName    = "cicd.pipeline.action.name"
	attrTaskName      = "cicd.pipeline.task.name"
	attrTaskRunID     = "cicd.pipeline.task.run.id"
	attrTaskRunResult = "cicd.pipeline.task.run.result"
	attrStepName      = "buildmon.step.name"
	attrStepNumber    = "buildmon.step.number"
	attrStepCount     = "buildmon.step.count"
	attrSpanKind      = "buildmon.span.kind"
)

// traceID is derived from the build id, so every span of a build lands in one trace without
// the receiver remembering anything.
func traceID(buildID string) pcommon.TraceID {
	var buf [128]byte
	sum := sha256.Sum256(append(append(buf[:0], "buildmon/trace/"...), buildID...))
	var id pcommon.TraceID
	copy(id[:], sum[:16])
	return id
}

// spanID is derived from the names of the span and its ancestors: each part followed by a
// zero byte, hashed.
func spanID(parts ...string) pcommon.SpanID {
	var buf [128]byte
	b := buf[:0]
	for _, p := range parts {
		b = append(append(b, p...), 0)
	}
	sum := sha256.Sum256(b)
	var id pcommon.SpanID
	copy(id[:], sum[:8])
	return id
}

// buildSpans is where one emission puts a build's spans, with the ids and names its spans
// share: the steps of a phase come one after the other, so the last phase's are kept.
type buildSpans struct {
	spans     ptrace.SpanSlice
	trace     pcommon.TraceID
	root      pcommon.SpanID
	phase     string
	phaseSpan pcommon.SpanID
	taskRunID string // build id/phase
}

// setPhase makes phase (never empty) the build's current phase.
func (b *buildSpans) setPhase(buildID, phase string) {
	if b.phase != phase {
		b.phase, b.phaseSpan, b.taskRunID = phase, spanID(buildID, phase), buildID+"/"+phase
	}
}

// spanAttributes makes room for n attributes of span and sets the two every span has.
func spanAttributes(span ptrace.Span, n int, b *events.Identity) pcommon.Map {
	attrs := span.Attributes()
	attrs.EnsureCapacity(n)
	attrs.PutStr(schema.AttrPipelineName, b.Pipeline)
	attrs.PutStr(schema.AttrRunID, b.ID)
	return attrs
}

// traces returns the finished spans, grouped by build.
func (e *emitter) traces(spans []events.SpanRecord) ptrace.Traces {
	td := ptrace.NewTraces()
	byBuild := map[string]*buildSpans{}
	for i := range spans {
		s := &spans[i]
		bs, ok := byBuild[s.Build.ID]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			e.mu.Lock()
			e.resource(s.Build.Host, s.Build.Pipeline, s.Build.ID, s.Build.Attributes).MoveTo(rs.Resource())
			e.mu.Unlock()
			sc := rs.ScopeSpans().AppendEmpty()
			sc.Scope().SetName(bmetadata.ScopeName)
			bs = &buildSpans{spans: sc.Spans(), trace: traceID(s.Build.ID), root: spanID(s.Build.ID)}
			byBuild[s.Build.ID] = bs
		}
		span := bs.spans.AppendEmpty()
		span.SetTraceID(bs.trace)
		switch {
		case s.Phase == "":
			attrs := spanAttributes(span, 5, s.Build)
			span.SetSpanID(bs.root)
			span.SetName("RUN " + s.Build.Pipeline)
			attrs.PutStr(attrActionName, "RUN")
			attrs.PutStr(attrSpanKind, "build")
			attrs.PutStr(schema.AttrPipelineResult, s.Result)
		case s.StepNumber == 0:
			bs.setPhase(s.Build.ID, s.Phase)
			attrs := spanAttributes(span, 6, s.Build)
			span.SetSpanID(bs.phaseSpan)
			span.SetParentSpanID(bs.root)
			span.SetName(s.Phase)
			attrs.PutStr(attrSpanKind, "phase")
			attrs.PutStr(attrTaskName, s.Phase)
			attrs.PutStr(attrTaskRunID, bs.taskRunID)
			attrs.PutStr(attrTaskRunResult, s.Result)
		default:
			bs.setPhase(s.Build.ID, s.Phase)
			n := strconv.FormatInt(s.StepNumber, 10)
			name := s.Step
			switch {
			case name != "":
			case s.StepCount > 1:
				name = "steps " + strconv.FormatInt(s.StepNumber-s.StepCount+1, 10) + "-" + n
			default:
				name = "step " + n
			}
			attrs := spanAttributes(span, 9, s.Build)
			span.SetSpanID(spanID(s.Build.ID, s.Phase, n))
			span.SetParentSpanID(bs.phaseSpan)
			span.SetName(s.Phase + "/" + name)
			attrs.PutStr(attrSpanKind, "step")
			attrs.PutStr(attrTaskName, s.Phase)
			attrs.PutStr(attrTaskRunID, bs.taskRunID)
			attrs.PutStr(attrStepName, name)
			attrs.PutInt(attrStepNumber, s.StepNumber)
			attrs.PutInt(attrStepCount, s.StepCount)
			attrs.PutStr(attrTaskRunResult, s.Result)
		}
		span.SetKind(ptrace.SpanKindInternal)
		span.SetStartTimestamp(pcommon.NewTimestampFromTime(s.Start))
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(s.End))
		if s.Result == "failure" || s.Result == "error" || s.Result == "timeout" {
			span.Status().SetCode(ptrace.StatusCodeError)
			span.Status().SetMessage(s.Message)
		}
	}
	return td
}
