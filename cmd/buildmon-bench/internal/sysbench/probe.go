package sysbench

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
)

// stepsOnDisk reads a checkpoint file without knowing its schema: if it is JSON (plain or
// gzip), it finds every object whose "id" (or "build_id") is one of ids and returns the steps
// completed of that build's phase named phase. A field may be a plain number or a stamped
// value {"v": N, "t": …}. Encrypted or other binary checkpoints give nothing (ok false).
func stepsOnDisk(data []byte, ids map[string]bool, phase string) (map[string]int64, bool) {
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, false
		}
		if data, err = io.ReadAll(io.LimitReader(zr, 1<<30)); err != nil {
			return nil, false
		}
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, false
	}
	found := map[string]int64{}
	walkBuilds(doc, ids, phase, found)
	return found, true
}

func walkBuilds(node any, ids map[string]bool, phase string, found map[string]int64) {
	switch n := node.(type) {
	case map[string]any:
		id, _ := n["id"].(string)
		if id == "" {
			id, _ = n["build_id"].(string)
		}
		if ids[id] {
			if steps, ok := phaseSteps(n["phases"], phase); ok {
				if steps > found[id] {
					found[id] = steps
				} else if _, seen := found[id]; !seen {
					found[id] = steps
				}
				return
			}
		}
		for _, v := range n {
			walkBuilds(v, ids, phase, found)
		}
	case []any:
		for _, v := range n {
			walkBuilds(v, ids, phase, found)
		}
	}
}

// phaseSteps finds steps_completed of the named phase in a list of phases or a map of phase
// name to phase.
func phaseSteps(phases any, name string) (int64, bool) {
	switch p := phases.(type) {
	case []any:
		for _, e := range p {
			m, ok := e.(map[string]any)
			if !ok {
				continue
			}
			if n, _ := m["name"].(string); n == name {
				return number(m["steps_completed"])
			}
		}
	case map[string]any:
		if m, ok := p[name].(map[string]any); ok {
			return number(m["steps_completed"])
		}
	}
	return 0, false
}

func number(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			f, ferr := x.Float64()
			return int64(f), ferr == nil
		}
		return n, true
	case map[string]any:
		return number(x["v"])
	}
	return 0, false
}
