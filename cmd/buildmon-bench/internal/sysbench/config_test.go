package sysbench

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func defaultConfig(t *testing.T) []byte {
	// The repository's default config, which the bench copies.
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "testdata", "config.yaml"))
	require.NoError(t, err)
	return data
}

func TestRenderConfigReplacesEveryPort(t *testing.T) {
	out, ports, err := RenderConfig(defaultConfig(t), []Override{
		{Path: "receivers.buildmon.max_builds", Value: 20000},
		{Path: "receivers.buildmon.rate_limit.events_per_second", Value: 1e9},
		{Path: "exporters.debug", Value: nil},
		{Path: "no.such.key", Value: nil},
	})
	require.NoError(t, err)
	text := string(out)
	for _, old := range []string{"4320", "4321", "9464", "13133", "1777", "8888"} {
		assert.NotContains(t, text, ":"+old+"\n", "port %s left in the bench config", old)
		assert.NotContains(t, text, "port: "+old+"\n")
	}
	seen := map[int]bool{}
	for _, p := range []int{ports.Events, ports.Status, ports.Prometheus, ports.Health} {
		assert.Positive(t, p)
		assert.False(t, seen[p], "ports are distinct")
		seen[p] = true
		assert.Contains(t, text, "127.0.0.1:"+strconv.Itoa(p))
	}

	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(out, &cfg))
	v, ok := lookup(cfg, "receivers.buildmon.max_builds")
	require.True(t, ok)
	assert.Equal(t, 20000, v)
	v, ok = lookup(cfg, "receivers.buildmon.rate_limit.events_per_second")
	require.True(t, ok)
	assert.Equal(t, 1e9, v)
	_, ok = lookup(cfg, "exporters.debug")
	assert.False(t, ok)
	telemetryPort, ok := lookup(cfg, "service.telemetry.metrics")
	require.True(t, ok)
	assert.NotContains(t, strings.TrimSpace(func() string { b, _ := yaml.Marshal(telemetryPort); return string(b) }()), "8888")

	dir, err := Lookup(out, "exporters.checkpoint.directory")
	require.NoError(t, err)
	assert.Equal(t, "./var/buildmon/checkpoints", dir)
}

// The default config has no pprof extension; profiling runs add it, on a free port.
func TestAddPprof(t *testing.T) {
	_, plain, err := RenderConfig(defaultConfig(t), nil)
	require.NoError(t, err)
	assert.Zero(t, plain.Pprof, "the default config serves no pprof")

	withPprof, err := AddPprof(defaultConfig(t))
	require.NoError(t, err)
	out, ports, err := RenderConfig(withPprof, nil)
	require.NoError(t, err)
	assert.Positive(t, ports.Pprof)
	assert.NotContains(t, string(out), ":1777")
	var cfg struct {
		Service struct {
			Extensions []string `yaml:"extensions"`
		} `yaml:"service"`
	}
	require.NoError(t, yaml.Unmarshal(out, &cfg))
	assert.Contains(t, cfg.Service.Extensions, "pprof")

	again, err := AddPprof(withPprof)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(again, &cfg))
	n := 0
	for _, e := range cfg.Service.Extensions {
		if e == "pprof" {
			n++
		}
	}
	assert.Equal(t, 1, n, "adding it twice lists it once")

	_, err = AddPprof([]byte("receivers: {}\n"))
	assert.Error(t, err, "a config without a service section")
}

func TestRenderConfigErrors(t *testing.T) {
	_, _, err := RenderConfig([]byte("receivers: ["), nil)
	require.ErrorContains(t, err, "parsing")
	_, _, err = RenderConfig([]byte("receivers: {}\n"), nil)
	require.ErrorContains(t, err, "receivers.buildmon.events.endpoint")
	_, _, err = RenderConfig(defaultConfig(t), []Override{{Path: "receivers.buildmon.events.endpoint.x", Value: 1}})
	require.ErrorContains(t, err, "not a mapping")
	_, _, err = RenderConfig([]byte(strings.ReplaceAll(string(defaultConfig(t)), "127.0.0.1:4321", "0.0.0.0:4321")), nil)
	require.ErrorContains(t, err, "exporters.checkpoint.status.endpoint")
}
