package hostscraper

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNameFilter(t *testing.T) {
	tests := []struct {
		name    string
		cfg     MatchConfig
		in, out []string
	}{
		{name: "empty selects all", in: []string{"lo", "eth0", "sda1"}},
		{name: "include", cfg: MatchConfig{Include: []string{"^sd", "^nvme"}}, in: []string{"sda", "nvme0n1"}, out: []string{"vda", "loop0"}},
		{name: "exclude wins over include", cfg: MatchConfig{Include: []string{"^sd"}, Exclude: []string{"^sda1$"}}, in: []string{"sda", "sdb1"}, out: []string{"sda1", "vda"}},
		{name: "exclude only", cfg: MatchConfig{Exclude: []string{"^lo$"}}, in: []string{"eth0", "lo0", "eth0-lo"}, out: []string{"lo"}},
		{
			name: "default disks: whole disks only",
			cfg:  NewDefaultConfig().Disks,
			in:   []string{"sda", "sdab", "vda", "xvda", "hdc", "nvme0n1", "nvme10n2", "mmcblk0", "nbd0"},
			out: []string{
				"sda1", "sdab12", "vda3", "xvda1", "nvme0n1p1", "nvme10n2p15", "mmcblk0p2",
				"loop0", "loop12", "ram0", "zram0", "sr0", "fd0", "dm-0", "dm-12", "md0", "md127",
			},
		},
		{
			name: "default interfaces: no loopback or container plumbing",
			cfg:  NewDefaultConfig().Interfaces,
			in:   []string{"eth0", "ens5", "enp0s3", "wlan0", "bond0", "eth0.100", "tun0", "wg0", "en0", "utun0", "Ethernet", "Wi-Fi"},
			out:  []string{"lo", "lo0", "Loopback Pseudo-Interface 1", "veth1a2b", "docker0", "br-5f3c", "virbr0", "cni0", "flannel.1", "cali12ab", "vxlan.calico", "ifb0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := newNameFilter("host.x", tt.cfg)
			require.NoError(t, err)
			for _, n := range tt.in {
				assert.True(t, f.match(n), "%s should be selected", n)
			}
			for _, n := range tt.out {
				assert.False(t, f.match(n), "%s should not be selected", n)
			}
		})
	}
}

func TestNameFilterInvalid(t *testing.T) {
	_, err := newNameFilter("host.disks", MatchConfig{Include: []string{"ok"}, Exclude: []string{"ok", "("}})
	assert.EqualError(t, err, "host.disks.exclude[1]: invalid regexp: error parsing regexp: missing closing ): `(`")
}

func TestTypeFilter(t *testing.T) {
	def := NewDefaultConfig().Filesystems
	f := newTypeFilter(def.IncludeTypes, def.ExcludeTypes)
	for _, typ := range []string{"ext4", "xfs", "btrfs", "overlay", "nfs4", "zfs"} {
		assert.True(t, f.match(typ), typ)
	}
	for _, typ := range []string{"proc", "sysfs", "tmpfs", "cgroup2", "squashfs", "devtmpfs", "fuse.lxcfs"} {
		assert.False(t, f.match(typ), typ)
	}

	f = newTypeFilter([]string{"ext4", "xfs"}, []string{"xfs"})
	assert.True(t, f.match("ext4"))
	assert.False(t, f.match("xfs"), "exclude wins over include")
	assert.False(t, f.match("btrfs"), "not included")
}

func TestCounterSet(t *testing.T) {
	f, err := newNameFilter("host.interfaces", MatchConfig{Exclude: []string{"^lo$"}})
	require.NoError(t, err)
	s := newCounterSet(f)

	// First read: new names, matched once, no previous counters.
	e := s.lookup("eth0")
	assert.Equal(t, counterEntry{name: "eth0", keep: true}, e)
	e.last, e.hasLast = ioCounters{readBytes: 10}, true
	s.store(e)
	lo := s.lookup("lo")
	assert.False(t, lo.keep)
	s.store(lo)
	s.rotate()

	// Second read: eth0 comes back with its counters and the same string.
	e = s.lookup("eth0")
	assert.True(t, e.hasLast)
	assert.Equal(t, uint64(10), e.last.readBytes)
	e.last = ioCounters{readBytes: 20}
	s.store(e)
	s.rotate() // lo was not seen in this read

	// A failed read keeps the previous read's entries.
	s.store(counterEntry{name: "eth0", keep: true, hasLast: true, last: ioCounters{readBytes: 99}})
	s.discard()
	assert.Equal(t, uint64(20), s.lookup("eth0").last.readBytes)

	// A name that was missing from a read is new again.
	assert.False(t, s.lookup("lo").hasLast)
}

func TestCounterSetLookupAllocatesNothingForKnownNames(t *testing.T) {
	f, err := newNameFilter("host.disks", MatchConfig{})
	require.NoError(t, err)
	s := newCounterSet(f)
	name := "sda"
	s.store(s.lookup(name))
	s.rotate()
	allocs := testing.AllocsPerRun(100, func() {
		s.store(s.lookup(name))
		s.rotate()
	})
	assert.Zero(t, allocs)
}
