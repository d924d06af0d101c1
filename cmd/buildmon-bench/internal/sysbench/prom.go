package sysbench

import (
	"bytes"
	"strconv"
)

// promValue finds the sample of metric whose labels include label="value" in a Prometheus text
// exposition and returns its value. Labels may come in any order; a timestamp after the value
// is ignored.
func promValue(exposition []byte, metric, label, value string) (float64, bool) {
	want := []byte(label + `="` + value + `"`)
	prefix := []byte(metric + "{")
	for len(exposition) > 0 {
		line := exposition
		if i := bytes.IndexByte(exposition, '\n'); i >= 0 {
			line, exposition = exposition[:i], exposition[i+1:]
		} else {
			exposition = nil
		}
		if !bytes.HasPrefix(line, prefix) {
			continue
		}
		end := bytes.LastIndexByte(line, '}')
		if end < 0 {
			continue
		}
		labels := line[len(prefix)-1 : end+1] // "{...}"
		k := bytes.Index(labels, want)
		if k < 1 || (labels[k-1] != '{' && labels[k-1] != ',') {
			continue
		}
		fields := bytes.Fields(line[end+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(string(fields[0]), 64)
		if err != nil {
			continue
		}
		return v, true
	}
	return 0, false
}
