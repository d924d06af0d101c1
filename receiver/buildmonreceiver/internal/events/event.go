// Package events decodes and validates the build events of the buildmon receiver's HTTP API
// and keeps the registry of builds they describe. It has no collector types in its API.
package events // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Type is the kind of a build event.
type Type uint8

// The event types of the API.
const (
	TypeUnknown Type = iota
	TypeBuildStarted
	TypePhaseStarted
	TypeStepCompleted
	TypeMilestoneReached
	TypePhaseCompleted
	TypePhaseFailed
	TypePhaseSkipped
	TypeBuildFinished
)

var typeNames = map[string]Type{
	"build_started":     TypeBuildStarted,
	"phase_started":     TypePhaseStarted,
	"step_completed":    TypeStepCompleted,
	"milestone_reached": TypeMilestoneReached,
	"phase_completed":   TypePhaseCompleted,
	"phase_failed":      TypePhaseFailed,
	"phase_skipped":     TypePhaseSkipped,
	"build_finished":    TypeBuildFinished,
}

func (t Type) String() string {
	for name, v := range typeNames {
		if v == t {
			return name
		}
	}
	return "unknown"
}

// Results a finished build may have (cicd.pipeline.result values).
var results = map[string]bool{"success": true, "failure": true, "error": true, "timeout": true, "cancellation": true}

// DefaultPhases is the plan of a build that starts without one.
var DefaultPhases = []string{"INIT", "SETUP", "BUILD", "TEST", "CLEANUP"}

// Limits of a single event; they keep a hostile client from growing the registry.
const (
	MaxPhases        = 64
	MaxMilestones    = 1000
	MaxSteps         = 1_000_000
	MaxCount         = 1_000_000
	maxIDLen         = 128
	maxTextLen       = 1024
	maxMessageLen    = 4096
	maxPipelineLen   = 256
	maxMilestoneName = 128
	// minEventLen is shorter than the shortest valid event,
	// {"type":"phase_started","build_id":"b","phase":"A"}.
	minEventLen = 40
)

