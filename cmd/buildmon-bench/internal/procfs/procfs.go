// Package procfs reads what the bench runner measures of a process from Linux /proc: CPU
// time (stat), resident memory (status) and I/O (io).
package procfs // import "github.com/buildmon/buildmon/cmd/buildmon-bench/internal/procfs"

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, 100 on every Linux
// architecture Go supports (the kernel's internal HZ is hidden behind it).
const userHZ = 100

// Sample is one reading of a process.
type Sample struct {
	At         time.Time
	CPU        time.Duration // utime + stime of all threads so far
	RSS        int64         // VmRSS, bytes
	HWM        int64         // VmHWM (peak RSS so far), bytes
	RSSAnon    int64         // RssAnon: heap, stacks (bytes); 0 on kernels without it
	RSSFile    int64         // RssFile: mapped files such as a bbolt database (bytes)
	WriteBytes int64         // bytes this process caused to be sent to storage
	WChar      int64         // bytes passed to write-like syscalls (files, sockets, pipes)
}

// Read samples process pid under root (normally "/proc").
func Read(root string, pid int) (Sample, error) {
	s := Sample{At: time.Now()}
	dir := filepath.Join(root, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return s, err
	}
	if s.CPU, err = ParseStatCPU(stat); err != nil {
		return s, err
	}
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return s, err
	}
	if s.RSS, s.HWM, err = ParseStatusMemory(status); err != nil {
		return s, err
	}
	s.RSSAnon, s.RSSFile = parseRSSParts(status)
	// /proc/<pid>/io needs ptrace access; a child of ours is fine, anything else may not be.
	if io, err := os.ReadFile(filepath.Join(dir, "io")); err == nil {
		s.WriteBytes, s.WChar, _ = ParseIO(io)
	}
	return s, nil
}

// ParseStatCPU returns utime + stime from the contents of /proc/<pid>/stat.
func ParseStatCPU(stat []byte) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may itself contain spaces and
	// parentheses; the fields after the last ')' are plain.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("stat: no command name in %q", truncate(stat))
	}
	fields := strings.Fields(string(stat[end+1:]))
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat: utime %q / stime %q are not numbers", fields[11], fields[12])
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// ParseStatusMemory returns VmRSS and VmHWM in bytes from the contents of /proc/<pid>/status.
func ParseStatusMemory(status []byte) (rss, hwm int64, err error) {
	var haveRSS, haveHWM bool
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("status: %s %q is not in kB", key, val)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("status: %s: %w", key, err)
		}
		if key == "VmRSS" {
			rss, haveRSS = kb<<10, true
		} else {
			hwm, haveHWM = kb<<10, true
		}
	}
	if !haveRSS || !haveHWM {
		return 0, 0, fmt.Errorf("status: VmRSS or VmHWM missing (a kernel thread or a zombie?)")
	}
	return rss, hwm, nil
}

// parseRSSParts returns RssAnon and RssFile in bytes (Linux 4.5+), 0 when absent.
func parseRSSParts(status []byte) (anon, file int64) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "RssAnon" && key != "RssFile") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if key == "RssAnon" {
			anon = kb << 10
		} else {
			file = kb << 10
		}
	}
	return anon, file
}

// ParseIO returns write_bytes and wchar from the contents of /proc/<pid>/io.
func ParseIO(io []byte) (writeBytes, wchar int64, err error) {
	var haveWB, haveWC bool
	sc := bufio.NewScanner(bytes.NewReader(io))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, perr := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		switch key {
		case "write_bytes":
			writeBytes, haveWB, err = n, true, perr
		case "wchar":
			wchar, haveWC, err = n, true, perr
		default:
			continue
		}
		if err != nil {
			return 0, 0, fmt.Errorf("io: %s: %w", key, err)
		}
	}
	if !haveWB || !haveWC {
		return 0, 0, fmt.Errorf("io: write_bytes or wchar missing")
	}
	return writeBytes, wchar, nil
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}
