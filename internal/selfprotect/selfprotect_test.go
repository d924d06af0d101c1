package selfprotect

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeReader returns the readings it is given, one per Read.
type fakeReader struct {
	cpu  time.Duration
	rss  uint64
	fail error
}

func (f *fakeReader) Read(context.Context) (Usage, error) {
	if f.fail != nil {
		return Usage{}, f.fail
	}
	return Usage{CPU: f.cpu, RSS: f.rss}, nil
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// step advances the fake process by one 10 s check at the given share of a 2-CPU host and
// memory, and checks.
type harness struct {
	t   *testing.T
	r   *fakeReader
	c   *Controller
	now time.Time
}

func newHarness(t *testing.T, b Budget) *harness {
	r := &fakeReader{}
	h := &harness{t: t, r: r, c: NewController(b, r, 2), now: t0}
	_, err := h.c.Check(context.Background(), h.now) // the baseline
	require.NoError(t, err)
	return h
}

func (h *harness) check(share float64, rssMiB uint64) *Change {
	h.now = h.now.Add(10 * time.Second)
	h.r.cpu += time.Duration(share * 2 * float64(10*time.Second))
	h.r.rss = rssMiB << 20
	ch, err := h.c.Check(context.Background(), h.now)
	require.NoError(h.t, err)
	return ch
}

func active(c *Controller) []string {
	var out []string
	for _, m := range Measures {
		if c.Active(m) {
			out = append(out, m.String())
		}
	}
	return out
}

func TestEngageInOrderOneStepPerCheck(t *testing.T) {
	h := newHarness(t, Budget{CPUShare: 0.25, ReleaseRatio: 0.8, ReleaseChecks: 2})
	assert.Nil(t, h.check(0.1, 100), "under budget")
	assert.Empty(t, active(h.c))
	want := [][]string{
		{"step_span_sampling"},
		{"step_span_sampling", "host_scrape_stretch"},
		{"step_span_sampling", "host_scrape_stretch", "reemission_slowdown"},
	}
	for i, w := range want {
		ch := h.check(0.5, 100)
		require.NotNil(t, ch)
		assert.Equal(t, Measures[i], ch.Measure)
		assert.True(t, ch.Active)
		assert.InDelta(t, 0.5, ch.Reading.CPUShare, 1e-9)
		assert.True(t, ch.Reading.Over)
		assert.Equal(t, w, active(h.c))
	}
	assert.Nil(t, h.check(0.5, 100), "every measure is active: nothing more to engage")
	assert.Equal(t, 3, h.c.Level())
}

func TestHysteresisAndRelease(t *testing.T) {
	h := newHarness(t, Budget{CPUShare: 0.25, ReleaseRatio: 0.8, ReleaseChecks: 2})
	for range 3 {
		require.NotNil(t, h.check(0.3, 0))
	}
	// Between 0.8 × budget and the budget: hold, whatever the count of checks.
	for range 5 {
		assert.Nil(t, h.check(0.22, 0))
	}
	assert.Equal(t, 3, h.c.Level())
	// Calm: one measure released per two calm checks, last engaged first.
	assert.Nil(t, h.check(0.1, 0))
	ch := h.check(0.1, 0)
	require.NotNil(t, ch)
	assert.Equal(t, ReemissionSlowdown, ch.Measure)
	assert.False(t, ch.Active)
	assert.Equal(t, []string{"step_span_sampling", "host_scrape_stretch"}, active(h.c))
	// A check in the band resets the calm count.
	assert.Nil(t, h.check(0.1, 0))
	assert.Nil(t, h.check(0.22, 0))
	assert.Nil(t, h.check(0.1, 0))
	ch = h.check(0.1, 0)
	require.NotNil(t, ch)
	assert.Equal(t, HostScrapeStretch, ch.Measure)
	// Over budget again: engage again.
	ch = h.check(0.4, 0)
	require.NotNil(t, ch)
	assert.Equal(t, HostScrapeStretch, ch.Measure)
	assert.True(t, ch.Active)
	for range 2 {
		h.check(0.0, 0)
	}
	for range 4 {
		h.check(0.0, 0)
	}
	assert.Empty(t, active(h.c), "back to normal once the pressure is gone")
	assert.Nil(t, h.check(0.0, 0), "nothing left to release")
}

func TestMemoryBudget(t *testing.T) {
	h := newHarness(t, Budget{MemoryBytes: 512 << 20, ReleaseRatio: 0.8, ReleaseChecks: 1})
	assert.Nil(t, h.check(0.9, 500), "no CPU budget: CPU does not count")
	ch := h.check(0, 600)
	require.NotNil(t, ch)
	assert.True(t, ch.Reading.Over)
	assert.Nil(t, h.check(0, 450), "450 MiB is above 0.8 × 512 MiB: hold")
	ch = h.check(0, 400)
	require.NotNil(t, ch)
	assert.False(t, ch.Active)
}

func TestBothBudgets(t *testing.T) {
	h := newHarness(t, Budget{CPUShare: 0.25, MemoryBytes: 512 << 20, ReleaseRatio: 0.8, ReleaseChecks: 1})
	require.NotNil(t, h.check(0.1, 600), "memory over, CPU fine")
	require.NotNil(t, h.check(0.3, 100), "CPU over, memory fine")
	assert.Nil(t, h.check(0.1, 500), "calm needs both under their release ratio")
	require.NotNil(t, h.check(0.1, 100))
}

// The first check has no CPU share yet; it never engages on CPU, nor releases.
func TestFirstCheckIsABaseline(t *testing.T) {
	r := &fakeReader{cpu: time.Hour}
	c := NewController(Budget{CPUShare: 0.01, ReleaseRatio: 0.8}, r, 1)
	ch, err := c.Check(context.Background(), t0)
	require.NoError(t, err)
	assert.Nil(t, ch)
	assert.Equal(t, 0, c.Level())
}

func TestFailedReadChangesNothing(t *testing.T) {
	h := newHarness(t, Budget{CPUShare: 0.25, ReleaseRatio: 0.8, ReleaseChecks: 1})
	require.NotNil(t, h.check(0.5, 0))
	h.r.fail = errors.New("no /proc")
	_, err := h.c.Check(context.Background(), h.now.Add(time.Second))
	require.Error(t, err)
	assert.Equal(t, 1, h.c.Level())
}

func TestMeasureNames(t *testing.T) {
	assert.Equal(t, "step_span_sampling", StepSpanSampling.String())
	assert.Equal(t, "host_scrape_stretch", HostScrapeStretch.String())
	assert.Equal(t, "reemission_slowdown", ReemissionSlowdown.String())
	assert.Equal(t, "measure(9)", Measure(9).String())
}

// The process reader reads this test's own process: some CPU time, some memory.
func TestProcessReader(t *testing.T) {
	r, err := NewProcessReader()
	require.NoError(t, err)
	u, err := r.Read(context.Background())
	require.NoError(t, err)
	assert.Positive(t, u.RSS)
	// Burn CPU until the process's CPU time grows: it counts in clock ticks, and on a busy
	// machine 50 ms of wall time may not get one tick of CPU.
	u2 := u
	for giveUp := time.Now().Add(10 * time.Second); u2.CPU <= u.CPU && time.Now().Before(giveUp); {
		spin(20 * time.Millisecond)
		u2, err = r.Read(context.Background())
		require.NoError(t, err)
	}
	assert.Greater(t, u2.CPU, u.CPU, "the CPU time the reader sees grows while the process works")
	assert.Positive(t, u2.CPU)
}

// spin keeps a CPU busy for d of wall time.
func spin(d time.Duration) {
	end := time.Now().Add(d)
	for {
		if !time.Now().Before(end) {
			return
		}
	}
}
