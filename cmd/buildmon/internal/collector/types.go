// Package collector is the build client's side of the buildmon HTTP APIs: the events API of
// the buildmon receiver (POST /v1/events) and the status API of the checkpoint exporter
// (GET /v1/builds/{id}).
package collector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/printable"
)

// Event types of the events API.
const (
	BuildStarted     = "build_started"
	PhaseStarted     = "phase_started"
	StepCompleted    = "step_completed"
	MilestoneReached = "milestone_reached"
	PhaseCompleted   = "phase_completed"
	PhaseFailed      = "phase_failed"
	PhaseSkipped     = "phase_skipped"
	BuildFinished    = "build_finished"
)

// Event is one event object of the events API.
type Event struct {
	ID         string      `json:"id"`
	Type       string      `json:"type"`
	BuildID    string      `json:"build_id"`
	Time       string      `json:"time,omitempty"`
	Pipeline   string      `json:"pipeline,omitempty"`
	Attributes *Attributes `json:"attributes,omitempty"`
	Phases     []PhasePlan `json:"phases,omitempty"`
	Phase      string      `json:"phase,omitempty"`
	Step       string      `json:"step,omitempty"`
	Count      int         `json:"count,omitempty"`
	Message    string      `json:"message,omitempty"`
	Result     string      `json:"result,omitempty"`
}

// textField is one text of an event, named as the events API names it.
type textField struct{ name, value string }

// check returns an *InvalidEventError for the first text of ev that holds a control character
// or invalid UTF-8, with the field named as the events API names it.
func (ev Event) check() error {
	fields := []textField{
		{"id", ev.ID}, {"type", ev.Type}, {"build_id", ev.BuildID}, {"time", ev.Time},
		{"pipeline", ev.Pipeline}, {"phase", ev.Phase}, {"step", ev.Step},
		{"message", ev.Message}, {"result", ev.Result},
	}
	if a := ev.Attributes; a != nil {
		fields = append(fields,
			textField{"attributes.repository", a.Repository},
			textField{"attributes.branch", a.Branch},
			textField{"attributes.revision", a.Revision},
			textField{"attributes.worker", a.Worker},
			textField{"attributes.host", a.Host})
	}
	for i, p := range ev.Phases {
		fields = append(fields, textField{fmt.Sprintf("phases[%d].name", i), p.Name})
		for j, m := range p.Milestones {
			fields = append(fields, textField{fmt.Sprintf("phases[%d].milestones[%d]", i, j), m})
		}
	}
	for _, f := range fields {
		if err := printable.Check(f.value); err != nil {
			return &InvalidEventError{Field: f.name, Value: f.value, Err: err}
		}
	}
	return nil
}

// Attributes describe where a build runs; they become resource attributes of its telemetry.
type Attributes struct {
	Repository string `json:"repository,omitempty"`
	Branch     string `json:"branch,omitempty"`
	Revision   string `json:"revision,omitempty"`
	Worker     string `json:"worker,omitempty"`
	Host       string `json:"host,omitempty"`
}

// PhasePlan is one phase of a build's plan in build_started. Steps 0 means unknown.
type PhasePlan struct {
	Name       string   `json:"name"`
	Steps      int      `json:"steps,omitempty"`
	Milestones []string `json:"milestones,omitempty"`
	Weight     *float64 `json:"weight,omitempty"`
}

// Accepted is the body of a 202 answer of the events API.
type Accepted struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// APIError is the JSON error body of both APIs.
type APIError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	Index *int   `json:"index,omitempty"`
}

// Status is a build as the status API reports it (GET /v1/builds/{id}).
type Status struct {
	ID         string        `json:"id"`
	Pipeline   string        `json:"pipeline"`
	Host       string        `json:"host"`
	State      string        `json:"state"`
	Result     string        `json:"result"`
	Phase      string        `json:"phase"`
	Progress   float64       `json:"progress"`
	ETASeconds *float64      `json:"eta_seconds"`
	Paused     bool          `json:"paused"`
	Alerts     []Alert       `json:"alerts"`
	Phases     []PhaseStatus `json:"phases"`
	UpdatedAt  string        `json:"updated_at"`
}

// Alert is an alert scoped to a build or to its host.
type Alert struct {
	Rule  string `json:"rule"`
	Level string `json:"level"`
	State string `json:"state"`
	Value Value  `json:"value"`
}

// PhaseStatus is one phase of a build in the status API.
type PhaseStatus struct {
	Name            string  `json:"name"`
	State           string  `json:"state"`
	StepsTotal      int     `json:"steps_total"`
	StepsCompleted  int     `json:"steps_completed"`
	Progress        float64 `json:"progress"`
	DurationSeconds float64 `json:"duration_seconds"`
}

// Value is an alert value. The status API sends a number; a string or null is kept as well,
// so that a change on the server side degrades the display rather than the client.
type Value struct {
	text   string
	number float64
	isNum  bool
}

// NumberValue returns a numeric Value.
func NumberValue(f float64) Value { return Value{number: f, isNum: true} }

// TextValue returns a Value the status API sent as a string.
func TextValue(s string) Value { return Value{text: s} }

// IsNumber reports whether the status API sent v as a number.
func (v Value) IsNumber() bool { return v.isNum }

// UnmarshalJSON implements json.Unmarshaler.
func (v *Value) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*v = Value{}
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		return json.Unmarshal(b, &v.text)
	default:
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			v.text = string(b)
			return nil
		}
		v.number, v.isNum = f, true
		return nil
	}
}

// MarshalJSON implements json.Marshaler.
func (v Value) MarshalJSON() ([]byte, error) {
	switch {
	case v.isNum:
		return []byte(strconv.FormatFloat(v.number, 'g', -1, 64)), nil
	case v.text == "":
		return []byte("null"), nil
	default:
		return json.Marshal(v.text)
	}
}

// String formats numbers with at most two decimals.
func (v Value) String() string {
	if !v.isNum {
		return v.text
	}
	s := strconv.FormatFloat(v.number, 'f', 2, 64)
	for len(s) > 0 && s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}

// PauseReason names what pauses the build, e.g. "CRITICAL alert cpu_usage (97.5)": the first
// firing CRITICAL alert, else the first CRITICAL alert in any state; "" when none is listed.
func (s Status) PauseReason() string {
	var pick *Alert
	for i := range s.Alerts {
		a := &s.Alerts[i]
		if !strings.EqualFold(a.Level, "CRITICAL") {
			continue
		}
		if strings.EqualFold(a.State, "firing") {
			pick = a
			break
		}
		if pick == nil {
			pick = a
		}
	}
	if pick == nil {
		return ""
	}
	if v := pick.Value.String(); v != "" {
		return fmt.Sprintf("CRITICAL alert %s (%s)", pick.Rule, v)
	}
	return "CRITICAL alert " + pick.Rule
}