// The patterns that build ids and phase names must match; checked by hand-written loops on
// the hot path (validBuildID, validPhase), kept here as the documentation of the rule.
const (
	buildIDPattern = `^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`
	phasePattern   = `^[A-Za-z][A-Za-z0-9_-]{0,63}$`
)

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// validBuildID reports whether id matches buildIDPattern.
func validBuildID(id string) bool {
	if len(id) == 0 || len(id) > 128 || !(isAlpha(id[0]) || isDigit(id[0])) {
		return false
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if !(isAlpha(c) || isDigit(c) || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// validPhase reports whether name matches phasePattern.
func validPhase(name string) bool {
	if len(name) == 0 || len(name) > 64 || !isAlpha(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !(isAlpha(c) || isDigit(c) || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Attributes describe where a build runs and what it builds.
type Attributes struct {
	Repository string `json:"repository,omitempty"`
	Branch     string `json:"branch,omitempty"`
	Revision   string `json:"revision,omitempty"`
	Worker     string `json:"worker,omitempty"`
	Host       string `json:"host,omitempty"`
}

// PhasePlan is one phase of a build's plan: a step count or named milestones, and an
// optional weight that overrides the processor's configured weight.
type PhasePlan struct {
	Name       string   `json:"name"`
	Steps      int64    `json:"steps,omitempty"`
	Milestones []string `json:"milestones,omitempty"`
	Weight     *float64 `json:"weight,omitempty"`
}

// Event is one decoded and validated build event.
type Event struct {
	ID         string
	Type       Type
	BuildID    string
	Time       time.Time // zero: the receiver's clock at apply time
	Pipeline   string
	Attributes Attributes
	Phases     []PhasePlan
	Phase      string
	Step       string
	Count      int64
	Message    string
	Result     string
}

// wireEvent is the JSON shape; types are strict, so a string count or a float step count is
// a decoding error that names the field.
type wireEvent struct {
	ID         string      `json:"id"`
	Type       string      `json:"type"`
	BuildID    string      `json:"build_id"`
	Time       string      `json:"time"`
	Pipeline   string      `json:"pipeline"`
	Attributes *Attributes `json:"attributes"`
	Phases     []PhasePlan `json:"phases"`
	Phase      string      `json:"phase"`
	Step       string      `json:"step"`
	Count      *int64      `json:"count"`
	Message    string      `json:"message"`
	Result     string      `json:"result"`
}

// Error is a client error: what is wrong, in which field, and in which line of a batch.
type Error struct {
	Status  int    // HTTP status the API answers with
	Message string // what is wrong
	Field   string // the JSON field, e.g. "phases[1].steps"; empty when it is not one field
	Index   int    // 0-based line of an NDJSON batch; -1 for a single event
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Index >= 0 {
		fmt.Fprintf(&b, "event %d: ", e.Index)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Status codes of client errors, as documented in the receiver's README.
const (
	StatusBadRequest = 400
	StatusNotFound   = 404
	StatusConflict   = 409
	StatusTooMany    = 429
)

func invalid(field, format string, args ...any) *Error {
	return &Error{Status: StatusBadRequest, Field: field, Message: fmt.Sprintf(format, args...), Index: -1}
}

// DecodeOne decodes a body holding exactly one JSON event object.
func DecodeOne(body []byte) (Event, error) {
	ev, err := decode(body)
	if err != nil {
		return Event{}, err
	}
	return ev, nil
}

// DecodeNDJSON decodes a batch with one JSON event object per line; blank lines are skipped.
// It appends to dst and stops at the first bad event, whose 0-based position the error gives.
// One decoder reads the whole batch: per-line decoders cost more than the events themselves.
func DecodeNDJSON(body []byte, dst []Event) ([]Event, error) {
	if !utf8.Valid(body) {
		return dst, invalid("", "body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	// One event per line: growing dst event by event would copy it about log2(n) times. No
	// valid event is shorter than minEventLen, which bounds what a body of newlines reserves.
	dst = slices.Grow(dst, min(bytes.Count(body, []byte{'\n'})+1, len(body)/minEventLen+1))
	var w wireEvent // reused: decoding into a fresh value per line costs an allocation each
	for index := 0; ; index++ {
		w = wireEvent{}
		err := dec.Decode(&w)
		if errors.Is(err, io.EOF) {
			if index == 0 {
				return dst, invalid("", "empty batch")
			}
			return dst, nil
		}
		if err == nil {
			var ev Event
			ev, err = validate(&w)
			if err == nil {
				dst = append(dst, ev)
				continue
			}
		} else {
			err = jsonError(err)
		}
		var e *Error
		if errors.As(err, &e) {
			e.Index = index
		}
		return dst, err
	}
}

func decode(raw []byte) (Event, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return Event{}, invalid("", "empty body")
	}
	if trimmed[0] != '{' {
		return Event{}, invalid("", "an event must be a JSON object")
	}
	if !utf8.Valid(raw) {
		return Event{}, invalid("", "body is not valid UTF-8")
	}
	var w wireEvent
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Event{}, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Event{}, invalid("", "trailing data after the event object")
	}
	return validate(&w)
}

// jsonError turns encoding/json's errors into API errors naming the field.
func jsonError(err error) *Error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return invalid("", "an event must be a JSON object")
		}
		return invalid(field, "must be %s, got JSON %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return invalid("", "malformed JSON at byte %d: %s", syntaxErr.Offset, syntaxErr.Error())
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return invalid("", "truncated JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return invalid(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "unknown field")
	default:
		return invalid("", "malformed JSON: %s", err.Error())
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int64":
		return "an integer"
	case "float64", "ptr":
		return "a number"
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct":
		return "an object"
	}
	return goKind
}

func validate(w *wireEvent) (Event, error) {
	ev := Event{ID: w.ID, BuildID: w.BuildID, Pipeline: w.Pipeline, Phase: w.Phase, Step: w.Step, Message: w.Message, Result: w.Result, Count: 1}
	if w.Type == "" {
		return ev, invalid("type", "is required")
	}
	t, ok := typeNames[w.Type]
	if !ok {
		return ev, invalid("type", "unknown event type %q", truncate(w.Type))
	}
	ev.Type = t
	if len(w.ID) > maxIDLen {
		return ev, invalid("id", "longer than %d characters", maxIDLen)
	}
	if w.BuildID == "" {
		return ev, invalid("build_id", "is required")
	}
	if !validBuildID(w.BuildID) {
		return ev, invalid("build_id", "must match %s", buildIDPattern)
	}
	if w.Time != "" {
		ts, err := time.Parse(time.RFC3339Nano, w.Time)
		if err != nil {
			return ev, invalid("time", "must be an RFC 3339 timestamp")
		}
		ev.Time = ts
	}
	if len(w.Message) > maxMessageLen {
		return ev, invalid("message", "longer than %d characters", maxMessageLen)
	}
	if w.Count != nil {
		if t != TypeStepCompleted {
			return ev, invalid("count", "only allowed on step_completed")
		}
		if *w.Count < 1 || *w.Count > MaxCount {
			return ev, invalid("count", "must be between 1 and %d", MaxCount)
		}
		ev.Count = *w.Count
	}
	switch t {
	case TypeBuildStarted:
		if err := validateStart(w, &ev); err != nil {
			return ev, err
		}
	case TypeBuildFinished:
		if !results[w.Result] {
			return ev, invalid("result", "must be one of success, failure, error, timeout, cancellation")
		}
	default:
		if w.Phase == "" {
			return ev, invalid("phase", "is required")
		}
		if !validPhase(w.Phase) {
			return ev, invalid("phase", "must match %s", phasePattern)
		}
		if t == TypeMilestoneReached && w.Step == "" {
			return ev, invalid("step", "is required: the milestone's name")
		}
		if len(w.Step) > maxMilestoneName {
			return ev, invalid("step", "longer than %d characters", maxMilestoneName)
		}
	}
	return ev, nil
}

func validateStart(w *wireEvent, ev *Event) error {
	if w.Pipeline == "" {
		return invalid("pipeline", "is required")
	}
	if len(w.Pipeline) > maxPipelineLen {
		return invalid("pipeline", "longer than %d characters", maxPipelineLen)
	}
	if w.Attributes != nil {
		a := w.Attributes
		for _, f := range []struct{ name, v string }{{"repository", a.Repository}, {"branch", a.Branch}, {"revision", a.Revision}, {"worker", a.Worker}, {"host", a.Host}} {
			if len(f.v) > maxTextLen {
				return invalid("attributes."+f.name, "longer than %d characters", maxTextLen)
			}
			if strings.ContainsAny(f.v, "\x00\r\n") {
				return invalid("attributes."+f.name, "must not contain control characters")
			}
		}
		ev.Attributes = *a
	}
	if len(w.Phases) > MaxPhases {
		return invalid("phases", "more than %d phases", MaxPhases)
	}
	seen := make(map[string]bool, len(w.Phases))
	for i, p := range w.Phases {
		field := fmt.Sprintf("phases[%d]", i)
		if !validPhase(p.Name) {
			return invalid(field+".name", "must match %s", phasePattern)
		}
		if seen[p.Name] {
			return invalid(field+".name", "phase %s appears twice", p.Name)
		}
		seen[p.Name] = true
		if p.Steps < 0 || p.Steps > MaxSteps {
			return invalid(field+".steps", "must be between 0 and %d", MaxSteps)
		}
		if len(p.Milestones) > 0 {
			if p.Steps != 0 {
				return invalid(field+".steps", "give either steps or milestones, not both")
			}
			if len(p.Milestones) > MaxMilestones {
				return invalid(field+".milestones", "more than %d milestones", MaxMilestones)
			}
			names := make(map[string]bool, len(p.Milestones))
			for j, m := range p.Milestones {
				if m == "" || len(m) > maxMilestoneName {
					return invalid(fmt.Sprintf("%s.milestones[%d]", field, j), "must be 1 to %d characters", maxMilestoneName)
				}
				if names[m] {
					return invalid(fmt.Sprintf("%s.milestones[%d]", field, j), "milestone %q appears twice", m)
				}
				names[m] = true
			}
		}
		if p.Weight != nil && (*p.Weight < 0 || math.IsNaN(*p.Weight) || math.IsInf(*p.Weight, 0)) {
			return invalid(field+".weight", "must be a non-negative number")
		}
	}
	ev.Phases = w.Phases
	if len(ev.Phases) == 0 {
		ev.Phases = make([]PhasePlan, len(DefaultPhases))
		for i, name := range DefaultPhases {
			ev.Phases[i] = PhasePlan{Name: name}
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
