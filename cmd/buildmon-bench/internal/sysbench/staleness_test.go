package sysbench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestReachTimesAndDelays(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	sent := []time.Time{at(0), at(100), at(200), at(300)}
	obs := []stepObs{
		{at(1500), "a", 3}, // out of order on purpose
		{at(500), "a", 1},
		{at(700), "b", 4},
		{at(2500), "a", 3},
	}
	reached := reachTimes(obs, "a", 4)
	assert.Equal(t, []time.Time{at(500), at(1500), at(1500), {}}, reached)
	d, missing := delays(sent, reached)
	assert.Equal(t, []float64{float64(500 * time.Millisecond), float64(1400 * time.Millisecond), float64(1300 * time.Millisecond)}, d)
	assert.Equal(t, 1, missing)

	d, missing = delays(sent, reachTimes(obs, "b", 4))
	assert.Equal(t, []float64{7e8, 6e8, 5e8, 4e8}, d)
	assert.Zero(t, missing)

	// A clock step backwards never gives a negative delay.
	d, _ = delays([]time.Time{at(10)}, []time.Time{at(5)})
	assert.Equal(t, []float64{0}, d)
}

func TestFirstChangeAfter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	changes := []fileChange{{mtime: at(1000)}, {mtime: at(0)}, {mtime: at(2000)}}
	got := firstChangeAfter(changes, []time.Time{at(0), at(1), at(1500), at(2500), {}})
	assert.Equal(t, []time.Time{at(0), at(1000), at(2000), {}, {}}, got)
}
