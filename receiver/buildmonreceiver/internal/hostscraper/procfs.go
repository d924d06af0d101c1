package hostscraper // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper"

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Why procfs by hand: gopsutil's readers of these files turn every line into a string and
// every field into another (strings.Fields, strings.Split), disk.IOCounters opens two more
// files per disk on every call (the udev serial number and the device-mapper label), and
// disk.Partitions reads /proc/filesystems besides the mount table; we report none of that.
// On a one-second interval that garbage is most of a scrape's cost. The parsers below pick
// the counters out in place from a buffer that lives as long as the scraper. gopsutil still
// measures filesystems (disk.Usage, one statfs).

// procFile is a proc file kept open between scrapes: reading it again from offset 0 makes the
// kernel generate it afresh (procfs files are seq_files), which spares an open and a close,
// and the allocations of an *os.File, on every scrape.
type procFile struct {
	path string
	f    *os.File // nil until opened, and after a failed read
}

// read returns the file's current content in *buf, which grows as needed and is reused: the
// content is valid until the next read into the same buffer.
func (p *procFile) read(buf *[]byte) ([]byte, error) {
	if p.f == nil {
		f, err := os.Open(p.path)
		if err != nil {
			return nil, err
		}
		p.f = f
	}
	b := (*buf)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := p.f.ReadAt(b[len(b):cap(b)], int64(len(b)))
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			*buf = b
			p.close() // open it afresh next time
			return nil, err
		}
	}
	*buf = b
	return b, nil
}

func (p *procFile) close() {
	if p.f != nil {
		_ = p.f.Close()
		p.f = nil
	}
}

// cutLine returns the first line of b (without its newline) and the rest.
func cutLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// cutField returns the first blank-separated field of b and the rest.
func cutField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	j := i
	for j < len(b) && b[j] != ' ' && b[j] != '\t' {
		j++
	}
	return b[i:j], b[j:]
}

// parseUint parses a decimal counter; ok is false for anything else, overflow included.
func parseUint(b []byte) (n uint64, ok bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// cpuTimes are the aggregate jiffies of all CPUs from the first line of /proc/stat.
type cpuTimes struct{ busy, total uint64 }

// parseCPUTimes reads the "cpu" line of /proc/stat: user nice system idle iowait irq softirq
// steal [guest guest_nice]. Guest time is already part of user and nice, so it is left out of
// the total; idle and iowait are the not-busy time.
func parseCPUTimes(stat []byte) (cpuTimes, error) {
	line, _ := cutLine(stat)
	name, rest := cutField(line)
	if string(name) != "cpu" {
		return cpuTimes{}, errors.New(`/proc/stat does not start with the "cpu" line`)
	}
	var v [8]uint64
	n := 0
	for ; n < len(v); n++ {
		var f []byte
		f, rest = cutField(rest)
		if len(f) == 0 {
			break
		}
		x, ok := parseUint(f)
		if !ok {
			return cpuTimes{}, fmt.Errorf("/proc/stat: cpu field %d: invalid number %q", n+1, f)
		}
		v[n] = x
	}
	if n < 4 {
		return cpuTimes{}, fmt.Errorf("/proc/stat: cpu line has %d fields, want at least 4", n)
	}
	var t cpuTimes
	for _, x := range v[:n] {
		t.total += x
	}
	t.busy = t.total - v[3] - v[4] // v[4] (iowait) is 0 when the kernel does not report it
	return t, nil
}

// parseBootTime returns the btime line of /proc/stat: the boot time in seconds since the epoch.
func parseBootTime(stat []byte) (int64, error) {
	for len(stat) > 0 {
		var line []byte
		line, stat = cutLine(stat)
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			if n, ok := parseUint(bytes.TrimSpace(v)); ok && n < 1<<62 {
				return int64(n), nil
			}
			return 0, fmt.Errorf("/proc/stat: invalid btime %q", v)
		}
	}
	return 0, errors.New("/proc/stat has no btime line")
}

// memInfo holds the /proc/meminfo fields the memory states come from, in bytes.
type memInfo struct {
	total, free, buffers, cached, sReclaimable uint64
}

