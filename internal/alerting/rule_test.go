package alerting

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func thresholds(kv ...any) Thresholds {
	var t Thresholds
	for i := 0; i < len(kv); i += 2 {
		t.Set(kv[i].(Level), kv[i+1].(float64))
	}
	return t
}

func TestThresholdsValidate(t *testing.T) {
	tests := []struct {
		name string
		th   Thresholds
		dir  Direction
		err  string
	}{
		{"one level", thresholds(Warning, 0.9), Above, ""},
		{"all levels above", thresholds(Info, 0.5, Warning, 0.7, Error, 0.9, Critical, 0.99), Above, ""},
		{"all levels below", thresholds(Info, 0.5, Warning, 0.3, Error, 0.1, Critical, 0.0), Below, ""},
		{"gap in levels", thresholds(Info, 1.0, Critical, 2.0), Above, ""},
		{"none", Thresholds{}, Above, "thresholds must set at least one of info, warning, error, critical"},
		{"out of order above", thresholds(Warning, 0.9, Error, 0.8), Above,
			"thresholds.error (0.8) must be greater than thresholds.warning (0.9) for direction above"},
		{"equal above", thresholds(Warning, 0.9, Critical, 0.9), Above,
			"thresholds.critical (0.9) must be greater than thresholds.warning (0.9) for direction above"},
		{"out of order below", thresholds(Info, 0.1, Critical, 0.5), Below,
			"thresholds.critical (0.5) must be less than thresholds.info (0.1) for direction below"},
		{"not finite", thresholds(Error, math.Inf(1)), Above, "thresholds.error must be a finite number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.th.Validate(tt.dir)
			if tt.err == "" {
				assert.NoError(t, err)
				return
			}
			assert.EqualError(t, err, tt.err)
		})
	}
}

func TestRuleLevel(t *testing.T) {
	above := Rule{Thresholds: thresholds(Info, 0.5, Warning, 0.7, Critical, 0.9)}
	below := Rule{Direction: Below, Thresholds: thresholds(Warning, 0.2, Critical, 0.05)}
	tests := []struct {
		rule *Rule
		v    float64
		want Level
	}{
		{&above, 0.1, None},
		{&above, 0.5, Info}, // reaching a threshold crosses it
		{&above, 0.8, Warning},
		{&above, 0.95, Critical},
		{&above, math.NaN(), None},
		{&below, 0.5, None},
		{&below, 0.2, Warning},
		{&below, 0.01, Critical},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.rule.Level(tt.v), "%s %v", tt.rule.Direction, tt.v)
	}
}

func TestParseDirectionAndLevels(t *testing.T) {
	d, err := ParseDirection("")
	require.NoError(t, err)
	assert.Equal(t, Above, d)
	d, err = ParseDirection("below")
	require.NoError(t, err)
	assert.Equal(t, "below", d.String())
	_, err = ParseDirection("sideways")
	assert.EqualError(t, err, `unknown direction "sideways" (want above or below)`)

	assert.Equal(t, "CRITICAL", Critical.String())
	assert.False(t, Info.Notifies())
	assert.True(t, Warning.Notifies())
	assert.True(t, Critical.Pauses())
	assert.False(t, Error.Pauses())
}
