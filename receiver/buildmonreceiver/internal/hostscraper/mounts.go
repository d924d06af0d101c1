package hostscraper // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper"

import (
	"os"
	"path/filepath"
)

// mountTable turns the mount table into the filesystems to measure: each filesystem once,
// at a mount point where it is visible, if the filters select it. Parsed lines are kept for
// the next read (a mount table rarely changes), so a steady host allocates nothing here.
type mountTable struct {
	hostPath    func(string) string // the host's path under root_path
	mountpoints nameFilter
	types       typeFilter

	// cur holds the entries of the read in progress by line, prev those of the previous read.
	cur, prev map[string]*mountEntry
	// Scratch space of update, reused.
	lines  []*mountEntry
	lastAt map[string]int // mount point → index in lines of the last mount on it
	byDev  map[string]int // device id → index in chosen
	chosen []*mountEntry
}

// mountEntry is one mount.
type mountEntry struct {
	line       string // the mountinfo line, the entry's key
	devID      string // major:minor of the filesystem
	device     string // what was mounted (/dev/sda1, overlay, server:/export)
	mountpoint string // as the host sees it
	fstype     string
	statPath   string // the mount point under root_path
	// fsRoot is set when the mount shows the root of its filesystem; a bind mount of a
	// subdirectory (a container's /etc/hosts, a volume) is not.
	fsRoot bool
	// keep is set when the filters select the mount.
	keep bool
}

func newMountTable(hostPath func(string) string, mountpoints nameFilter, types typeFilter) *mountTable {
	return &mountTable{
		hostPath: hostPath, mountpoints: mountpoints, types: types,
		cur: map[string]*mountEntry{}, prev: map[string]*mountEntry{},
		lastAt: map[string]int{}, byDev: map[string]int{},
	}
}

// update reads a mountinfo file and returns the filesystems to measure, in mount order; the
// slice is valid until the next update. A mount point mounted over again shows only the last
// mount (that is what statfs sees); a filesystem mounted at several places is measured once,
// at its own mount (a mount of its root) if it has one, else at the first selected place.
func (t *mountTable) update(data []byte) []*mountEntry {
	t.lines = t.lines[:0]
	for len(data) > 0 {
		var line []byte
		line, data = cutLine(data)
		e, ok := t.cur[string(line)]
		if !ok {
			if e, ok = t.prev[string(line)]; !ok {
				if e = t.parse(line); e == nil {
					continue
				}
			}
			t.cur[e.line] = e // not string(line): storing that key would copy the bytes
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
		if j, seen := t.byDev[e.devID]; seen {
			if e.fsRoot && !t.chosen[j].fsRoot {
				t.chosen[j] = e
			}
			continue
		}
		t.byDev[e.devID] = len(t.chosen)
		t.chosen = append(t.chosen, e)
	}
	return t.chosen
}

// parse makes the entry of a mountinfo line; nil for a malformed line.
func (t *mountTable) parse(line []byte) *mountEntry {
	m, ok := parseMountinfoLine(line)
	if !ok {
		return nil
	}
	e := &mountEntry{
		line:       string(line),
		devID:      string(m.devID),
		device:     unescapeMount(m.source),
		mountpoint: unescapeMount(m.mountpoint),
		fstype:     string(m.fstype),
		fsRoot:     string(m.root) == "/",
	}
	e.statPath = t.hostPath(e.mountpoint)
	e.keep = t.types.match(e.fstype) && t.mountpoints.match(e.mountpoint)
	if e.device == "/dev/root" && e.keep {
		// The kernel's name for the root device given on its command line; the block device's
		// sysfs link names the real one.
		if target, err := os.Readlink(t.hostPath("/sys/dev/block/" + e.devID)); err == nil {
			e.device = "/dev/" + filepath.Base(target)
		}
	}
	return e
}