// parseMemInfo reads "Key:   value kB" lines.
func parseMemInfo(data []byte) (memInfo, error) {
	var m memInfo
	for len(data) > 0 {
		var line []byte
		line, data = cutLine(data)
		key, rest, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		var dst *uint64
		switch string(key) {
		case "MemTotal":
			dst = &m.total
		case "MemFree":
			dst = &m.free
		case "Buffers":
			dst = &m.buffers
		case "Cached":
			dst = &m.cached
		case "SReclaimable":
			dst = &m.sReclaimable
		default:
			continue
		}
		f, rest := cutField(rest)
		n, ok := parseUint(f)
		if !ok {
			return memInfo{}, fmt.Errorf("/proc/meminfo: %s: invalid number %q", key, f)
		}
		if unit, _ := cutField(rest); string(unit) == "kB" {
			n *= 1024
		}
		*dst = n
	}
	if m.total == 0 {
		return memInfo{}, errors.New("/proc/meminfo has no MemTotal")
	}
	return m, nil
}

// parseDiskstatsLine reads one line of /proc/diskstats: major minor name reads merged
// sectors_read ms_reading writes merged sectors_written ... Sectors are 512 bytes whatever
// the device's sector size (the kernel's block layer unit). ok is false for a malformed line.
func parseDiskstatsLine(line []byte) (name []byte, c ioCounters, ok bool) {
	var f [10][]byte
	rest := line
	for i := range f {
		f[i], rest = cutField(rest)
		if len(f[i]) == 0 {
			return nil, c, false
		}
	}
	var sr, sw uint64
	var ok1, ok2, ok3, ok4 bool
	c.readOps, ok1 = parseUint(f[3])
	sr, ok2 = parseUint(f[5])
	c.writeOps, ok3 = parseUint(f[7])
	sw, ok4 = parseUint(f[9])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil, c, false
	}
	c.readBytes, c.writeBytes = sr*512, sw*512
	return f[2], c, true
}

// parseNetDevLine reads one interface line of /proc/net/dev: "name: rx_bytes rx_packets
// errs drop fifo frame compressed multicast tx_bytes ...". The two header lines and malformed
// lines give ok false. Received bytes go to readBytes, transmitted to writeBytes.
func parseNetDevLine(line []byte) (name []byte, c ioCounters, ok bool) {
	i := bytes.LastIndexByte(line, ':')
	if i < 0 {
		return nil, c, false
	}
	name = bytes.TrimSpace(line[:i])
	rest := line[i+1:]
	var f [9][]byte
	for j := range f {
		f[j], rest = cutField(rest)
		if len(f[j]) == 0 {
			return nil, c, false
		}
	}
	var ok1, ok2 bool
	c.readBytes, ok1 = parseUint(f[0])
	c.writeBytes, ok2 = parseUint(f[8])
	if len(name) == 0 || !ok1 || !ok2 {
		return nil, c, false
	}
	return name, c, true
}

// mountLine is one line of /proc/<pid>/mountinfo, as slices of the line:
// "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue".
type mountLine struct {
	devID, root, mountpoint, fstype, source []byte
}

func parseMountinfoLine(line []byte) (m mountLine, ok bool) {
	rest := line
	var f [5][]byte
	for i := range f {
		f[i], rest = cutField(rest)
		if len(f[i]) == 0 {
			return m, false
		}
	}
	// Optional fields end at the " - " separator.
	_, after, found := bytes.Cut(rest, []byte(" - "))
	if !found {
		return m, false
	}
	m.devID, m.root, m.mountpoint = f[2], f[3], f[4]
	m.fstype, after = cutField(after)
	m.source, _ = cutField(after)
	return m, len(m.fstype) > 0
}

// unescapeMount undoes the octal escapes (\040 for space, \011, \012, \134) of mountinfo paths.
func unescapeMount(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+3 < len(b) && isOctal(b[i+1]) && isOctal(b[i+2]) && isOctal(b[i+3]) {
			out = append(out, (b[i+1]-'0')<<6|(b[i+2]-'0')<<3|(b[i+3]-'0'))
			i += 3
			continue
		}
		out = append(out, b[i])
	}
	return string(out)
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
