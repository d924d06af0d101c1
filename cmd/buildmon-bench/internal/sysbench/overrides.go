package sysbench

// The bench's changes to the default config, per scenario. They raise limits so each
// scenario measures what it is about (throughput, not the rate limiter; 10,000 builds, not
// eviction at the default max_builds) and leave everything else as `make run` has it.

// maxBuildsOverrides lets every component hold n builds.
func maxBuildsOverrides(n int) []Override {
	return []Override{
		{Path: "receivers.buildmon.max_builds", Value: n},
		{Path: "processors.buildprogress.max_builds", Value: n},
		{Path: "exporters.checkpoint.max_builds", Value: n},
	}
}

// ingestOverrides: builds for the load, and a rate limit far above what the load can reach.
func ingestOverrides(s Settings) []Override {
	return append(maxBuildsOverrides(max(1000, 2*s.IngestBuilds)),
		Override{Path: "receivers.buildmon.rate_limit.events_per_second", Value: 1_000_000_000},
		Override{Path: "receivers.buildmon.rate_limit.burst", Value: 1_000_000_000},
	)
}

// memoryOverrides: room for the builds of item 6.
func memoryOverrides(s Settings) []Override {
	return append(maxBuildsOverrides(2*s.MemoryBuilds),
		Override{Path: "receivers.buildmon.rate_limit.events_per_second", Value: 1_000_000_000},
		Override{Path: "receivers.buildmon.rate_limit.burst", Value: 1_000_000_000},
	)
}

// auditToDevNull is where the staleness run sends the exporter's audit log: every status-API
// read is audited, and the bench's own polling (200 reads/s) would otherwise be most of the
// bytes the collector writes (42 KiB/s measured), hiding what checkpointing writes.
const auditToDevNull = "/dev/null"

// stalenessOverrides: room for the builds of item 5 and their update rate, and the audit log
// of the bench's own status reads out of the write volume.
func stalenessOverrides(s Settings) []Override {
	return append(maxBuildsOverrides(max(1000, 2*s.StalenessBuilds)),
		Override{Path: "receivers.buildmon.rate_limit.events_per_second", Value: 1_000_000_000},
		Override{Path: "receivers.buildmon.rate_limit.burst", Value: 1_000_000_000},
		Override{Path: "exporters.checkpoint.audit_log.path", Value: auditToDevNull},
	)
}
