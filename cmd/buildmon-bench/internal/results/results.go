// Package results holds the outcome of a bench run — measures with their samples, baseline,
// ratio and target — prints it as one table, writes and reads it as JSON, and compares two
// runs measure by measure.
package results // import "github.com/buildmon/buildmon/cmd/buildmon-bench/internal/results"

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/stats"
)

// Target is what a measure must reach.
type Target struct {
	// On is what the limit applies to: "value" (the median) or "ratio" (median / baseline).
	On string `json:"on"`
	// Op is "<=" or ">=".
	Op    string  `json:"op"`
	Limit float64 `json:"limit"`
}

// String reads like "<= 3x" or ">= 20,000 req/s".
func (t Target) String(unit string) string {
	if t.On == "ratio" {
		return t.Op + " " + trimFloat(t.Limit) + "x"
	}
	return t.Op + " " + Format(t.Limit, unit)
}

// Met reports whether v (the value or the ratio, as t.On says) meets the target.
func (t Target) Met(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	switch t.Op {
	case "<=":
		return v <= t.Limit
	case ">=":
		return v >= t.Limit
	}
	return false
}

// Measure is one row of the table.
type Measure struct {
	Item    int       `json:"item"`    // the item number, 1..7
	Key     string    `json:"key"`     // stable identifier, used to compare runs
	Name    string    `json:"measure"` // what is measured, for people
	Unit    string    `json:"unit"`
	Better  string    `json:"better"` // "lower" or "higher"
	Median  float64   `json:"median"`
	Samples []float64 `json:"samples,omitempty"`
	// Baseline is the same quantity measured for the floor or reference in the same run.
	BaselineName    string    `json:"baseline_name,omitempty"`
	Baseline        *float64  `json:"baseline,omitempty"`
	BaselineSamples []float64 `json:"baseline_samples,omitempty"`
	Ratio           *float64  `json:"ratio,omitempty"`
	Target          *Target   `json:"target,omitempty"`
	Pass            *bool     `json:"pass,omitempty"`
	Note            string    `json:"note,omitempty"`
}

// New makes a measure from its samples: the median, and the ratio to the baseline's median
// when baseline samples are given, and whether the target is met.
func New(item int, key, name, unit, better string, samples []float64) Measure {
	return Measure{Item: item, Key: key, Name: name, Unit: unit, Better: better, Samples: samples, Median: stats.Median(samples)}
}

// WithBaseline sets the baseline and the ratio median / baseline median.
func (m Measure) WithBaseline(name string, samples []float64) Measure {
	if len(samples) == 0 {
		return m
	}
	b := stats.Median(samples)
	m.BaselineName, m.Baseline, m.BaselineSamples = name, &b, samples
	if r := stats.Ratio(m.Median, b); !math.IsNaN(r) {
		m.Ratio = &r
	}
	return m
}

// WithTarget sets the target and evaluates it.
func (m Measure) WithTarget(on, op string, limit float64) Measure {
	t := &Target{On: on, Op: op, Limit: limit}
	m.Target = t
	v := m.Median
	if on == "ratio" {
		v = math.NaN()
		if m.Ratio != nil {
			v = *m.Ratio
		}
	}
	pass := t.Met(v)
	m.Pass = &pass
	return m
}

// WithNote adds a remark shown under the table.
func (m Measure) WithNote(note string) Measure {
	m.Note = note
	return m
}

// Machine describes where a run happened.
type Machine struct {
	NumCPU      int    `json:"nproc"`
	GoVersion   string `json:"go_version"`
	GOOS        string `json:"goos"`
	GOARCH      string `json:"goarch"`
	CPU         string `json:"cpu,omitempty"`
	Kernel      string `json:"kernel,omitempty"`
	GitRevision string `json:"git_revision,omitempty"`
	GitDirty    bool   `json:"git_dirty,omitempty"`
}

