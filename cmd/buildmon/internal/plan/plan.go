// Package plan parses the phase plan of `buildmon start`: the --phases list and the --weight
// overrides.
//
// The --phases syntax is a comma-separated list of phases in order, each
//
//	NAME          a phase with an unknown number of steps
//	NAME:N        a phase of N steps (N >= 0; 0 means unknown)
//	NAME:m1|m2    a phase tracked by named milestones, reported with `buildmon milestone`
//
// for example INIT:3,SETUP,BUILD:10,TEST:unit|e2e,CLEANUP.
package plan

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/buildmon/buildmon/internal/wire"
)

// DefaultPhaseNames are the phases of a build whose plan is not given.
var DefaultPhaseNames = []string{"INIT", "SETUP", "BUILD", "TEST", "CLEANUP"}

// Default returns the default plan: the five default phases with unknown step counts.
func Default() []wire.PhasePlan {
	phases := make([]wire.PhasePlan, len(DefaultPhaseNames))
	for i, n := range DefaultPhaseNames {
		phases[i] = wire.PhasePlan{Name: n}
	}
	return phases
}

// ParsePhases parses a --phases value.
func ParsePhases(s string) ([]wire.PhasePlan, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty phase list")
	}
	var phases []wire.PhasePlan
	seen := map[string]bool{}
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		name, spec, hasSpec := strings.Cut(item, ":")
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, fmt.Errorf("phase %d: missing name in %q", i+1, item)
		}
		if seen[name] {
			return nil, fmt.Errorf("phase %d: %s listed twice", i+1, name)
		}
		seen[name] = true
		p := wire.PhasePlan{Name: name}
		if hasSpec {
			spec = strings.TrimSpace(spec)
			switch {
			case spec == "":
				return nil, fmt.Errorf("phase %s: nothing after ':' (want a step count or milestones a|b)", name)
			case isDigits(spec):
				n, err := strconv.Atoi(spec)
				if err != nil {
					return nil, fmt.Errorf("phase %s: step count %q: %w", name, spec, err)
				}
				p.Steps = int64(n)
			default:
				ms, err := parseMilestones(spec)
				if err != nil {
					return nil, fmt.Errorf("phase %s: %w", name, err)
				}
				p.Milestones = ms
			}
		}
		phases = append(phases, p)
	}
	return phases, nil
}

func parseMilestones(spec string) ([]string, error) {
	var ms []string
	seen := map[string]bool{}
	for _, m := range strings.Split(spec, "|") {
		m = strings.TrimSpace(m)
		switch {
		case m == "":
			return nil, fmt.Errorf("empty milestone name in %q", spec)
		case seen[m]:
			return nil, fmt.Errorf("milestone %s listed twice", m)
		case strings.HasPrefix(m, "-"):
			// "-3" is a mistyped step count more likely than a milestone.
			return nil, fmt.Errorf("step count %q must not be negative", m)
		}
		seen[m] = true
		ms = append(ms, m)
	}
	return ms, nil
}

// ParseWeights parses --weight values, each NAME=W or several NAME=W separated by commas.
func ParseWeights(values []string) (map[string]float64, error) {
	weights := map[string]float64{}
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			item = strings.TrimSpace(item)
			name, w, ok := strings.Cut(item, "=")
			name, w = strings.TrimSpace(name), strings.TrimSpace(w)
			if !ok || name == "" || w == "" {
				return nil, fmt.Errorf("weight %q: want PHASE=WEIGHT", item)
			}
			f, err := strconv.ParseFloat(w, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
				return nil, fmt.Errorf("weight %q: %q is not a number >= 0", item, w)
			}
			if _, dup := weights[name]; dup {
				return nil, fmt.Errorf("weight for %s given twice", name)
			}
			weights[name] = f
		}
	}
	return weights, nil
}

// ApplyWeights sets the weight of each named phase of phases; a weight for a phase that is
// not in the plan is an error.
func ApplyWeights(phases []wire.PhasePlan, weights map[string]float64) error {
	var errs []error
	applied := 0
	for i := range phases {
		if w, ok := weights[phases[i].Name]; ok {
			phases[i].Weight = &w
			applied++
		}
	}
	if applied == len(weights) {
		return nil
	}
	in := map[string]bool{}
	for _, p := range phases {
		in[p.Name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(weights)) {
		if !in[name] {
			errs = append(errs, fmt.Errorf("weight for %s: no such phase in the plan", name))
		}
	}
	return errors.Join(errs...)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
