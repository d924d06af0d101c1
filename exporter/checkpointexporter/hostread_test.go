package checkpointexporter

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// TestHostReadersBound: the readers keep at most max hosts, forgetting the one read longest
// ago; readings are numbered across hosts, so a forgotten host read again still gets a
// number above every earlier one.
func TestHostReadersBound(t *testing.T) {
	r := newHostReaders(2)
	read := func(name string) uint64 {
		md := receiverScrape{name: name, at: t0, cpu: 0.5, memUsed: 1, memFree: 1, hostCounters: counters(100)}.metrics()
		_, u := r.read(name, md.ResourceMetrics().At(0), pcommon.Timestamp(0))
		return u.Seq
	}
	assert.Equal(t, uint64(1), read("a"))
	assert.Equal(t, uint64(2), read("b"))
	assert.Equal(t, uint64(3), read("a"))
	assert.Equal(t, uint64(4), read("c")) // b, read longest ago, goes
	assert.Len(t, r.hosts, 2)
	assert.Contains(t, r.hosts, "a")
	assert.Contains(t, r.hosts, "c")
	assert.Equal(t, uint64(5), read("b"))
	assert.Len(t, r.hosts, 2)
}