// Report is a whole bench run.
type Report struct {
	Date     string            `json:"date"`
	Machine  Machine           `json:"machine"`
	Settings map[string]string `json:"settings,omitempty"`
	Measures []Measure         `json:"measures"`
	// Errors are the parts of the run that could not be measured, and why.
	Errors []string `json:"errors,omitempty"`
}

// WriteFile writes the report as indented JSON.
func (r *Report) WriteFile(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// ReadFile reads a report written by WriteFile.
func ReadFile(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	return &r, nil
}

// PrintTable writes the measures as one table, followed by notes and errors.
func (r *Report) PrintTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "item\tmeasure\tmedian\tbaseline\tratio\ttarget\tresult")
	for _, m := range r.Measures {
		baseline, ratio, target, result := "-", "-", "-", "-"
		if m.Baseline != nil {
			baseline = Format(*m.Baseline, m.Unit)
			if m.BaselineName != "" {
				baseline += " (" + m.BaselineName + ")"
			}
		}
		if m.Ratio != nil {
			ratio = fmt.Sprintf("%.2fx", *m.Ratio)
		}
		if m.Target != nil {
			target = m.Target.String(m.Unit)
		}
		if m.Pass != nil {
			result = "pass"
			if !*m.Pass {
				result = "MISS"
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Item, m.Name, Format(m.Median, m.Unit), baseline, ratio, target, result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range r.Measures {
		if m.Note != "" {
			fmt.Fprintf(w, "  [%d] %s: %s\n", m.Item, m.Name, m.Note)
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  not measured: %s\n", e)
	}
	return nil
}

// Misses lists the measures whose target was not met.
func (r *Report) Misses() []Measure {
	var out []Measure
	for _, m := range r.Measures {
		if m.Pass != nil && !*m.Pass {
			out = append(out, m)
		}
	}
	return out
}

// Format prints v in unit for people: durations for "ns", binary prefixes for bytes, digit
// grouping for large counts.
func Format(v float64, unit string) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	switch unit {
	case "ns":
		return formatDuration(v)
	case "B":
		return formatBytes(v)
	case "B/s":
		return formatBytes(v) + "/s"
	case "%":
		return trimFloat(round3(v)) + "%"
	case "":
		return formatNumber(v)
	}
	return formatNumber(v) + " " + unit
}

func formatDuration(ns float64) string {
	abs := math.Abs(ns)
	switch {
	case abs >= 1e9:
		return trimFloat(round3(ns/1e9)) + " s"
	case abs >= 1e6:
		return trimFloat(round3(ns/1e6)) + " ms"
	case abs >= 1e3:
		return trimFloat(round3(ns/1e3)) + " µs"
	}
	return trimFloat(round3(ns)) + " ns"
}

func formatBytes(b float64) string {
	abs := math.Abs(b)
	switch {
	case abs >= 1<<30:
		return trimFloat(round3(b/(1<<30))) + " GiB"
	case abs >= 1<<20:
		return trimFloat(round3(b/(1<<20))) + " MiB"
	case abs >= 1<<10:
		return trimFloat(round3(b/(1<<10))) + " KiB"
	}
	return trimFloat(round3(b)) + " B"
}

// formatNumber groups thousands of large values and keeps three significant digits of small.
func formatNumber(v float64) string {
	if math.Abs(v) >= 1000 {
		s := strconv.FormatInt(int64(math.Round(v)), 10)
		neg := s[0] == '-'
		if neg {
			s = s[1:]
		}
		var out []byte
		for i := range len(s) {
			if i > 0 && (len(s)-i)%3 == 0 {
				out = append(out, ',')
			}
			out = append(out, s[i])
		}
		if neg {
			return "-" + string(out)
		}
		return string(out)
	}
	return trimFloat(round3(v))
}

// round3 keeps three significant digits.
func round3(v float64) float64 {
	if v == 0 || math.IsInf(v, 0) {
		return v
	}
	mag := math.Pow(10, 2-math.Floor(math.Log10(math.Abs(v))))
	return math.Round(v*mag) / mag
}

func trimFloat(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}
