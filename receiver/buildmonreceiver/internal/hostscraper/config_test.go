package hostscraper

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewDefaultConfig(t *testing.T) {
	cfg := NewDefaultConfig()
	assert.True(t, cfg.Enabled)
	assert.Equal(t, time.Second, cfg.System.CollectionInterval)
	assert.Equal(t, time.Second, cfg.System.Timeout)
	assert.Equal(t, 5*time.Second, cfg.Resources.CollectionInterval)
	assert.Equal(t, 5*time.Second, cfg.Resources.Timeout)
	assert.Empty(t, cfg.RootPath)
	assert.Empty(t, cfg.Hostname)
	assert.Contains(t, cfg.Filesystems.ExcludeTypes, "proc")
	assert.Contains(t, cfg.Filesystems.ExcludeTypes, "tmpfs")
	assert.NotContains(t, cfg.Filesystems.ExcludeTypes, "overlay", "a container's root filesystem is an overlay")
	require.NoError(t, cfg.Validate())

	// The defaults are copies: changing one config leaves the next default alone.
	cfg.Disks.Exclude[0] = "changed"
	assert.NotEqual(t, "changed", NewDefaultConfig().Disks.Exclude[0])
}

func TestConfigValidate(t *testing.T) {
	file := filepath.Join("testdata", "root", "proc", "stat")
	absFile, err := filepath.Abs(file)
	require.NoError(t, err)
	absDir, err := filepath.Abs(filepath.Join("testdata", "root"))
	require.NoError(t, err)

	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // each error, in order; none for a valid config
	}{
		{name: "defaults", mutate: func(*Config) {}},
		{name: "root path", mutate: func(c *Config) { c.RootPath = absDir }},
		{name: "everything selected", mutate: func(c *Config) {
			c.Disks, c.Interfaces, c.Filesystems = MatchConfig{}, MatchConfig{}, FilesystemsConfig{}
		}},
		{
			name:   "system interval zero",
			mutate: func(c *Config) { c.System.CollectionInterval = 0 },
			want:   []string{"host.system.collection_interval must be positive"},
		},
		{
			name: "resources interval, timeout and initial delay negative",
			mutate: func(c *Config) {
				c.Resources.CollectionInterval = -time.Second
				c.Resources.Timeout = -time.Second
				c.Resources.InitialDelay = -time.Second
			},
			want: []string{
				"host.resources.collection_interval must be positive",
				"host.resources.timeout must not be negative",
				"host.resources.initial_delay must not be negative",
			},
		},
		{
			name:   "relative root path",
			mutate: func(c *Config) { c.RootPath = "hostfs" },
			want:   []string{`host.root_path "hostfs" must be an absolute path`},
		},
		{
			name:   "missing root path",
			mutate: func(c *Config) { c.RootPath = filepath.Join(absDir, "missing") },
			want:   []string{"host.root_path: stat " + filepath.Join(absDir, "missing") + ": no such file or directory"},
		},
		{
			name:   "root path is a file",
			mutate: func(c *Config) { c.RootPath = absFile },
			want:   []string{`host.root_path "` + absFile + `" is not a directory`},
		},
		{
			name:   "interface include regexp",
			mutate: func(c *Config) { c.Interfaces.Include = []string{"^eth", "("} },
			want:   []string{"host.interfaces.include[1]: invalid regexp: error parsing regexp: missing closing ): `(`"},
		},
		{
			name: "every list",
			mutate: func(c *Config) {
				c.Disks.Include = []string{"["}
				c.Disks.Exclude = []string{"a", "b", "*"}
				c.Interfaces.Exclude = []string{"a)"}
				c.Filesystems.IncludeMountpoints = []string{"+"}
				c.Filesystems.ExcludeMountpoints = []string{"^/ok", "a{2,1}"}
				c.Filesystems.IncludeTypes = []string{"ext4", ""}
				c.Filesystems.ExcludeTypes = []string{""}
			},
			want: []string{
				"host.disks.include[0]: invalid regexp: error parsing regexp: missing closing ]: `[`",
				"host.disks.exclude[2]: invalid regexp: error parsing regexp: missing argument to repetition operator: `*`",
				"host.interfaces.exclude[0]: invalid regexp: error parsing regexp: unexpected ): `a)`",
				"host.filesystems.include_mountpoints[0]: invalid regexp: error parsing regexp: missing argument to repetition operator: `+`",
				"host.filesystems.exclude_mountpoints[1]: invalid regexp: error parsing regexp: invalid repeat count: `{2,1}`",
				"host.filesystems.include_types[1] must not be empty",
				"host.filesystems.exclude_types[0] must not be empty",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewDefaultConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.want, strings.Split(err.Error(), "\n"))
		})
	}
}
