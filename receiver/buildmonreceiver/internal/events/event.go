// Package events decodes and validates the build events of the buildmon receiver's HTTP API
// and keeps the registry of builds they describe. It has no collector types in its API.
package events // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/buildmon/buildmon/internal/wire"
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
	wire.EventBuildStarted:     TypeBuildStarted,
	wire.EventPhaseStarted:     TypePhaseStarted,
	wire.EventStepCompleted:    TypeStepCompleted,
	wire.EventMilestoneReached: TypeMilestoneReached,
	wire.EventPhaseCompleted:   TypePhaseCompleted,
	wire.EventPhaseFailed:      TypePhaseFailed,
	wire.EventPhaseSkipped:     TypePhaseSkipped,
	wire.EventBuildFinished:    TypeBuildFinished,
}

// Lifecycle reports whether events of type t move a build or a phase from one state to the
// next (wire.LifecycleEventTypes): everything but step_completed and milestone_reached.
func (t Type) Lifecycle() bool {
	return t != TypeStepCompleted && t != TypeMilestoneReached && t != TypeUnknown
}

func (t Type) String() string {
	for name, v := range typeNames {
		if v == t {
			return name
		}
	}
	return "unknown"
}

// results are the results a finished build may have (cicd.pipeline.result values).
var results = func() map[string]bool {
	m := make(map[string]bool, len(wire.Results))
	for _, r := range wire.Results {
		m[r] = true
	}
	return m
}()

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

// Attributes describe where a build runs and what it builds (the events API's attributes).
type Attributes = wire.Attributes

// PhasePlan is one phase of a build's plan: a step count or named milestones, and an
// optional weight that overrides the processor's configured weight.
type PhasePlan = wire.PhasePlan

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

// The JSON shape of an event is wire.Event, decoded strictly: its types are strict, so a
// string count or a float step count is a decoding error that names the field, and the
// omitempty of its tags, which only the build client's encoding uses, has no effect here.

// DecodeOptions are what decoding checks an event's time against.
type DecodeOptions struct {
	// Now is the collector's clock when the request arrived.
	Now time.Time
	// MaxClockSkew bounds how far a client's time may lie from Now, into the future or the
	// past; 0 sets no bound besides the range every time must be in (1970 to 2261).
	MaxClockSkew time.Duration
}

// The range of client times, inclusive: what every part of the system can hold. pdata and
// time.Time.UnixNano count nanoseconds since 1970 in 64 bits (int64 runs out in April 2262),
// durations between two times of the range fit time.Duration, and JSON can write them.
var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Date(2261, 12, 31, 23, 59, 59, 999_999_999, time.UTC)
)

// maxZoneOffset is exclusive: RFC 3339 offsets are at most ±23:59, and time.Time.MarshalJSON
// fails on larger ones although time.Parse accepts them.
const maxZoneOffset = 24 * 60 * 60

// jsonOptions make the parser strict, so that no other parser can read a different event
// from the same bytes: duplicate names are errors (jsontext's default), names match
// case-sensitively (json v2's default), unknown names are errors. nullOptions add that null
// is an error; they cost a function call per value, so they are used only for input that
// holds the bytes "null" at all (the literal cannot be escaped, so other input has none).
var (
	jsonOptions = json.RejectUnknownMembers(true)
	nullOptions = json.JoinOptions(
		jsonOptions,
		// One function per Go type of the wire format (one for the interface any would cover
		// all, at three times the cost of decoding); TestNullIsRejectedEverywhere checks that
		// every field is covered.
		json.WithUnmarshalers(json.JoinUnmarshalers(
			rejectNull[*wire.Event](),
			rejectNull[*string](),
			rejectNull[**int64](),
			rejectNull[**Attributes](),
			rejectNull[*[]PhasePlan](),
			rejectNull[*PhasePlan](),
			rejectNull[*int64](),
			rejectNull[*[]string](),
			rejectNull[**float64](),
		)),
	)
)

