package hostscraper

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// forwarded runs a stretched ticker with a fixed factor over ticks 1..n seconds after t0 and
// returns the seconds of the ticks it passed on.
func forwarded(factor, from, to int) []int {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	in := make(chan time.Time)
	out := make(chan time.Time, to-from+1)
	done := make(chan struct{})
	s := stretchedTicker{stretch: func() int { return factor }, out: out}
	var wg sync.WaitGroup
	wg.Go(func() { s.forward(in, done) })
	for i := from; i <= to; i++ {
		in <- t0.Add(time.Duration(i) * time.Second)
	}
	// Each tick was handled before the next was received; the last one before forward
	// returns to its select, where done stops it.
	close(done)
	wg.Wait()
	close(out)
	var got []int
	for v := range out {
		got = append(got, int(v.Sub(t0)/time.Second))
	}
	return got
}

// The stretched ticker passes every stretch()-th tick of the configured interval.
func TestStretchedTickerForwardsEveryNthTick(t *testing.T) {
	assert.Equal(t, []int{1, 2, 3}, forwarded(1, 1, 3), "factor 1: every tick")
	assert.Equal(t, []int{7, 11}, forwarded(4, 4, 11), "factor 4: every fourth tick")
	assert.Equal(t, []int{12}, forwarded(0, 12, 12), "a factor below 1 counts as 1")
}

// A tick that the controller has not taken yet is not queued behind another.
func TestStretchedTickerDropsTicksWhileOneWaits(t *testing.T) {
	in := make(chan time.Time)
	out := make(chan time.Time, 1)
	done := make(chan struct{})
	s := stretchedTicker{stretch: func() int { return 1 }, out: out}
	var wg sync.WaitGroup
	wg.Go(func() { s.forward(in, done) })
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		in <- t0.Add(time.Duration(i) * time.Second)
	}
	close(done)
	wg.Wait()
	assert.Equal(t, t0, <-out, "the first tick waits, the later ones are dropped")
	assert.Empty(t, out)
}
