package wire

// goldenValues are the documents of the golden files in testdata: every field of every type
// set, and the emptiest values each API sends. The golden bytes were written from the same
// values by the types the receiver, the status API and the build client declared before
// they shared this package.
func goldenValues() map[string]any {
	weight := 0.4
	eta, zero := 30.0, 0.0
	cpu, mem, fs, tx, rx, rd, wr := 0.99, 0.4, 0.7, 150.0, 200.0, 5.0, 7.0
	used, total := int64(6400000000), int64(16000000000)
	index := 3
	resources := HostResources{
		CPUUtilization: &cpu, MemoryUtilization: &mem, MemoryUsedBytes: &used, MemoryTotalBytes: &total,
		FilesystemUtilization: &fs, FilesystemMountpoint: "/data",
		NetworkTransmitBytesPS: &tx, NetworkReceiveBytesPS: &rx, DiskReadOpsPS: &rd, DiskWriteOpsPS: &wr,
		UpdatedAt: "2025-03-01T12:00:02Z",
	}
	hostAlert := AlertStatus{Rule: "host_cpu_saturated", Level: "CRITICAL", State: "firing", Value: 0.99, Scope: "host", Since: "2025-03-01T12:00:02Z"}
	return map[string]any{
		"event_full": Event{
			ID: "0123456789abcdef0123456789abcdef", Type: "build_started", BuildID: "checkout-1842",
			Time: "2025-03-01T12:00:00.5+01:00", Pipeline: "checkout-service",
			Attributes: &Attributes{Repository: "https://git.example/checkout", Branch: "main", Revision: "abc123", Worker: "runner-7", Host: "host-a"},
			Phases: []PhasePlan{
				{Name: "BUILD", Steps: 4, Weight: &weight},
				{Name: "TEST", Milestones: []string{"unit", "integration"}},
				{Name: "CLEANUP"},
			},
			Phase: "BUILD", Step: "compile <main> & \"link\"", Count: count(7), Message: "é\tline\nnext", Result: "success",
		},
		"event_minimal": Event{Type: "phase_started", BuildID: "b", Phase: "A"},
		"event_empty":   Event{},
		"accepted":      Accepted{Accepted: 2, Duplicates: 1},
		"accepted_zero": Accepted{},
		"error_field":   Error{Error: "phases[1].steps: must be between 0 and 1000000", Field: "phases[1].steps", Index: &index},
		"error_plain":   Error{Error: "unknown build \"x\""},
		"error_forbidden": Error{Error: "forbidden: cn:runner-a lacks events:write on pipeline \"team-b\" on host \"h1\"", Index: &index,
			Permission: "events:write", Subject: "cn:runner-a", Pipeline: "team-b", Host: "h1"},
		"build_status": BuildStatus{
			ID: "checkout-1842", Pipeline: "checkout-service", Host: "host-a", Worker: "runner-7",
			Repository: "https://git.example/checkout", Branch: "main", Revision: "abc123",
			State: "finished", Result: "success", Phase: "TEST", Progress: 1, ProgressPercent: 100,
			ETASeconds: &zero, Derived: true, Paused: true,
			Alerts: []AlertStatus{
				{Rule: "build_slow", Level: "WARNING", State: "pending", Value: 1.5, Scope: "build"},
				hostAlert,
			},
			ActiveOperations: []string{"TEST"},
			Phases: []PhaseStatus{
				{Name: "INIT", State: "completed", StepsTotal: 1, StepsCompleted: 1, Progress: 1, DurationSeconds: 2, Weight: &weight, StartedAt: "2025-03-01T12:00:00Z", EndedAt: "2025-03-01T12:00:02Z"},
				{Name: "TEST", State: "running", StepsTotal: 0, StepsCompleted: 2, Progress: 1.0 / 3, DurationSeconds: 1e-7},
			},
			DurationSeconds: 123456789.125, StartedAt: "2025-03-01T12:00:00Z", FinishedAt: "2025-03-02T12:00:00.000000001Z",
			HostResources: &resources,
			Reports: ReportLinks{Build: "/v1/builds/checkout-1842/report", Phases: map[string]string{
				"TEST": "/v1/builds/checkout-1842/phases/TEST/report", "INIT": "/v1/builds/checkout-1842/phases/INIT/report",
			}},
			UpdatedAt: "2025-03-01T12:00:02Z",
		},
		"build_status_new": BuildStatus{
			ID: "b", State: "running", ETASeconds: &eta, Note: "progress and ETA come from the buildprogress processor, which is not in this pipeline",
			Alerts: []AlertStatus{}, ActiveOperations: []string{}, Phases: []PhaseStatus{}, UpdatedAt: "2025-03-01T12:00:00Z",
		},
		"build_status_zero": BuildStatus{},
		"build_list": BuildList{Builds: []BuildSummary{
			{ID: "a", Pipeline: "p", Host: "h", State: "finished", Result: "failure", Phase: "BUILD", Progress: 0.25, Derived: true, Paused: true, UpdatedAt: "2025-03-01T12:00:00Z"},
			{ID: "b"},
		}, Count: 2},
		"build_list_empty": BuildList{Builds: []BuildSummary{}},
		"host_list": HostList{Hosts: []HostStatus{
			{Name: "host-a", Resources: resources, Alerts: []AlertStatus{hostAlert}, Builds: []string{"a", "b"}, UpdatedAt: "2025-03-01T12:00:02Z"},
			{Name: "host-b", Alerts: []AlertStatus{}, Builds: []string{}},
		}, Count: 2},
		"host_list_empty": HostList{Hosts: []HostStatus{}},
		"host_zero":       HostStatus{},
		"status_error":    statusError("unknown build \"nope\""),
	}
}
