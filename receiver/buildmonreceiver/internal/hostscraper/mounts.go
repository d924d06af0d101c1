package hostscraper // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper"

import (
	"slices"

	"github.com/shirou/gopsutil/v4/disk"
)

// mountTable turns the mounts gopsutil lists into the filesystems to measure: each filesystem
// once, at a mount point where it is visible, if the filters select it. Entries are kept for
// the next read (a mount table rarely changes), so the filters run once per mount.
type mountTable struct {
	hostPath    func(string) string // the host's path as the collector reaches it (root_path)
	mountpoints nameFilter
	types       typeFilter

	// cur holds the entries of the read in progress by mount, prev those of the previous read.
	cur, prev map[mountKey]*mountEntry
	// Scratch space of update, reused.
	lines  []*mountEntry
	lastAt map[string]int // mount point → index in lines of the last mount on it
	byDev  map[string]int // block device → index in chosen
	chosen []*mountEntry
}

// mountKey is what identifies a mount in gopsutil's list.
type mountKey struct {
	device, mountpoint, fstype string
	bind                       bool
}

// mountEntry is one mount.
type mountEntry struct {
	device     string // what was mounted (/dev/sda1, overlay, server:/export, C:)
	mountpoint string // as the host sees it
	fstype     string
	statPath   string // the mount point as the collector reaches it
	// bind is set for a bind mount of a subdirectory (a container's /etc/hosts, a volume):
	// gopsutil flags it on Linux with the option "bind".
	bind bool
	// keep is set when the filters select the mount.
	keep bool
}

func newMountTable(hostPath func(string) string, mountpoints nameFilter, types typeFilter) *mountTable {
	return &mountTable{
		hostPath: hostPath, mountpoints: mountpoints, types: types,
		cur: map[mountKey]*mountEntry{}, prev: map[mountKey]*mountEntry{},
		lastAt: map[string]int{}, byDev: map[string]int{},
	}
}

// update returns the filesystems to measure of the mounts parts, in mount order; the slice
// is valid until the next update. A mount point mounted over again shows only the last mount
// (that is what statfs sees); a block device mounted at several places is measured once, at a
// mount of its root if it has one, else at the first selected place.
func (t *mountTable) update(parts []disk.PartitionStat) []*mountEntry {
	t.lines = t.lines[:0]
	for i := range parts {
		p := &parts[i]
		k := mountKey{device: p.Device, mountpoint: p.Mountpoint, fstype: p.Fstype, bind: slices.Contains(p.Opts, "bind")}
		e, ok := t.cur[k]
		if !ok {
			if e, ok = t.prev[k]; !ok {
				e = t.entry(k)
			}
			t.cur[k] = e
		}
		t.lines = append(t.lines, e)
	}
	t.prev, t.cur = t.cur, t.prev
	clear(t.cur)

	clear(t.lastAt)
	for i, e := range t.lines {
		t.lastAt[e.mountpoint] = i
	}
	clear(t.byDev)
	t.chosen = t.chosen[:0]
	for i, e := range t.lines {
		if !e.keep || t.lastAt[e.mountpoint] != i {
			continue
		}
		// Only block devices (a path) are one filesystem by name: every tmpfs or overlay
		// mount is one of its own.
		if len(e.device) > 0 && e.device[0] == '/' {
			if j, seen := t.byDev[e.device]; seen {
				if !e.bind && t.chosen[j].bind {
					t.chosen[j] = e
				}
				continue
			}
			t.byDev[e.device] = len(t.chosen)
		}
		t.chosen = append(t.chosen, e)
	}
	return t.chosen
}

func (t *mountTable) entry(k mountKey) *mountEntry {
	return &mountEntry{
		device:     k.device,
		mountpoint: k.mountpoint,
		fstype:     k.fstype,
		statPath:   t.hostPath(k.mountpoint),
		bind:       k.bind,
		keep:       t.types.match(k.fstype) && t.mountpoints.match(k.mountpoint),
	}
}
