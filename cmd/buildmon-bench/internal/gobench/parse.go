// Package gobench reads the text output of `go test -bench` (the standard benchmark format,
// including custom units reported with testing.B.ReportMetric) and groups the samples of
// repeated runs (-count) by package, benchmark and unit.
package gobench // import "github.com/buildmon/buildmon/cmd/buildmon-bench/internal/gobench"

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Result is one line of benchmark output: one run of one benchmark.
type Result struct {
	Pkg        string             // from the preceding "pkg:" line
	Name       string             // without the "Benchmark" prefix kept, and without the -GOMAXPROCS suffix
	Procs      int                // the -GOMAXPROCS suffix; 1 when there is none
	Iterations int64              // b.N
	Values     map[string]float64 // unit → value: "ns/op", "B/op", "allocs/op", "MB/s", custom units
}

// Output is everything read from one `go test -bench` run.
type Output struct {
	Results []Result
	// Config holds the "key: value" header lines (goos, goarch, pkg, cpu).
	Config map[string]string
	// Failures are "--- FAIL" and "FAIL" lines: a benchmark that failed has no result.
	Failures []string
}

var procsSuffix = regexp.MustCompile(`-(\d+)$`)

// Parse reads benchmark output. Lines it does not understand (test logs, PASS, ok) are skipped.
// A benchmark that prints to stdout may have its name and its numbers on different lines; the
// numbers are then joined to the last name seen on a line of its own.
func Parse(r io.Reader) (*Output, error) {
	out := &Output{Config: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	pkg := ""
	pendingName := ""
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
			continue
		case strings.HasPrefix(line, "--- FAIL") || fields[0] == "FAIL":
			out.Failures = append(out.Failures, strings.TrimSpace(line))
			continue
		case strings.HasPrefix(fields[0], "Benchmark") && len(fields) == 1:
			pendingName = fields[0]
			continue
		case strings.HasPrefix(fields[0], "Benchmark"):
			if res, ok := parseResult(fields[0], fields[1:]); ok {
				res.Pkg = pkg
				out.Results = append(out.Results, res)
				pendingName = ""
				continue
			}
		case pendingName != "" && isNumber(fields[0]):
			if res, ok := parseResult(pendingName, fields); ok {
				res.Pkg = pkg
				out.Results = append(out.Results, res)
				pendingName = ""
				continue
			}
		}
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.Contains(k, " ") && k != "" && strings.ToLower(k) == k {
			out.Config[k] = strings.TrimSpace(v)
			if k == "pkg" {
				pkg = strings.TrimSpace(v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading benchmark output: %w", err)
	}
	return out, nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// parseResult reads "<iterations> <value> <unit> <value> <unit> …" after a benchmark name.
func parseResult(name string, fields []string) (Result, bool) {
	if len(fields) < 3 || len(fields)%2 != 1 {
		return Result{}, false
	}
	n, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil || n <= 0 {
		return Result{}, false
	}
	res := Result{Name: name, Procs: 1, Iterations: n, Values: map[string]float64{}}
	if m := procsSuffix.FindStringSubmatch(name); m != nil {
		p, _ := strconv.Atoi(m[1])
		res.Procs = p
		res.Name = strings.TrimSuffix(name, m[0])
	}
	for i := 1; i+1 < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return Result{}, false
		}
		res.Values[fields[i+1]] = v
	}
	return res, true
}

// Samples returns the values of unit from every run of the benchmark name (as printed, without
// the -GOMAXPROCS suffix) in pkg (empty matches any package), in output order.
func (o *Output) Samples(pkg, name, unit string) []float64 {
	var xs []float64
	for _, r := range o.Results {
		if r.Name != name || (pkg != "" && r.Pkg != pkg) {
			continue
		}
		if v, ok := r.Values[unit]; ok {
			xs = append(xs, v)
		}
	}
	return xs
}

// Names lists the distinct benchmark names in output order.
func (o *Output) Names() []string {
	seen := map[string]bool{}
	var names []string
	for _, r := range o.Results {
		if !seen[r.Name] {
			seen[r.Name] = true
			names = append(names, r.Name)
		}
	}
	return names
}
