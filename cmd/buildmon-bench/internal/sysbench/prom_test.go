package sysbench

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPromValue(t *testing.T) {
	exp := []byte(`# HELP build_progress_ratio Weighted overall progress
# TYPE build_progress_ratio gauge
build_progress_ratio{cicd_pipeline_name="p",cicd_pipeline_run_id="b-1",host_name="h"} 0.25
build_progress_ratio{cicd_pipeline_name="p",cicd_pipeline_run_id="b-10",host_name="h"} 0.5 1700000000000
build_progress_ratio_other{cicd_pipeline_run_id="b-2"} 1
build_progress_ratio{xcicd_pipeline_run_id="b-3"} 1
build_progress_ratio{cicd_pipeline_run_id="b-3",host_name="h"} 7.5e-01`)
	v, ok := promValue(exp, "build_progress_ratio", "cicd_pipeline_run_id", "b-1")
	assert.True(t, ok)
	assert.Equal(t, 0.25, v)
	v, ok = promValue(exp, "build_progress_ratio", "cicd_pipeline_run_id", "b-10")
	assert.True(t, ok)
	assert.Equal(t, 0.5, v)
	v, ok = promValue(exp, "build_progress_ratio", "cicd_pipeline_run_id", "b-3")
	assert.True(t, ok)
	assert.Equal(t, 0.75, v)
	_, ok = promValue(exp, "build_progress_ratio", "cicd_pipeline_run_id", "b-2")
	assert.False(t, ok)
	_, ok = promValue(nil, "build_progress_ratio", "cicd_pipeline_run_id", "b-1")
	assert.False(t, ok)
}
