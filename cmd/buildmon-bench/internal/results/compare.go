package results

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"

	"github.com/buildmon/buildmon/cmd/buildmon-bench/internal/stats"
)

// Delta is the change of one measure between two runs.
type Delta struct {
	Key, Name, Unit string
	Item            int
	Old, New        float64
	Ratio           float64 // new / old
	P               float64 // Mann-Whitney p-value of the samples; NaN when too few
	// Verdict is "better", "worse" or "~" (no significant change at alpha 0.05, or too few
	// samples and under 5% apart).
	Verdict string
}

// Compare pairs the measures of two runs by key, in the order of the new run; measures found in
// only one of them are listed in onlyOld / onlyNew.
func Compare(old, cur *Report) (deltas []Delta, onlyOld, onlyNew []string) {
	oldByKey := map[string]Measure{}
	for _, m := range old.Measures {
		oldByKey[m.Key] = m
	}
	seen := map[string]bool{}
	for _, n := range cur.Measures {
		o, ok := oldByKey[n.Key]
		if !ok {
			onlyNew = append(onlyNew, n.Key)
			continue
		}
		seen[n.Key] = true
		d := Delta{Key: n.Key, Name: n.Name, Unit: n.Unit, Item: n.Item, Old: o.Median, New: n.Median,
			Ratio: stats.Ratio(n.Median, o.Median), P: stats.MannWhitneyP(o.Samples, n.Samples)}
		d.Verdict = verdict(d, n.Better)
		deltas = append(deltas, d)
	}
	for _, o := range old.Measures {
		if !seen[o.Key] {
			onlyOld = append(onlyOld, o.Key)
		}
	}
	return deltas, onlyOld, onlyNew
}

func verdict(d Delta, better string) string {
	if math.IsNaN(d.Ratio) || d.Ratio == 1 {
		return "~"
	}
	if !math.IsNaN(d.P) {
		if d.P > 0.05 {
			return "~"
		}
	} else if math.Abs(d.Ratio-1) < 0.05 {
		// Without samples enough for a test, only a change of 5% or more is reported.
		return "~"
	}
	up := d.Ratio > 1
	if (better == "higher") == up {
		return "better"
	}
	return "worse"
}

// PrintCompare writes a benchstat-style table: old and new median, new/old, p-value, verdict.
func PrintCompare(w io.Writer, old, cur *Report) error {
	deltas, onlyOld, onlyNew := Compare(old, cur)
	fmt.Fprintf(w, "old: %s %s (%d CPUs)\nnew: %s %s (%d CPUs)\n\n",
		old.Date, old.Machine.GitRevision, old.Machine.NumCPU, cur.Date, cur.Machine.GitRevision, cur.Machine.NumCPU)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "item\tmeasure\told\tnew\tnew/old\tdelta\tp\t")
	for _, d := range deltas {
		ratio, delta, p := "n/a", "n/a", ""
		if !math.IsNaN(d.Ratio) {
			ratio = fmt.Sprintf("%.3f", d.Ratio)
			delta = fmt.Sprintf("%+.1f%%", (d.Ratio-1)*100)
		}
		if !math.IsNaN(d.P) {
			p = fmt.Sprintf("p=%.3f", d.P)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Item, d.Name, Format(d.Old, d.Unit), Format(d.New, d.Unit), ratio, delta, p, d.Verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, k := range onlyOld {
		fmt.Fprintf(w, "  only in old: %s\n", k)
	}
	for _, k := range onlyNew {
		fmt.Fprintf(w, "  only in new: %s\n", k)
	}
	return nil
}
