package hostmetrics // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostmetrics"

import (
	"bytes"
	"errors"
	"io"
	"os"
)

// The counters below are read from /proc directly rather than through gopsutil: gopsutil's
// CPU, memory, disk and network calls read more files than these metrics need (cpuinfo, per
// CPU lines, vmstat, udev properties) and parse into maps, which made a scrape several times
// the cost of reading the files. Filesystems still go through gopsutil (mountinfo, statfs).

// readFile reads a /proc file into buf, reusing its capacity.
func readFile(path string, buf *[]byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := (*buf)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			*buf = b
			if errors.Is(err, io.EOF) {
				return b, nil
			}
			return nil, err
		}
	}
}

// fields splits a line on spaces without allocating more than the slice.
func fields(line []byte, dst [][]byte) [][]byte {
	dst = dst[:0]
	i := 0
	for i < len(line) {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		start := i
		for i < len(line) && line[i] != ' ' && line[i] != '\t' {
			i++
		}
		if i > start {
			dst = append(dst, line[start:i])
		}
	}
	return dst
}

func atou(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}

// cpuTimes are the aggregate jiffies of /proc/stat's first line.
type cpuTimes struct{ total, idle uint64 }

func parseStat(b []byte, scratch [][]byte) (cpuTimes, bool) {
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := fields(line, scratch)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return cpuTimes{}, false
	}
	var t cpuTimes
	// user nice system idle iowait irq softirq steal (guest time is already in user and nice).
	for i := 1; i < len(f) && i <= 8; i++ {
		v := atou(f[i])
		t.total += v
		if i == 4 || i == 5 {
			t.idle += v
		}
	}
	return t, true
}

// memInfo holds the /proc/meminfo values the memory metrics need, in bytes.
type memInfo struct{ total, free, buffers, cached, sreclaimable uint64 }

func parseMeminfo(b []byte) memInfo {
	var m memInfo
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
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
			dst = &m.sreclaimable
		default:
			continue
		}
		*dst = atou(bytes.TrimSpace(rest)) * 1024
	}
	return m
}

// ioCounter is a device's or interface's pair of cumulative counters.
type ioCounter struct {
	name                  string
	readBytes, writeBytes uint64 // disks: bytes; interfaces: received/transmitted bytes
	readOps, writeOps     uint64 // disks only
}

// parseDiskstats reads /proc/diskstats (sectors are 512 bytes whatever the device).
func parseDiskstats(b []byte, scratch [][]byte, keep func(string) bool, dst []ioCounter) []ioCounter {
	dst = dst[:0]
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		f := fields(line, scratch)
		if len(f) < 14 {
			continue
		}
		name := string(f[2])
		if !keep(name) {
			continue
		}
		dst = append(dst, ioCounter{name: name, readOps: atou(f[3]), readBytes: atou(f[5]) * 512, writeOps: atou(f[7]), writeBytes: atou(f[9]) * 512})
	}
	return dst
}

// parseNetDev reads /proc/net/dev.
func parseNetDev(b []byte, scratch [][]byte, keep func(string) bool, dst []ioCounter) []ioCounter {
	dst = dst[:0]
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		name, rest, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		n := string(bytes.TrimSpace(name))
		if !keep(n) {
			continue
		}
		f := fields(rest, scratch)
		if len(f) < 9 {
			continue
		}
		dst = append(dst, ioCounter{name: n, readBytes: atou(f[0]), writeBytes: atou(f[8])})
	}
	return dst
}
