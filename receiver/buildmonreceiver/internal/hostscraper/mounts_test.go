package hostscraper

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testMountTable(t *testing.T, root string, cfg FilesystemsConfig) *mountTable {
	t.Helper()
	mp, err := newNameFilter("host.filesystems", MatchConfig{Include: cfg.IncludeMountpoints, Exclude: cfg.ExcludeMountpoints})
	require.NoError(t, err)
	return newMountTable(func(p string) string { return filepath.Join("/", root, p) }, mp, newTypeFilter(cfg.IncludeTypes, cfg.ExcludeTypes))
}

func mountpointsOf(entries []*mountEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.mountpoint)
	}
	return out
}

func TestMountTableSelection(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "root", "proc", "1", "mountinfo"))
	require.NoError(t, err)

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
			assert.Equal(t, tt.want, mountpointsOf(mt.update(data)))
		})
	}
}

func TestMountTableEntries(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "root", "proc", "1", "mountinfo"))
	require.NoError(t, err)
	mt := testMountTable(t, "/hostfs", NewDefaultConfig().Filesystems)
	got := mt.update(data)
	require.Len(t, got, 3)
	assert.Equal(t, mountEntry{
		line: "29 22 8:16 / /work\\040dir rw,relatime shared:3 - ext4 /dev/sdb rw", devID: "8:16",
		device: "/dev/sdb", mountpoint: "/work dir", fstype: "ext4", statPath: "/hostfs/work dir", fsRoot: true, keep: true,
	}, *got[2])
	assert.Equal(t, "/hostfs", got[0].statPath)
	assert.Equal(t, "/dev/nvme0n1p1", got[1].device)

	// The next read of the same table reuses the parsed entries.
	again := mountpointsOf(mt.update(data))
	assert.Equal(t, []string{"/", "/data", "/work dir"}, again)
	allocs := testing.AllocsPerRun(50, func() { mt.update(data) })
	assert.Zero(t, allocs, "an unchanged mount table allocates nothing")

	// A mount that goes away is forgotten; a new one is parsed.
	changed := []byte("22 1 8:0 / / rw - ext4 /dev/sda rw\n40 22 8:48 / /builds rw - btrfs /dev/sdd rw\n")
	assert.Equal(t, []string{"/", "/builds"}, mountpointsOf(mt.update(changed)))
	assert.Len(t, mt.prev, 2)
}

// The kernel calls the root device /dev/root when it was named on its command line; the
// block device's sysfs link has the real name.
func TestMountTableDevRoot(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "sys", "dev", "block"), 0o755))
	require.NoError(t, os.Symlink("../../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda2",
		filepath.Join(root, "sys", "dev", "block", "8:2")))
	mt := testMountTable(t, root, FilesystemsConfig{})
	got := mt.update([]byte("22 1 8:2 / / rw - ext4 /dev/root rw\n23 22 8:3 / /boot rw - ext4 /dev/root rw\n"))
	require.Len(t, got, 2)
	assert.Equal(t, "/dev/sda2", got[0].device)
	assert.Equal(t, "/dev/root", got[1].device, "no sysfs link: the name stays")
}
