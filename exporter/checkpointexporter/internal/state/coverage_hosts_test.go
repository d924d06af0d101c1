package state

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func hostNames(s *Store) []string {
	names := []string{}
	for _, h := range s.Hosts() {
		names = append(names, h.Name)
	}
	return names
}

// Hosts are bounded by MaxBuilds too: the host observed longest ago goes first, but never a
// host with running builds.
func TestMaxBuildsBoundsHosts(t *testing.T) {
	for _, tc := range []struct {
		name string
		// running are hosts with a running build before h3 arrives.
		running []string
		want    []string
	}{
		{"the host observed longest ago goes", nil, []string{"h2", "h3"}},
		{"a host with a running build stays", []string{"h1"}, []string{"h1", "h3"}},
		{"no host goes while every host runs a build", []string{"h1", "h2"}, []string{"h1", "h2", "h3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := newStore(Limits{MaxBuilds: 2})
			for i, h := range []string{"h1", "h2"} {
				c.Advance(time.Second)
				s.Apply(Batch{Hosts: []HostObservation{{Name: h, CPU: At(0.1, ts(i+1))}}})
			}
			for _, h := range tc.running {
				s.Apply(Batch{Builds: []BuildObservation{{ID: "b-" + h, Resource: Resource{Host: h}, State: At(BuildRunning, ts(3))}}})
			}
			_, v, err := s.Snapshot()
			require.NoError(t, err)
			s.MarkWritten(v)
			c.Advance(time.Second)
			s.Apply(Batch{Hosts: []HostObservation{{Name: "h3", CPU: At(0.1, ts(4))}}})
			assert.Equal(t, tc.want, hostNames(s))
			assert.True(t, s.Dirty(), "a new host makes a checkpoint due")
		})
	}
}

