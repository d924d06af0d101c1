// Package hostmetrics reads the host's resources for the buildmon receiver: CPU and memory
// (the seed's system stats) and filesystems, disks and network interfaces (resource usage),
// each group on its own scraperhelper controller.
package hostmetrics // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostmetrics"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"go.opentelemetry.io/collector/scraper/scraperhelper"
)

// Config of the host metrics; the receiver embeds it under `host:`.
type Config struct {
	// Enabled switches host metrics on (default true).
	Enabled bool `mapstructure:"enabled"`
	// System is the controller of CPU and memory (default collection_interval 1s).
	System scraperhelper.ControllerConfig `mapstructure:"system"`
	// Resources is the controller of filesystems, disks and network (default collection_interval 5s).
	Resources scraperhelper.ControllerConfig `mapstructure:"resources"`
	// RootPath is where the host's / is mounted when running in a container ("" = /).
	RootPath string `mapstructure:"root_path"`
	// Hostname is the host.name resource attribute ("" = os.Hostname()).
	Hostname string `mapstructure:"hostname"`
	// Disks selects block devices by name (default: all but loop, ram and zram devices).
	Disks MatchConfig `mapstructure:"disks"`
	// Interfaces selects network interfaces by name (default: all, loopback included, so a
	// build's local traffic such as a test database on 127.0.0.1 shows up).
	Interfaces MatchConfig `mapstructure:"interfaces"`
	// Filesystems selects mounted filesystems (default: all but pseudo and memory filesystems).
	Filesystems FilesystemsConfig `mapstructure:"filesystems"`
}

// MatchConfig selects devices by name with regular expressions; an empty include list
// selects all, and exclude wins over include.
type MatchConfig struct {
	Include []string `mapstructure:"include"`
	Exclude []string `mapstructure:"exclude"`
}

// FilesystemsConfig selects filesystems by mount point and type.
type FilesystemsConfig struct {
	IncludeMountpoints []string `mapstructure:"include_mountpoints"`
	ExcludeMountpoints []string `mapstructure:"exclude_mountpoints"`
	ExcludeTypes       []string `mapstructure:"exclude_types"`
}

// pseudoFilesystems hold no build data; their usage would only add series. tmpfs and ramfs
// are excluded too: a host mounts many of them (/run, /dev/shm, cgroup roots) and their size
// is memory, already in system.memory.*. overlay is kept: inside a container the root
// filesystem, where a build writes, is an overlay mount.
var pseudoFilesystems = []string{
	"autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs",
	"fusectl", "hugetlbfs", "mqueue", "nfsd", "nsfs", "proc", "procfs", "pstore", "ramfs", "rpc_pipefs",
	"securityfs", "selinuxfs", "squashfs", "sysfs", "tmpfs", "tracefs",
}

// NewDefaultConfig returns the defaults: CPU and memory every second, the rest every 5 s.
func NewDefaultConfig() Config {
	system := scraperhelper.NewDefaultControllerConfig()
	system.CollectionInterval = time.Second
	system.Timeout = time.Second
	resources := scraperhelper.NewDefaultControllerConfig()
	resources.CollectionInterval = 5 * time.Second
	resources.Timeout = 5 * time.Second
	return Config{
		Enabled:     true,
		System:      system,
		Resources:   resources,
		Disks:       MatchConfig{Exclude: []string{"^loop", "^ram", "^zram"}},
		Filesystems: FilesystemsConfig{ExcludeTypes: append([]string(nil), pseudoFilesystems...)},
	}
}

// Validate reports every problem, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	for _, g := range []struct {
		name string
		cfg  scraperhelper.ControllerConfig
	}{{"system", c.System}, {"resources", c.Resources}} {
		if g.cfg.CollectionInterval <= 0 {
			errs = append(errs, fmt.Errorf("host.%s.collection_interval must be positive", g.name))
		}
		if g.cfg.Timeout < 0 {
			errs = append(errs, fmt.Errorf("host.%s.timeout must not be negative", g.name))
		}
	}
	if c.RootPath != "" {
		if !filepath.IsAbs(c.RootPath) {
			errs = append(errs, errors.New("host.root_path must be an absolute path"))
		} else if fi, err := os.Stat(c.RootPath); err != nil || !fi.IsDir() {
			errs = append(errs, fmt.Errorf("host.root_path %q is not a readable directory", c.RootPath))
		}
	}
	for _, l := range []struct {
		key  string
		list []string
	}{
		{"host.disks.include", c.Disks.Include}, {"host.disks.exclude", c.Disks.Exclude},
		{"host.interfaces.include", c.Interfaces.Include}, {"host.interfaces.exclude", c.Interfaces.Exclude},
		{"host.filesystems.include_mountpoints", c.Filesystems.IncludeMountpoints},
		{"host.filesystems.exclude_mountpoints", c.Filesystems.ExcludeMountpoints},
	} {
		for i, expr := range l.list {
			if _, err := regexp.Compile(expr); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: invalid regexp: %w", l.key, i, err))
			}
		}
	}
	return errors.Join(errs...)
}

// matcher is a compiled MatchConfig.
type matcher struct{ include, exclude []*regexp.Regexp }

func compile(include, exclude []string) matcher {
	var m matcher
	for _, e := range include {
		m.include = append(m.include, regexp.MustCompile(e))
	}
	for _, e := range exclude {
		m.exclude = append(m.exclude, regexp.MustCompile(e))
	}
	return m
}

func (m matcher) match(name string) bool {
	for _, r := range m.exclude {
		if r.MatchString(name) {
			return false
		}
	}
	if len(m.include) == 0 {
		return true
	}
	for _, r := range m.include {
		if r.MatchString(name) {
			return true
		}
	}
	return false
}
