package sysbench

import (
	"bytes"
	"compress/gzip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStepsOnDisk(t *testing.T) {
	ids := map[string]bool{"b-1": true, "b-2": true, "b-9": true}
	stamped := []byte(`{"version":1,"builds":{"b-1":{"id":"b-1","phases":[{"name":"INIT","steps_completed":{"v":9,"t":1}},{"name":"BUILD","steps_completed":{"v":42,"t":5}}]},
		"b-2":{"id":"b-2","phases":[{"name":"BUILD","steps_completed":{"v":7}}]},"b-3":{"id":"b-3","phases":[{"name":"BUILD","steps_completed":{"v":1}}]}}}`)
	got, ok := stepsOnDisk(stamped, ids, "BUILD")
	require.True(t, ok)
	assert.Equal(t, map[string]int64{"b-1": 42, "b-2": 7}, got)

	plain := []byte(`[{"build_id":"b-9","phases":{"BUILD":{"steps_completed":3}}}]`)
	got, ok = stepsOnDisk(plain, ids, "BUILD")
	require.True(t, ok)
	assert.Equal(t, map[string]int64{"b-9": 3}, got)

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(stamped)
	require.NoError(t, zw.Close())
	got, ok = stepsOnDisk(gz.Bytes(), ids, "BUILD")
	require.True(t, ok)
	assert.Equal(t, int64(42), got["b-1"])

	_, ok = stepsOnDisk([]byte("\x00\x01encrypted"), ids, "BUILD")
	assert.False(t, ok)
}
