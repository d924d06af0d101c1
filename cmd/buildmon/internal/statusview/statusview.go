// Package statusview renders a build's status for the terminal: a progress bar, the current
// phase, the ETA, the pause state, the phases and the alerts.
package statusview

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/collector"
	"github.com/buildmon/buildmon/cmd/buildmon/internal/printable"
	"github.com/buildmon/buildmon/internal/wire"
)

// BarWidth is the number of cells between the brackets of the progress bar.
const BarWidth = 40

// Render writes st for a terminal; now is used for "updated … ago". Every text of st is shown
// as printable.String writes it: what the status API sends cannot act on the terminal.
func Render(w io.Writer, st wire.BuildStatus, now time.Time) error {
	st = escaped(st)
	var b strings.Builder
	fmt.Fprintf(&b, "build %s", orDash(st.ID))
	if st.Pipeline != "" {
		fmt.Fprintf(&b, "  pipeline %s", st.Pipeline)
	}
	if st.Host != "" {
		fmt.Fprintf(&b, "  host %s", st.Host)
	}
	b.WriteString("\n")

	state := orDash(st.State)
	if st.Result != "" {
		state += " (" + st.Result + ")"
	}
	fmt.Fprintf(&b, "state %s", state)
	if st.Phase != "" && !finished(st) {
		fmt.Fprintf(&b, "  phase %s", st.Phase)
	}
	if u := updated(st.UpdatedAt, now); u != "" {
		fmt.Fprintf(&b, "  updated %s", u)
	}
	b.WriteString("\n")

	fmt.Fprintf(&b, "%s %3d%%", Bar(st.Progress, BarWidth), percent(st.Progress))
	if !finished(st) {
		fmt.Fprintf(&b, "  ETA %s", eta(st.ETASeconds))
		if st.ETASeconds != nil && knownETASource(st.ETASource) {
			fmt.Fprintf(&b, " (%s)", st.ETASource)
		}
	}
	b.WriteString("\n")
	if st.Paused {
		reason := collector.PauseReason(st)
		if reason == "" {
			reason = "the collector"
		}
		fmt.Fprintf(&b, "PAUSED by %s\n", reason)
	}

	if len(st.Phases) > 0 {
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		// AlignRight needs every cell terminated; the name and state columns are padded by hand.
		nameW, stateW := len("PHASE"), len("STATE")
		for _, p := range st.Phases {
			nameW, stateW = max(nameW, len(p.Name)), max(stateW, len(p.State))
		}
		fmt.Fprintf(tw, "%-*s  %-*s\tSTEPS\tPROGRESS\tDURATION\t\n", nameW, "PHASE", stateW, "STATE")
		for _, p := range st.Phases {
			fmt.Fprintf(tw, "%-*s  %-*s\t%s\t%d%%\t%s\t\n", nameW, p.Name, stateW, p.State,
				steps(p), percent(p.Progress), phaseDuration(p))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if len(st.Alerts) > 0 {
		b.WriteString("\nALERTS\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, a := range st.Alerts {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", a.Level, a.State, a.Rule, collector.FormatValue(a.Value))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	// Trailing spaces from tabwriter's terminated cells are noise in CI logs.
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	_, err := io.WriteString(w, strings.Join(lines, "\n"))
	return err
}

// escaped returns a copy of st with every text made printable.
func escaped(st wire.BuildStatus) wire.BuildStatus {
	e := printable.String
	st.ID, st.Pipeline, st.Host, st.State, st.Result, st.Phase, st.UpdatedAt =
		e(st.ID), e(st.Pipeline), e(st.Host), e(st.State), e(st.Result), e(st.Phase), e(st.UpdatedAt)
	alerts := make([]wire.AlertStatus, len(st.Alerts))
	for i, a := range st.Alerts {
		a.Rule, a.Level, a.State = e(a.Rule), e(a.Level), e(a.State)
		alerts[i] = a
	}
	st.Alerts = alerts
	phases := make([]wire.PhaseStatus, len(st.Phases))
	for i, p := range st.Phases {
		p.Name, p.State = e(p.Name), e(p.State)
		phases[i] = p
	}
	st.Phases = phases
	return st
}

// Bar draws progress (0..1) as [####----] with width cells.
func Bar(progress float64, width int) string {
	filled := int(math.Floor(clamp(progress) * float64(width)))
	return "[" + strings.Repeat("#", filled) + strings.Repeat("-", width-filled) + "]"
}

// percent rounds down, so that 100% means done.
func percent(p float64) int {
	return int(math.Floor(clamp(p)*100 + 1e-9))
}

func clamp(p float64) float64 {
	switch {
	case math.IsNaN(p) || p < 0:
		return 0
	case p > 1:
		return 1
	}
	return p
}

func finished(st wire.BuildStatus) bool {
	return strings.EqualFold(st.State, "finished")
}

func eta(secs *float64) string {
	if secs == nil || math.IsNaN(*secs) || *secs < 0 {
		return "unknown"
	}
	return Duration(*secs)
}

// Duration formats seconds as 1h2m3s, rounded to the second.
func Duration(secs float64) string {
	return (time.Duration(math.Round(secs)) * time.Second).String()
}

func steps(p wire.PhaseStatus) string {
	if p.StepsTotal <= 0 {
		return fmt.Sprintf("%d/?", p.StepsCompleted)
	}
	return fmt.Sprintf("%d/%d", p.StepsCompleted, p.StepsTotal)
}

func phaseDuration(p wire.PhaseStatus) string {
	if p.DurationSeconds <= 0 && (p.State == "pending" || p.State == "skipped") {
		return "-"
	}
	return Duration(p.DurationSeconds)
}

func updated(ts string, now time.Time) string {
	if ts == "" {
		return ""
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return ts
	}
	d := now.Sub(t)
	if d < time.Second {
		return "just now"
	}
	return Duration(d.Seconds()) + " ago"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// knownETASource reports whether s is one of the status API's ETA sources; anything else is
// not shown (it would have to be escaped, and says nothing).
func knownETASource(s string) bool {
	return s == wire.ETASourceHistory || s == wire.ETASourceRate || s == wire.ETASourceBlend
}
