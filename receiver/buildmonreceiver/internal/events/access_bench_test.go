package events

import (
	"fmt"
	"testing"
	"time"

	"github.com/buildmon/buildmon/internal/access"
)

// benchRegistry tracks 100 running builds of pipelines team-<n%4>/app-<n> with room for
// many steps, and returns a batch of 1000 step_completed events round robin over them.
func benchRegistry(b *testing.B) (*Registry, []Event) {
	b.Helper()
	r := NewRegistry(Options{MaxBuilds: 1000, MaxEventIDs: 0, DefaultHostname: "h"})
	now := time.Unix(1_800_000_000, 0)
	for i := range 100 {
		id := fmt.Sprintf("bench-%d", i)
		if _, err := r.Apply([]Event{
			{Type: TypeBuildStarted, BuildID: id, Pipeline: fmt.Sprintf("team-%d/app-%d", i%4, i), Phases: []PhasePlan{{Name: "BUILD", Steps: MaxSteps}}},
			{Type: TypePhaseStarted, BuildID: id, Phase: "BUILD"},
		}, now); err != nil {
			b.Fatal(err)
		}
	}
	evs := make([]Event, 1000)
	for i := range evs {
		evs[i] = Event{Type: TypeStepCompleted, BuildID: fmt.Sprintf("bench-%d", i%100), Phase: "BUILD", Count: 1}
	}
	return r, evs
}

func runApplyBatch(b *testing.B, check Check) {
	r, evs := benchRegistry(b)
	now := time.Unix(1_800_000_001, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.ApplyChecked(evs, now, check); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkApplyBatch applies 1000 events to 100 builds without access rules: the baseline of
// BenchmarkApplyBatchChecked.
func BenchmarkApplyBatch(b *testing.B) { runApplyBatch(b, nil) }

// BenchmarkApplyBatchChecked is the same with an access check of every event against five
// rules with globs (the receiver's check also remembers the last build it allowed, which
// this round robin over 100 builds defeats: the worst case).
func BenchmarkApplyBatchChecked(b *testing.B) {
	p := access.New(access.Config{Rules: []access.Rule{
		{Subjects: []string{"cn:runner-x"}, Actions: []string{"events:write"}, Pipelines: []string{"team-x/*"}},
		{Subjects: []string{"dns:*.team-y.ci"}, Actions: []string{"events:write"}, Hosts: []string{"pool-y-*"}},
		{Subjects: []string{"group:ops"}, Actions: []string{"status:read"}, Pipelines: []string{"*"}},
		{Subjects: []string{"cn:runner-*"}, Actions: []string{"events:write"}, Pipelines: []string{"team-[0-3]/*"}},
		{Subjects: []string{"alice"}, Actions: []string{"events:write"}, Pipelines: []string{"team-0/app-1"}},
	}})
	id := access.Identity{Names: []string{"cn:runner-7", "dns:runner-7.ci"}}
	runApplyBatch(b, func(pipeline, host string) error {
		return p.Check(id, access.EventsWrite, access.Build(pipeline, host))
	})
}