var nullLiteral = []byte("null")

func optionsFor(input []byte) json.Options {
	if bytes.Contains(input, nullLiteral) {
		return nullOptions
	}
	return jsonOptions
}

// errNull marks a JSON null: no field of an event takes null, and absent is not the same.
var errNull = errors.New("must not be null")

// rejectNull returns an unmarshaler that runs before each value of type T is decoded: it
// rejects null and declines anything else, which is then decoded as usual.
func rejectNull[T any]() *json.Unmarshalers {
	return json.UnmarshalFromFunc(func(dec *jsontext.Decoder, _ T) error {
		if dec.PeekKind() == 'n' {
			return errNull
		}
		return errors.ErrUnsupported
	})
}

// bodyDecoder reads the event objects of one body; pooled, as one is a few hundred bytes.
type bodyDecoder struct {
	buf bytes.Buffer
	dec jsontext.Decoder
}

var bodyDecoders = sync.Pool{New: func() any { return new(bodyDecoder) }}

// reset makes d read body, which it aliases until the next reset.
func (d *bodyDecoder) reset(body []byte) {
	d.buf = *bytes.NewBuffer(body)
	d.dec.Reset(&d.buf, optionsFor(body))
}

// next decodes the next JSON value into w; end is the offset in the body right after it.
func (d *bodyDecoder) next(w *wire.Event) (end int, err *Error) {
	if err := json.UnmarshalDecode(&d.dec, w); err != nil {
		return 0, jsonError(err)
	}
	return int(d.dec.InputOffset()), nil
}

const msgTruncated = "truncated JSON"

// DecodeOne decodes a body holding exactly one JSON event object.
func DecodeOne(body []byte, opts DecodeOptions) (Event, error) {
	trimmed := trimJSONSpace(body)
	if len(trimmed) == 0 {
		return Event{}, invalid("", "empty body")
	}
	if trimmed[0] != '{' {
		return Event{}, invalid("", "an event must be a JSON object")
	}
	if !utf8.Valid(body) {
		return Event{}, invalid("", "body is not valid UTF-8")
	}
	d := bodyDecoders.Get().(*bodyDecoder)
	defer bodyDecoders.Put(d)
	d.reset(body)
	var w wire.Event
	end, err := d.next(&w)
	if err != nil {
		return Event{}, err
	}
	if len(trimJSONSpace(body[end:])) > 0 {
		return Event{}, invalid("", "trailing data after the event object: the body holds exactly one")
	}
	return validate(&w, &opts)
}

// DecodeNDJSON decodes a batch with exactly one JSON event object on each line; blank lines
// are skipped. It appends to dst and stops at the first bad event, whose 0-based position
// (blank lines not counted) the error gives. One decoder reads the whole batch: per-line
// decoders cost more than the events themselves.
func DecodeNDJSON(body []byte, dst []Event, opts DecodeOptions) ([]Event, error) {
	if !utf8.Valid(body) {
		return dst, invalid("", "body is not valid UTF-8")
	}
	// One event per line: growing dst event by event would copy it about log2(n) times. No
	// valid event is shorter than minEventLen, which bounds what a body of newlines reserves.
	dst = slices.Grow(dst, min(bytes.Count(body, []byte{'\n'})+1, len(body)/minEventLen+1))
	d := bodyDecoders.Get().(*bodyDecoder)
	defer bodyDecoders.Put(d)
	d.reset(body)
	var w wire.Event // reused: decoding into a fresh value per line costs an allocation each
	index := 0
	for pos := 0; pos < len(body); {
		lineEnd := len(body)
		if i := bytes.IndexByte(body[pos:], '\n'); i >= 0 {
			lineEnd = pos + i
		}
		if len(trimJSONSpace(body[pos:lineEnd])) == 0 {
			pos = lineEnd + 1
			continue
		}
		w = wire.Event{}
		var err error
		end, e := d.next(&w)
		switch {
		case e != nil:
			if e.Message == msgTruncated {
				e.Message += " (each line of a batch holds one whole event object)"
			}
			err = e
		case end > lineEnd:
			err = invalid("", "an event object spread over several lines: each line of a batch holds one whole event object")
		case len(trimJSONSpace(body[end:lineEnd])) > 0:
			err = invalid("", "trailing data after the event object: each line of a batch holds exactly one")
		default:
			var ev Event
			if ev, err = validate(&w, &opts); err == nil {
				dst = append(dst, ev)
				index++
				pos = lineEnd + 1
				continue
			}
		}
		var ee *Error
		if errors.As(err, &ee) {
			ee.Index = index
		}
		return dst, err
	}
	if index == 0 {
		return dst, invalid("", "empty batch")
	}
	return dst, nil
}

