package events

import (
	"errors"
	"testing"
	"time"
)

func TestApplyChecked(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r := NewRegistry(Options{MaxBuilds: 10, MaxEventIDs: 10, DefaultHostname: "default-host"})
	if _, err := r.Apply([]Event{
		{ID: "s", Type: TypeBuildStarted, BuildID: "a", Pipeline: "team-a", Phases: []PhasePlan{{Name: "BUILD", Steps: 5}}},
		{Type: TypeBuildStarted, BuildID: "b", Pipeline: "team-b", Attributes: Attributes{Host: "hb"}, Phases: []PhasePlan{{Name: "BUILD", Steps: 5}}},
	}, now); err != nil {
		t.Fatal(err)
	}
	errNo := errors.New("no")
	var calls []string
	onlyTeamA := func(pipeline, host string) error {
		calls = append(calls, pipeline+"@"+host)
		if pipeline != "team-a" {
			return errNo
		}
		return nil
	}
	tests := []struct {
		name      string
		evs       []Event
		wantCalls []string
		wantIndex int // -1: allowed
	}{
		{"each build once", []Event{
			{Type: TypePhaseStarted, BuildID: "a", Phase: "BUILD"},
			{Type: TypeStepCompleted, BuildID: "a", Phase: "BUILD", Count: 1},
			{Type: TypeStepCompleted, BuildID: "a", Phase: "BUILD", Count: 1},
		}, []string{"team-a@default-host"}, -1},
		{"new build checked with its host", []Event{
			{Type: TypeBuildStarted, BuildID: "c", Pipeline: "team-a", Attributes: Attributes{Host: "hc"}},
			{Type: TypeBuildStarted, BuildID: "d", Pipeline: "team-b"},
		}, []string{"team-a@hc", "team-b@default-host"}, 1},
		{"registered build checked as registered, before its duplicate is counted", []Event{
			{ID: "x", Type: TypeStepCompleted, BuildID: "a", Phase: "BUILD", Count: 1},
			{Type: TypeBuildStarted, BuildID: "b", Pipeline: "team-a", Phases: []PhasePlan{{Name: "BUILD", Steps: 5}}},
		}, []string{"team-a@default-host", "team-b@hb"}, 1},
		{"unknown build: 404, not checked", []Event{{Type: TypePhaseStarted, BuildID: "zz", Phase: "BUILD"}}, nil, -2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls = nil
			before, _ := r.Get("a")
			_, err := r.ApplyChecked(tt.evs, now, onlyTeamA)
			if len(calls) != len(tt.wantCalls) {
				t.Fatalf("checks %v, want %v", calls, tt.wantCalls)
			}
			for i := range calls {
				if calls[i] != tt.wantCalls[i] {
					t.Fatalf("checks %v, want %v", calls, tt.wantCalls)
				}
			}
			var e *Error
			switch tt.wantIndex {
			case -1:
				if err != nil {
					t.Fatal(err)
				}
				return
			case -2:
				if !errors.As(err, &e) || e.Kind != KindUnknownBuild {
					t.Fatalf("got %v, want unknown build", err)
				}
				return
			}
			if !errors.As(err, &e) || e.Kind != KindForbidden || e.Index != tt.wantIndex || !errors.Is(err, errNo) {
				t.Fatalf("got %v, want forbidden at %d wrapping the check's error", err, tt.wantIndex)
			}
			after, _ := r.Get("a")
			if after.Updated != before.Updated || len(after.EventIDs) != len(before.EventIDs) {
				t.Fatal("a refused request changed build a")
			}
			if _, ok := r.Get("c"); ok {
				t.Fatal("a refused request created build c")
			}
		})
	}
}
