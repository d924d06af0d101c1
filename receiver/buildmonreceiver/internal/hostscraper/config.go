// Package hostscraper measures the build host for the buildmon receiver: CPU and memory (the
// seed's system stats, every second) and filesystems, disks and network interfaces (the seed's
// resource usage, every 5 s), each group on its own scraperhelper controller. It reads the host
// through gopsutil v4 on Linux, macOS and Windows (on Linux honoring root_path, so it works
// from a container with the host's / mounted), behind the hostSource interface, and records
// through the schema's generated MetricsBuilder.
package hostscraper // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"go.opentelemetry.io/collector/scraper/scraperhelper"
)

// Config of the host metrics; the receiver embeds it under the key `host:`.
type Config struct {
	// Enabled switches host metrics on (default true).
	Enabled bool `mapstructure:"enabled"`
	// System is the controller of CPU and memory (default collection_interval 1s, timeout 1s).
	System scraperhelper.ControllerConfig `mapstructure:"system"`
	// Resources is the controller of filesystems, disks and network interfaces (default
	// collection_interval 5s, timeout 5s).
	Resources scraperhelper.ControllerConfig `mapstructure:"resources"`
	// RootPath is where the host's / is mounted when the collector runs in a container, e.g.
	// /hostfs ("" = /). gopsutil reads <root_path>/proc, /sys, /etc, /var, /run and /dev
	// instead of the collector's own, and filesystem sizes come from <root_path>/<mount point>.
	RootPath string `mapstructure:"root_path"`
	// Hostname is the host.name of the host metrics (default: os.Hostname()).
	Hostname string `mapstructure:"hostname"`
	// Disks selects block devices by name (default: whole disks only, see defaultDiskExcludes).
	Disks MatchConfig `mapstructure:"disks"`
	// Interfaces selects network interfaces by name (default: all but loopback and virtual
	// container plumbing, see defaultInterfaceExcludes).
	Interfaces MatchConfig `mapstructure:"interfaces"`
	// Filesystems selects mounted filesystems by mount point and type (default: all but pseudo
	// and memory filesystems and container runtime internals).
	Filesystems FilesystemsConfig `mapstructure:"filesystems"`
}

// MatchConfig selects names with regular expressions: an empty include list selects every
// name, and exclude wins over include.
type MatchConfig struct {
	Include []string `mapstructure:"include"`
	Exclude []string `mapstructure:"exclude"`
}

// FilesystemsConfig selects filesystems. Mount points are matched with regular expressions,
// types by exact name; an empty include list selects all, and exclude wins over include.
type FilesystemsConfig struct {
	IncludeMountpoints []string `mapstructure:"include_mountpoints"`
	ExcludeMountpoints []string `mapstructure:"exclude_mountpoints"`
	IncludeTypes       []string `mapstructure:"include_types"`
	ExcludeTypes       []string `mapstructure:"exclude_types"`
}

// defaultDiskExcludes keep whole physical disks only. The processor adds the disks' IOPS up
// into the host's io_operations, and a partition's or a device-mapper/RAID volume's IO is
// already counted on the disk beneath it; loop, RAM and optical devices are no build IO.
var defaultDiskExcludes = []string{
	`^(loop|ram|zram|sr|fd)\d+$`,
	`^(sd|hd|vd|xvd)[a-z]+\d+$`,
	`^(nvme\d+n\d+|mmcblk\d+)p\d+$`,
	`^(dm|md)-?\d+$`,
}

// defaultInterfaceExcludes drop loopback (by its name on Linux, macOS and Windows) and the
// virtual interfaces that carry container traffic a second time (veth pairs, bridges, overlay
// and shaping devices): the processor adds the interfaces' rates up into the host's
// network_bandwidth.
var defaultInterfaceExcludes = []string{
	`^lo\d*$`,                         // Linux lo, macOS lo0
	`^Loopback Pseudo-Interface \d+$`, // Windows
	`^(veth|docker|br-|virbr|cni|flannel|cali|vxlan|ifb)`,
}

