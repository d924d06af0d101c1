package hostscraper

import (
	"path/filepath"
	"testing"

	"github.com/shirou/gopsutil/v4/disk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testMountTable(t *testing.T, root string, cfg FilesystemsConfig) *mountTable {
	t.Helper()
	mp, err := newNameFilter("host.filesystems", MatchConfig{Include: cfg.IncludeMountpoints, Exclude: cfg.ExcludeMountpoints})
	require.NoError(t, err)
	return newMountTable(func(p string) string { return filepath.Join(root, p) }, mp, newTypeFilter(cfg.IncludeTypes, cfg.ExcludeTypes))
}

func mountpointsOf(entries []*mountEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.mountpoint)
	}
	return out
}

func TestMountTableSelection(t *testing.T) {
	parts := linuxSource().parts
	tests := []struct {
		name string
		cfg  FilesystemsConfig
		want []string
	}{
		// /proc, /tmp, /snap (types) and docker's overlay (mount point) are excluded; /mnt/cache
		// binds a directory of /'s filesystem, measured at /; /scratch is mounted over by a tmpfs.
		{name: "defaults", cfg: NewDefaultConfig().Filesystems, want: []string{"/", "/data", "/work dir"}},
		{
			name: "without / the bind mount stands for its filesystem",
			cfg: FilesystemsConfig{
				ExcludeMountpoints: append([]string{"^/$"}, NewDefaultConfig().Filesystems.ExcludeMountpoints...),
				ExcludeTypes:       NewDefaultConfig().Filesystems.ExcludeTypes,
			},
			want: []string{"/data", "/mnt/cache", "/work dir"},
		},
		{
			name: "include types",
			cfg:  FilesystemsConfig{IncludeTypes: []string{"xfs", "overlay"}},
			want: []string{"/data", "/var/lib/docker/overlay2/0f1e/merged"},
		},
		{
			name: "include mount points",
			cfg:  FilesystemsConfig{IncludeMountpoints: []string{"^/(data|scratch)$"}},
			want: []string{"/data", "/scratch"}, // the tmpfs that /scratch shows
		},
		{
			name: "everything",
			want: []string{"/", "/proc", "/data", "/tmp", "/snap/core/123", "/var/lib/docker/overlay2/0f1e/merged", "/work dir", "/scratch"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mt := testMountTable(t, "/hostfs", tt.cfg)
			assert.Equal(t, tt.want, mountpointsOf(mt.update(parts)))
		})
	}
}

// A bind mount listed before its filesystem's own mount gives way to it; every tmpfs is a
// filesystem of its own although all are called tmpfs.
func TestMountTableBindFirstAndPseudoDevices(t *testing.T) {
	mt := testMountTable(t, "", FilesystemsConfig{})
	got := mt.update([]disk.PartitionStat{
		{Device: "/dev/sdb1", Mountpoint: "/etc/hosts", Fstype: "ext4", Opts: []string{"rw", "bind"}},
		{Device: "tmpfs", Mountpoint: "/run", Fstype: "tmpfs"},
		{Device: "/dev/sdb1", Mountpoint: "/builds", Fstype: "ext4", Opts: []string{"rw"}},
		{Device: "tmpfs", Mountpoint: "/dev/shm", Fstype: "tmpfs"},
		{Device: "/dev/sdb1", Mountpoint: "/cache", Fstype: "ext4", Opts: []string{"rw", "bind"}},
	})
	assert.Equal(t, []string{"/builds", "/run", "/dev/shm"}, mountpointsOf(got))
}

func TestMountTableEntries(t *testing.T) {
	parts := linuxSource().parts
	mt := testMountTable(t, "/hostfs", NewDefaultConfig().Filesystems)
	got := mt.update(parts)
	require.Len(t, got, 3)
	assert.Equal(t, mountEntry{
		device: "/dev/sdb", mountpoint: "/work dir", fstype: "ext4", statPath: "/hostfs/work dir", keep: true,
	}, *got[2])
	assert.Equal(t, "/hostfs", got[0].statPath)
	assert.Equal(t, "/dev/nvme0n1p1", got[1].device)

	// The next read of the same table reuses the entries.
	first := got[0]
	again := mt.update(parts)
	assert.Equal(t, []string{"/", "/data", "/work dir"}, mountpointsOf(again))
	assert.Same(t, first, again[0])
	allocs := testing.AllocsPerRun(50, func() { mt.update(parts) })
	assert.Zero(t, allocs, "an unchanged mount table allocates nothing")

	// A mount that goes away is forgotten; a new one is added.
	changed := []disk.PartitionStat{
		{Device: "/dev/sda", Mountpoint: "/", Fstype: "ext4"},
		{Device: "/dev/sdd", Mountpoint: "/builds", Fstype: "btrfs"},
	}
	assert.Equal(t, []string{"/", "/builds"}, mountpointsOf(mt.update(changed)))
	assert.Len(t, mt.prev, 2)
}