// trimJSONSpace trims what JSON counts as whitespace, and nothing else: a parser that also
// skipped other white space (U+00A0, U+0085) would accept what a strict one rejects.
func trimJSONSpace(b []byte) []byte {
	return bytes.Trim(b, " \t\r\n")
}

// jsonError turns the JSON library's errors into API errors naming the field.
func jsonError(err error) *Error {
	var semErr *json.SemanticError
	var synErr *jsontext.SyntacticError
	switch {
	case errors.As(err, &synErr):
		field := fieldOf(synErr.JSONPointer)
		switch {
		case errors.Is(err, jsontext.ErrDuplicateName):
			return invalid(field, "appears twice in one object")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return invalid("", msgTruncated)
		}
		return invalid("", "malformed JSON at byte %d: %s", synErr.ByteOffset, unwrapMessage(synErr.Err))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return invalid("", msgTruncated)
	case errors.As(err, &semErr):
		field := fieldOf(semErr.JSONPointer)
		switch {
		case field == "":
			return invalid("", "an event must be a JSON object")
		case errors.Is(err, json.ErrUnknownName):
			if known := knownName(semErr.JSONPointer); known != "" {
				return invalid(field, "unknown field (names are case-sensitive: %s)", known)
			}
			return invalid(field, "unknown field")
		case errors.Is(err, errNull):
			return invalid(field, "must not be null; leave the field out instead")
		case semErr.GoType != nil:
			// Only a number is quoted back: its text cannot hold control characters.
			if semErr.JSONKind == '0' && len(semErr.JSONValue) <= 32 {
				return invalid(field, "must be %s, got JSON %s %s", jsonKind(semErr.GoType), kindName(semErr.JSONKind), semErr.JSONValue)
			}
			return invalid(field, "must be %s, got JSON %s", jsonKind(semErr.GoType), kindName(semErr.JSONKind))
		}
		return invalid(field, "%s", unwrapMessage(semErr.Err))
	default:
		return invalid("", "malformed JSON: %s", err.Error())
	}
}

func unwrapMessage(err error) string {
	if err == nil {
		return "invalid value"
	}
	return err.Error()
}

// fieldOf names the field a JSON pointer points to as the API's errors do: phases[1].steps.
// An unknown name with control characters in it is quoted, as it is echoed to the client.
func fieldOf(p jsontext.Pointer) string {
	var b strings.Builder
	prev := ""
	for tok := range p.Tokens() {
		if wire.ControlAt(tok, false) >= 0 {
			tok = strconv.QuoteToASCII(tok)
		}
		if (prev == "phases" || prev == "milestones") && isIndex(tok) {
			b.WriteString("[" + tok + "]")
		} else {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(tok)
		}
		prev = tok
	}
	return truncate(b.String())
}

func isIndex(tok string) bool {
	if tok == "" {
		return false
	}
	for i := 0; i < len(tok); i++ {
		if !isDigit(tok[i]) {
			return false
		}
	}
	return true
}

// knownName returns the field an unknown name differs from only by case, if any.
func knownName(p jsontext.Pointer) string {
	name := p.LastToken()
	var names []string
	switch p.Parent().LastToken() {
	case "":
		names = wireNames
	case "attributes":
		names = attributeNames
	default:
		names = phaseNames
	}
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return n
		}
	}
	return ""
}

