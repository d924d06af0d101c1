package checkpointexporter // import "github.com/buildmon/buildmon/exporter/checkpointexporter"

import (
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
	"github.com/buildmon/buildmon/internal/hostusage"
)

// hostReaders read each host's metrics through internal/hostusage, the normalizer the
// buildprogress processor uses, whichever source sent them (the buildmon receiver or the
// contrib hostmetricsreceiver). hostusage keeps the last value of every counter of a host
// between batches; the readings are numbered so that the state takes a host's totals only
// from a newer reading when batches are consumed concurrently.
type hostReaders struct {
	max int // hosts kept (max_builds, the state's bound): past it the one read longest ago goes

	mu    sync.Mutex // guards seq and hosts
	seq   uint64
	hosts map[string]*hostReader
}

type hostReader struct {
	usage    hostusage.Host
	lastRead uint64 // seq of the host's newest reading
}

func newHostReaders(maxHosts int) *hostReaders {
	return &hostReaders{max: maxHosts, hosts: map[string]*hostReader{}}
}

// read reads one host resource: its sample, and the host's totals after it.
func (r *hostReaders) read(name string, rm pmetric.ResourceMetrics, now pcommon.Timestamp) (hostusage.Sample, state.HostUsage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hosts[name]
	if h == nil {
		r.makeRoom()
		h = &hostReader{}
		r.hosts[name] = h
	}
	s := h.usage.Read(rm, now)
	r.seq++
	h.lastRead = r.seq
	return s, state.HostUsage{Totals: h.usage.Totals, Kinds: h.usage.Kinds(), Seq: r.seq}
}

// makeRoom forgets the host read longest ago while the readers hold max hosts (a scan, only
// when a new host arrives at the bound).
func (r *hostReaders) makeRoom() {
	if r.max <= 0 {
		return
	}
	for len(r.hosts) >= r.max {
		var oldest string
		var at uint64
		for name, h := range r.hosts {
			if oldest == "" || h.lastRead < at {
				oldest, at = name, h.lastRead
			}
		}
		delete(r.hosts, oldest)
	}
}