// defaultExcludedTypes hold no build data (devfs is macOS's /dev), or only memory (tmpfs, ramfs: already in
// system.memory.*). squashfs images (snaps) are always 100 % full and would only trip disk
// alerts. overlay is kept: inside a container the root filesystem, where a build writes, is one.
var defaultExcludedTypes = []string{
	"autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devfs", "devpts", "devtmpfs",
	"efivarfs", "fuse.lxcfs", "fusectl", "hugetlbfs", "mqueue", "nfsd", "nsfs", "proc", "pstore",
	"ramfs", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tmpfs", "tracefs",
}

// defaultExcludedMountpoints are container runtimes' own mounts (one overlay per container on
// the host's disk, reported once at the disk's own mount point).
var defaultExcludedMountpoints = []string{
	`^/var/lib/(docker|containers|kubelet)/`,
	`^/run/(containerd|docker|netns)/`,
}

// NewDefaultConfig returns the defaults: CPU and memory every second, the rest every 5 s (the
// seed's intervals), each scrape bounded by its interval.
func NewDefaultConfig() Config {
	system := scraperhelper.NewDefaultControllerConfig()
	system.CollectionInterval = time.Second
	system.Timeout = time.Second
	resources := scraperhelper.NewDefaultControllerConfig()
	resources.CollectionInterval = 5 * time.Second
	resources.Timeout = 5 * time.Second
	return Config{
		Enabled:    true,
		System:     system,
		Resources:  resources,
		Disks:      MatchConfig{Exclude: slices.Clone(defaultDiskExcludes)},
		Interfaces: MatchConfig{Exclude: slices.Clone(defaultInterfaceExcludes)},
		Filesystems: FilesystemsConfig{
			ExcludeMountpoints: slices.Clone(defaultExcludedMountpoints),
			ExcludeTypes:       slices.Clone(defaultExcludedTypes),
		},
	}
}

// Validate reports every problem at once, each naming its key under `host.`.
func (c *Config) Validate() error {
	var errs []error
	for _, g := range []struct {
		key string
		cfg *scraperhelper.ControllerConfig
	}{{"host.system", &c.System}, {"host.resources", &c.Resources}} {
		if g.cfg.CollectionInterval <= 0 {
			errs = append(errs, fmt.Errorf("%s.collection_interval must be positive", g.key))
		}
		if g.cfg.Timeout < 0 {
			errs = append(errs, fmt.Errorf("%s.timeout must not be negative", g.key))
		}
		if g.cfg.InitialDelay < 0 {
			errs = append(errs, fmt.Errorf("%s.initial_delay must not be negative", g.key))
		}
	}
	if c.RootPath != "" {
		if !filepath.IsAbs(c.RootPath) {
			errs = append(errs, fmt.Errorf("host.root_path %q must be an absolute path", c.RootPath))
		} else if fi, err := os.Stat(c.RootPath); err != nil {
			errs = append(errs, fmt.Errorf("host.root_path: %w", err))
		} else if !fi.IsDir() {
			errs = append(errs, fmt.Errorf("host.root_path %q is not a directory", c.RootPath))
		}
	}
	for _, l := range []struct {
		key  string
		list []string
	}{
		{"host.disks.include", c.Disks.Include},
		{"host.disks.exclude", c.Disks.Exclude},
		{"host.interfaces.include", c.Interfaces.Include},
		{"host.interfaces.exclude", c.Interfaces.Exclude},
		{"host.filesystems.include_mountpoints", c.Filesystems.IncludeMountpoints},
		{"host.filesystems.exclude_mountpoints", c.Filesystems.ExcludeMountpoints},
	} {
		for i, expr := range l.list {
			if _, err := regexp.Compile(expr); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: invalid regexp: %w", l.key, i, err))
			}
		}
	}
	for _, l := range []struct {
		key  string
		list []string
	}{
		{"host.filesystems.include_types", c.Filesystems.IncludeTypes},
		{"host.filesystems.exclude_types", c.Filesystems.ExcludeTypes},
	} {
		for i, t := range l.list {
			if t == "" {
				errs = append(errs, fmt.Errorf("%s[%d] must not be empty", l.key, i))
			}
		}
	}
	return errors.Join(errs...)
}