func TestApplyHostInputs(t *testing.T) {
	long := strings.Repeat("h", MaxNameBytes+1)
	for _, tc := range []struct {
		name    string
		obs     HostObservation
		ignored int
		hosts   []string
		check   func(t *testing.T, s *Store)
	}{
		{name: "a host without name is skipped", obs: HostObservation{CPU: At(0.5, ts(1))}, hosts: []string{}},
		{name: "a host with a long name is ignored", obs: HostObservation{Name: long, CPU: At(0.5, ts(1))}, ignored: 1, hosts: []string{}},
		{
			name: "a long mount point is dropped, the sample kept", obs: HostObservation{Name: "h", FSUtil: At(0.7, ts(1)), FSMount: strings.Repeat("/", MaxTextBytes+1)},
			ignored: 1, hosts: []string{"h"},
			check: func(t *testing.T, s *Store) {
				hs, _ := s.Host("h")
				require.NotNil(t, hs.Resources.FilesystemUtilization)
				assert.Equal(t, 0.7, *hs.Resources.FilesystemUtilization)
				assert.Empty(t, hs.Resources.FilesystemMountpoint)
			},
		},
		{
			name: "every utilization field", hosts: []string{"h"},
			obs: HostObservation{
				Name: "h", CPU: At(0.1, ts(1)), MemUtil: At(0.2, ts(1)), MemUsed: At(int64(300), ts(1)), MemTotal: At(int64(1000), ts(1)),
				FSUtil: At(0.4, ts(1)), FSMount: "/var", NetTransmit: At(5.0, ts(1)), NetReceive: At(6.0, ts(1)),
				DiskOpsRead: At(7.0, ts(2)), DiskOpsWrite: At(8.0, ts(1)),
			},
			check: func(t *testing.T, s *Store) {
				hs, _ := s.Host("h")
				r := hs.Resources
				assert.Equal(t, 0.1, *r.CPUUtilization)
				assert.Equal(t, 0.2, *r.MemoryUtilization)
				assert.Equal(t, int64(300), *r.MemoryUsedBytes)
				assert.Equal(t, int64(1000), *r.MemoryTotalBytes)
				assert.Equal(t, 0.4, *r.FilesystemUtilization)
				assert.Equal(t, "/var", r.FilesystemMountpoint)
				assert.Equal(t, 5.0, *r.NetworkTransmitBytesPS)
				assert.Equal(t, 6.0, *r.NetworkReceiveBytesPS)
				assert.Equal(t, 7.0, *r.DiskReadOpsPS)
				assert.Equal(t, 8.0, *r.DiskWriteOpsPS)
				assert.Equal(t, FormatTime(ts(2)), r.UpdatedAt, "the newest sample's time")
				assert.Equal(t, FormatTime(ts(2)), hs.UpdatedAt)
			},
		},
		{
			name: "fields never reported are absent", obs: HostObservation{Name: "h", CPU: At(0.1, ts(1)), FSMount: "/"}, hosts: []string{"h"},
			check: func(t *testing.T, s *Store) {
				hs, _ := s.Host("h")
				r := hs.Resources
				assert.NotNil(t, r.CPUUtilization)
				assert.Nil(t, r.MemoryUtilization)
				assert.Nil(t, r.MemoryUsedBytes)
				assert.Nil(t, r.FilesystemUtilization)
				assert.Empty(t, r.FilesystemMountpoint, "a mount point without its utilization is not shown")
				assert.Nil(t, r.DiskWriteOpsPS)
				assert.Equal(t, []string{}, hs.Builds)
				assert.Equal(t, []AlertStatus{}, hs.Alerts)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(Limits{})
			res := s.Apply(Batch{Hosts: []HostObservation{tc.obs}})
			assert.Equal(t, tc.ignored, res.Ignored)
			assert.Equal(t, tc.hosts, hostNames(s))
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

// The mount point follows the filesystem sample it came with: an older sample changes neither.
func TestHostMountFollowsItsSample(t *testing.T) {
	s, _ := newStore(Limits{})
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h", FSUtil: At(0.9, ts(5)), FSMount: "/data"}}})
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h", FSUtil: At(0.2, ts(3)), FSMount: "/"}}})
	hs, _ := s.Host("h")
	assert.Equal(t, "/data", hs.Resources.FilesystemMountpoint)
	assert.Equal(t, 0.9, *hs.Resources.FilesystemUtilization)
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h", FSUtil: At(0.95, ts(6)), FSMount: "/home"}}})
	hs, _ = s.Host("h")
	assert.Equal(t, "/home", hs.Resources.FilesystemMountpoint)
	// A sample without filesystem data keeps the mount point.
	s.Apply(Batch{Hosts: []HostObservation{{Name: "h", CPU: At(0.1, ts(7))}}})
	hs, _ = s.Host("h")
	assert.Equal(t, "/home", hs.Resources.FilesystemMountpoint)
}

func TestHostLookups(t *testing.T) {
	s, _ := newStore(Limits{})
	_, ok := s.Host("nowhere")
	assert.False(t, ok)
	s.Apply(Batch{
		Hosts: []HostObservation{{Name: "zulu", CPU: At(0.1, ts(1))}, {Name: "alpha", CPU: At(0.1, ts(1))}, {Name: "mike", CPU: At(0.1, ts(1))}},
		Builds: []BuildObservation{
			{ID: "b2", Resource: Resource{Host: "mike"}},
			{ID: "b1", Resource: Resource{Host: "mike"}},
			{ID: "done", Resource: Resource{Host: "mike"}, State: At(BuildFinished, ts(1))},
		},
	})
	assert.Equal(t, []string{"alpha", "mike", "zulu"}, hostNames(s))
	hs, ok := s.Host("mike")
	require.True(t, ok)
	assert.Equal(t, []string{"b1", "b2"}, hs.Builds, "running builds only, sorted")

	// A build that moves to another host leaves the first one's list.
	s.Apply(Batch{Builds: []BuildObservation{{ID: "b1", Resource: Resource{Host: "zulu"}, State: At(BuildRunning, ts(2))}}})
	hs, _ = s.Host("mike")
	assert.Equal(t, []string{"b2"}, hs.Builds)
	hs, _ = s.Host("zulu")
	assert.Equal(t, []string{"b1"}, hs.Builds)
}

// Expire drops hosts observed before the retention age unless a build runs on them, and
// tombstones older than it.
func TestExpireHostsAndTombstones(t *testing.T) {
	s, c := newStore(Limits{FinishedRetention: time.Hour})
	s.Apply(Batch{
		Hosts:  []HostObservation{{Name: "idle", CPU: At(0.1, ts(1))}, {Name: "busy", CPU: At(0.1, ts(1))}},
		Builds: []BuildObservation{{ID: "run", Resource: Resource{Host: "busy"}}, {ID: "done", State: At(BuildFinished, ts(1))}},
	})
	c.Advance(61 * time.Minute)
	exp := s.Expire()
	assert.Equal(t, []Removed{{ID: "done"}}, exp.Removed, "no report folder was given")
	assert.Equal(t, []string{"busy"}, hostNames(s))
	// The tombstone holds back late data of "done" until it is older than the retention age.
	s.Apply(Batch{Builds: []BuildObservation{{ID: "done", State: At(BuildFinished, ts(1))}}})
	_, ok := s.BuildStatus("done")
	assert.False(t, ok)
	c.Advance(61 * time.Minute)
	s.Expire()
	s.Apply(Batch{Builds: []BuildObservation{{ID: "done", State: At(BuildFinished, ts(1))}}})
	_, ok = s.BuildStatus("done")
	assert.True(t, ok, "the tombstone expired")
}

// Without limits Expire removes nothing, however old the state.
func TestExpireWithoutLimits(t *testing.T) {
	s, c := newStore(Limits{})
	s.Apply(Batch{
		Hosts: []HostObservation{{Name: "h", Alerts: []AlertObservation{{Rule: "cpu", Level: "ERROR", State: AlertFiring, Active: true, TS: ts(1)}}}},
		Builds: []BuildObservation{{ID: "done", State: At(BuildFinished, ts(1)), Alerts: []AlertObservation{
			{Rule: "mem", Level: "ERROR", State: AlertFiring, Active: true, TS: ts(1)},
		}}},
	})
	for _, j := range s.DueReports() {
		s.ReportWritten(j, 1<<30)
	}
	c.Advance(1000 * time.Hour)
	exp := s.Expire()
	assert.Empty(t, exp.Changes)
	assert.Empty(t, exp.Removed)
	assert.Equal(t, 1, s.Len())
	assert.Len(t, s.FiringAlerts(), 2)
}

// Over MaxReportsBytes the finished build the exporter saw finish first goes (whatever its
// own timestamps say), one at a time until the reports fit; running builds' reports count
// but are never removed.
func TestMaxReportsBytesOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int64
		want  []Removed
	}{
		{"one finished build is enough", 250, []Removed{{ID: "second", ReportDir: "dir-second", Evicted: true}}},
		{"both finished builds go", 150, []Removed{
			{ID: "second", ReportDir: "dir-second", Evicted: true}, {ID: "third", ReportDir: "dir-third", Evicted: true},
		}},
		{"a running build is never removed", 50, []Removed{
			{ID: "second", ReportDir: "dir-second", Evicted: true}, {ID: "third", ReportDir: "dir-third", Evicted: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := newStore(Limits{MaxReportsBytes: tc.limit})
			apply := func(o BuildObservation) {
				c.Advance(time.Second)
				s.Apply(Batch{Builds: []BuildObservation{o}})
				for _, j := range s.DueReports() {
					s.ReportWritten(j, 100)
				}
			}
			apply(BuildObservation{ID: "running", Phases: []PhaseObservation{phaseObs("INIT", PhaseCompleted, 1, 1, 1)}})
			apply(BuildObservation{ID: "second", State: At(BuildFinished, ts(50))})
			apply(BuildObservation{ID: "third", State: At(BuildFinished, ts(1))})
			assert.Equal(t, tc.want, s.Expire().Removed)
			_, ok := s.BuildStatus("running")
			assert.True(t, ok)
			assert.Empty(t, s.Expire().Removed, "nothing more to remove")
		})
	}
}
