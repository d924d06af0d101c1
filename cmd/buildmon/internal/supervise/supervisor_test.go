package supervise

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeGroup records what the supervisor asks of a group.
type fakeGroup struct {
	calls   []string
	stopErr error
}

func (g *fakeGroup) stop() error {
	g.calls = append(g.calls, "stop")
	return g.stopErr
}

func (g *fakeGroup) cont() error {
	g.calls = append(g.calls, "cont")
	return nil
}

func (g *fakeGroup) signal(sig os.Signal) error {
	g.calls = append(g.calls, "signal "+sig.String())
	return nil
}

func (*fakeGroup) String() string { return "the group" }

func newFakeSupervisor(maxPause time.Duration) (*supervisor, *fakeGroup, *logRecorder, *time.Time) {
	g := &fakeGroup{}
	log := &logRecorder{}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &supervisor{g: g, opts: &Options{MaxPause: maxPause, Logf: log.logf}, now: func() time.Time { return now }}
	return s, g, log, &now
}

var (
	paused   = pollResult{pause: Pause{Paused: true, Reason: "CRITICAL alert cpu_usage (99.5)"}}
	running  = pollResult{}
	pollFail = pollResult{err: errors.New("status API unreachable")}
)

// The decisions of the supervisor are the same on every OS; only the group differs (process
// group on Unix, job object on Windows). These run everywhere against a fake group.
func TestSupervisorDecisions(t *testing.T) {
	tests := []struct {
		name     string
		maxPause time.Duration
		steps    []pollResult
		advance  time.Duration // between steps
		calls    []string
		log      []string
	}{
		{
			name:  "pause stops once, clearing continues",
			steps: []pollResult{running, paused, paused, running, running},
			calls: []string{"stop", "cont"},
			log:   []string{"build paused by CRITICAL alert cpu_usage (99.5); stopping the group", "pause cleared after 2s; continuing the group"},
		},
		{
			name:  "a pause without a reason names the collector",
			steps: []pollResult{{pause: Pause{Paused: true}}},
			calls: []string{"stop"},
			log:   []string{"build paused by the collector; stopping the group"},
		},
		{
			name:  "an unreadable status continues a stopped group, and a later pause stops it again",
			steps: []pollResult{paused, pollFail, pollFail, paused},
			calls: []string{"stop", "cont", "stop"},
			log:   []string{"stopping the group", "continuing the group: the build status cannot be read", "stopping the group"},
		},
		{
			name:  "an unreadable status of a running group does nothing",
			steps: []pollResult{pollFail, running},
		},
		{
			name:     "max pause continues and lets this pause pass, not the next",
			maxPause: 2 * time.Second,
			steps:    []pollResult{paused, paused, paused, paused, running, paused},
			calls:    []string{"stop", "cont", "stop"},
			log:      []string{"stopping the group", "build still paused after 2s (max pause); continuing the group anyway", "stopping the group"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, g, log, now := newFakeSupervisor(tt.maxPause)
			for _, r := range tt.steps {
				s.apply(r)
				*now = now.Add(time.Second)
			}
			assert.Equal(t, tt.calls, g.calls)
			for _, l := range tt.log {
				assert.Contains(t, log.String(), l)
			}
			if len(tt.log) == 0 {
				assert.Empty(t, log.String())
			}
		})
	}
}

// A group the OS does not let the supervisor stop (exited, or access denied) is not marked
// stopped: the build runs, the user is told, the next poll tries again.
func TestSupervisorStopFails(t *testing.T) {
	s, g, log, _ := newFakeSupervisor(0)
	g.stopErr = errors.New("access denied")
	s.apply(paused)
	assert.False(t, s.stopped)
	assert.Contains(t, log.String(), "build paused by CRITICAL alert cpu_usage (99.5), but stopping the group failed: access denied")
	g.stopErr = nil
	s.apply(paused)
	assert.True(t, s.stopped)
	assert.Equal(t, []string{"stop", "stop"}, g.calls)
}

// A termination signal reaches a stopped group, which is then continued to handle it, and no
// pause stops the group again.
func TestSupervisorTerminationSignal(t *testing.T) {
	s, g, log, _ := newFakeSupervisor(0)
	s.apply(paused)
	s.forward(os.Interrupt)
	s.apply(running)
	s.apply(paused)
	assert.Equal(t, []string{"stop", "signal " + os.Interrupt.String(), "cont"}, g.calls)
	assert.True(t, s.terminating)
	assert.Contains(t, log.String(), "received "+os.Interrupt.String()+"; forwarding it to the group")
	assert.Contains(t, log.String(), "continuing the group so that it can handle "+os.Interrupt.String())
}

// The loop polls, applies and leaves the group continued when the command exits.
func TestSupervisorLoopLeavesGroupContinued(t *testing.T) {
	s, g, _, _ := newFakeSupervisor(0)
	polled := make(chan struct{}, 16)
	s.opts.Interval = time.Millisecond
	s.opts.Poll = func(context.Context) (Pause, error) {
		polled <- struct{}{}
		return Pause{Paused: true}, nil
	}
	waited := make(chan struct{})
	done := make(chan struct{})
	go func() {
		s.loop(context.Background(), waited)
		close(done)
	}()
	for range 3 {
		<-polled
	}
	close(waited)
	<-done
	require.NotEmpty(t, g.calls)
	assert.Equal(t, "stop", g.calls[0])
	assert.Equal(t, "cont", g.calls[len(g.calls)-1], "the command's children must not stay stopped")
	assert.False(t, s.stopped)
}

func TestProcessIDs(t *testing.T) {
	ids := []uintptr{100, 0, 204, 300}
	assert.Equal(t, []uint32{100, 204, 300}, processIDs(ids, 4))
	assert.Equal(t, []uint32{100}, processIDs(ids, 2), "only the listed ids")
	assert.Equal(t, []uint32{100, 204, 300}, processIDs(ids, 4096), "never past the array")
	assert.Empty(t, processIDs(nil, 3))
}

// logRecorder collects Logf messages from Run's goroutine.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
