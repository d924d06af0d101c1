package stats

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMedian(t *testing.T) {
	assert.True(t, math.IsNaN(Median(nil)))
	assert.Equal(t, 3.0, Median([]float64{5, 1, 3}))
	assert.Equal(t, 2.5, Median([]float64{4, 1, 3, 2}))
	in := []float64{3, 1, 2}
	Median(in)
	assert.Equal(t, []float64{3, 1, 2}, in, "input left alone")
}

func TestQuantile(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(100 - i) // 100..1
	}
	assert.Equal(t, 50.0, Quantile(xs, 0.5))
	assert.Equal(t, 99.0, Quantile(xs, 0.99))
	assert.Equal(t, 100.0, Quantile(xs, 1))
	assert.Equal(t, 1.0, Quantile(xs, 0))
	assert.Equal(t, 7.0, Quantile([]float64{7}, 0.99))
	assert.True(t, math.IsNaN(Quantile(nil, 0.5)))
}

func TestRatio(t *testing.T) {
	assert.Equal(t, 2.5, Ratio(5, 2))
	assert.True(t, math.IsNaN(Ratio(1, 0)))
	assert.True(t, math.IsNaN(Ratio(math.NaN(), 1)))
}

func TestMannWhitneyP(t *testing.T) {
	// Fully separated samples of 5: exact two-sided p is 0.0079; the approximation is close.
	p := MannWhitneyP([]float64{1, 2, 3, 4, 5}, []float64{6, 7, 8, 9, 10})
	assert.InDelta(t, 0.012, p, 0.006)
	// Interleaved samples: no evidence of a difference.
	p = MannWhitneyP([]float64{1, 3, 5, 7, 9}, []float64{2, 4, 6, 8, 10})
	assert.Greater(t, p, 0.5)
	// Symmetric in its arguments.
	assert.InDelta(t, MannWhitneyP([]float64{1, 2, 3, 9}, []float64{4, 5, 6}), MannWhitneyP([]float64{4, 5, 6}, []float64{1, 2, 3, 9}), 1e-12)
	assert.Equal(t, 1.0, MannWhitneyP([]float64{2, 2, 2}, []float64{2, 2, 2}))
	assert.True(t, math.IsNaN(MannWhitneyP([]float64{1, 2}, []float64{3, 4, 5})))
}