var (
	wireNames      = []string{"id", "type", "build_id", "time", "pipeline", "attributes", "phases", "phase", "step", "count", "message", "result"}
	attributeNames = []string{"repository", "branch", "revision", "worker", "host"}
	phaseNames     = []string{"name", "steps", "milestones", "weight"}
)

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "an array"
	case reflect.Struct:
		return "an object"
	}
	return t.Kind().String()
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case '{':
		return "object"
	case '[':
		return "array"
	case 'n':
		return "null"
	}
	return "value"
}

func validate(w *wire.Event, opts *DecodeOptions) (Event, error) {
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
	if err := noControl("id", w.ID, false); err != nil {
		return ev, err
	}
	if w.BuildID == "" {
		return ev, invalid("build_id", "is required")
	}
	if !validBuildID(w.BuildID) {
		return ev, invalid("build_id", "must match %s", buildIDPattern)
	}
	if w.Time != "" {
		ts, err := parseTime(w.Time, opts)
		if err != nil {
			return ev, err
		}
		ev.Time = ts
	}
	if len(w.Message) > maxMessageLen {
		return ev, invalid("message", "longer than %d characters", maxMessageLen)
	}
	if err := noControl("message", w.Message, true); err != nil {
		return ev, err
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
		if err := noControl("step", w.Step, false); err != nil {
			return ev, err
		}
	}
	return ev, nil
}

func validateStart(w *wire.Event, ev *Event) error {
	if w.Pipeline == "" {
		return invalid("pipeline", "is required")
	}
	if len(w.Pipeline) > maxPipelineLen {
		return invalid("pipeline", "longer than %d characters", maxPipelineLen)
	}
	if err := noControl("pipeline", w.Pipeline, false); err != nil {
		return err
	}
	if w.Attributes != nil {
		a := w.Attributes
		for _, f := range []struct{ name, v string }{{"repository", a.Repository}, {"branch", a.Branch}, {"revision", a.Revision}, {"worker", a.Worker}, {"host", a.Host}} {
			if len(f.v) > maxTextLen {
				return invalid("attributes."+f.name, "longer than %d characters", maxTextLen)
			}
			if err := noControl("attributes."+f.name, f.v, false); err != nil {
				return err
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
				if err := noControl(fmt.Sprintf("%s.milestones[%d]", field, j), m, false); err != nil {
					return err
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

// parseTime parses an event's time and checks that the whole system can hold it: an offset
// within ±23:59, inside minTime to maxTime, and within opts.MaxClockSkew of opts.Now.
func parseTime(s string, opts *DecodeOptions) (time.Time, error) {
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalid("time", "must be an RFC 3339 timestamp")
	}
	if _, offset := ts.Zone(); offset <= -maxZoneOffset || offset >= maxZoneOffset {
		return time.Time{}, invalid("time", "UTC offset must be within ±23:59")
	}
	if ts.Before(minTime) || ts.After(maxTime) {
		return time.Time{}, invalid("time", "must be between %s and %s", minTime.Format(time.RFC3339), maxTime.Format(time.RFC3339))
	}
	if opts.MaxClockSkew > 0 {
		if d := ts.Sub(opts.Now); d > opts.MaxClockSkew || d < -opts.MaxClockSkew {
			return time.Time{}, invalid("time", "more than %s from the collector's clock (max_clock_skew)", opts.MaxClockSkew)
		}
	}
	return ts, nil
}

// noControl is the error for a control character in field, or nil when there is none.
func noControl(field, s string, text bool) *Error {
	i := wire.ControlAt(s, text)
	if i < 0 {
		return nil
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	if text {
		return invalid(field, "must not contain control characters (only tab and newline are allowed): %U at byte %d", r, i)
	}
	return invalid(field, "must not contain control characters: %U at byte %d", r, i)
}
