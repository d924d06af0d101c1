// Package collector is the build client's side of the buildmon HTTP APIs: the events API of
// the buildmon receiver (POST /v1/events) and the status API of the checkpoint exporter
// (GET /v1/builds/{id}). Their JSON is internal/wire's.
package collector

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/printable"
	"github.com/buildmon/buildmon/internal/wire"
)

// StepCount is the count of a step_completed event that completes n steps: absent (one step)
// for n < 1, as the client never sends a count the events API refuses.
func StepCount(n int) *int64 {
	if n < 1 {
		return nil
	}
	c := int64(n)
	return &c
}

// textField is one text of an event, named as the events API names it.
type textField struct{ name, value string }

// checkEvent returns an *InvalidEventError for the first text of ev that holds a control
// character or invalid UTF-8, with the field named as the events API names it.
func checkEvent(ev wire.Event) error {
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

// FormatValue formats an alert's value with at most two decimals.
func FormatValue(v float64) string {
	s := strconv.FormatFloat(v, 'f', 2, 64)
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
func PauseReason(st wire.BuildStatus) string {
	var pick *wire.AlertStatus
	for i := range st.Alerts {
		a := &st.Alerts[i]
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
	return fmt.Sprintf("CRITICAL alert %s (%s)", pick.Rule, FormatValue(pick.Value))
}
