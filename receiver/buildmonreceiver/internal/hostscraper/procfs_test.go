package hostscraper

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseUint(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "42": 42, "18446744073709551615": 1<<64 - 1} {
		n, ok := parseUint([]byte(in))
		assert.True(t, ok, in)
		assert.Equal(t, want, n, in)
	}
	for _, in := range []string{"", "-1", "1.5", "12a", "18446744073709551616", "99999999999999999999", "123456789012345678901"} {
		_, ok := parseUint([]byte(in))
		assert.False(t, ok, in)
	}
}

func TestCutField(t *testing.T) {
	var fields []string
	rest := []byte("  a\tbb   ccc ")
	for {
		var f []byte
		f, rest = cutField(rest)
		if len(f) == 0 {
			break
		}
		fields = append(fields, string(f))
	}
	assert.Equal(t, []string{"a", "bb", "ccc"}, fields)
}

func TestParseCPUTimes(t *testing.T) {
	tests := []struct {
		name, in string
		want     cpuTimes
		err      string
	}{
		{name: "ten fields, guest left out", in: "cpu  10 1 5 80 4 2 3 1 7 7\ncpu0 1 1 1 1\n", want: cpuTimes{busy: 22, total: 106}},
		{name: "four fields (no iowait)", in: "cpu 10 0 10 80\n", want: cpuTimes{busy: 20, total: 100}},
		{name: "not the cpu line", in: "cpu0 1 2 3 4\n", err: `/proc/stat does not start with the "cpu" line`},
		{name: "too short", in: "cpu 1 2 3\n", err: "/proc/stat: cpu line has 3 fields, want at least 4"},
		{name: "not a number", in: "cpu 1 2 x 4\n", err: `/proc/stat: cpu field 3: invalid number "x"`},
		{name: "empty", in: "", err: `/proc/stat does not start with the "cpu" line`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCPUTimes([]byte(tt.in))
			if tt.err != "" {
				assert.EqualError(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseBootTime(t *testing.T) {
	sec, err := parseBootTime([]byte("cpu 1 2 3 4\nbtime 1767225600\nprocesses 3\n"))
	require.NoError(t, err)
	assert.Equal(t, int64(1767225600), sec)
	_, err = parseBootTime([]byte("cpu 1 2 3 4\n"))
	assert.EqualError(t, err, "/proc/stat has no btime line")
	_, err = parseBootTime([]byte("btime soon\n"))
	assert.EqualError(t, err, `/proc/stat: invalid btime "soon"`)
}

func TestParseMemInfo(t *testing.T) {
	m, err := parseMemInfo([]byte("MemTotal:  1000 kB\nMemFree: 400 kB\nBuffers: 100 kB\nCached: 150 kB\nSwapCached: 7 kB\nSReclaimable: 50 kB\nHugePages_Total: 3\n"))
	require.NoError(t, err)
	assert.Equal(t, memInfo{total: 1000 << 10, free: 400 << 10, buffers: 100 << 10, cached: 150 << 10, sReclaimable: 50 << 10}, m)

	_, err = parseMemInfo([]byte("MemFree: 400 kB\n"))
	assert.EqualError(t, err, "/proc/meminfo has no MemTotal")
	_, err = parseMemInfo([]byte("MemTotal: lots kB\n"))
	assert.EqualError(t, err, `/proc/meminfo: MemTotal: invalid number "lots"`)
}

func TestParseDiskstatsLine(t *testing.T) {
	name, c, ok := parseDiskstatsLine([]byte(" 259       0 nvme0n1 10 1 80 5 20 2 160 9 0 12 14 0 0 0 0 0 0"))
	require.True(t, ok)
	assert.Equal(t, "nvme0n1", string(name))
	assert.Equal(t, ioCounters{readOps: 10, readBytes: 80 * 512, writeOps: 20, writeBytes: 160 * 512}, c)

	for _, line := range []string{"", "   8 0 sda 1 2 3 4 5 6", "   8 0 sda 1 2 x 4 5 6 7 8 9 10 11"} {
		_, _, ok := parseDiskstatsLine([]byte(line))
		assert.False(t, ok, line)
	}
}

func TestParseNetDevLine(t *testing.T) {
	name, c, ok := parseNetDevLine([]byte("  eth0: 5000 50 0 0 0 0 0 0 3000 30 0 0 0 0 0 0"))
	require.True(t, ok)
	assert.Equal(t, "eth0", string(name))
	assert.Equal(t, ioCounters{readBytes: 5000, writeBytes: 3000}, c)

	// Long names run into the numbers; the last colon separates them.
	name, c, ok = parseNetDevLine([]byte("veth1a2b3c4d:700 7 0 0 0 0 0 0 800 8 0 0 0 0 0 0"))
	require.True(t, ok)
	assert.Equal(t, "veth1a2b3c4d", string(name))
	assert.Equal(t, ioCounters{readBytes: 700, writeBytes: 800}, c)

	for _, line := range []string{
		"Inter-|   Receive                                                |  Transmit",
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
		"  eth0: 1 2 3",
		"    : 1 2 3 4 5 6 7 8 9 10",
	} {
		_, _, ok := parseNetDevLine([]byte(line))
		assert.False(t, ok, line)
	}
}

func TestParseMountinfoLine(t *testing.T) {
	m, ok := parseMountinfoLine([]byte(`36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue`))
	require.True(t, ok)
	assert.Equal(t, "98:0", string(m.devID))
	assert.Equal(t, "/mnt1", string(m.root))
	assert.Equal(t, "/mnt2", string(m.mountpoint))
	assert.Equal(t, "ext3", string(m.fstype))
	assert.Equal(t, "/dev/root", string(m.source))

	m, ok = parseMountinfoLine([]byte(`25 22 0:30 / /tmp rw - tmpfs tmpfs rw`))
	require.True(t, ok, "no optional fields")
	assert.Equal(t, "tmpfs", string(m.fstype))

	for _, line := range []string{"", "25 22 0:30 / /tmp rw tmpfs tmpfs rw", "25 22 0:30 /"} {
		_, ok := parseMountinfoLine([]byte(line))
		assert.False(t, ok, line)
	}
}

func TestUnescapeMount(t *testing.T) {
	assert.Equal(t, "/plain", unescapeMount([]byte("/plain")))
	assert.Equal(t, "/work dir/a\tb\\c", unescapeMount([]byte(`/work\040dir/a\011b\134c`)))
	assert.Equal(t, `/odd\04`, unescapeMount([]byte(`/odd\04`)), "an incomplete escape stays")
}

func TestProcFileRereadsAndGrows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stat")
	require.NoError(t, os.WriteFile(path, []byte("first"), 0o600))
	f := procFile{path: path}
	defer f.close()
	buf := make([]byte, 0, 4)

	data, err := f.read(&buf)
	require.NoError(t, err)
	assert.Equal(t, "first", string(data))

	long := strings.Repeat("x", 10000)
	require.NoError(t, os.WriteFile(path, []byte(long), 0o600))
	data, err = f.read(&buf)
	require.NoError(t, err)
	assert.Equal(t, long, string(data), "the open file is read afresh from the start")

	require.NoError(t, os.WriteFile(path, []byte("short"), 0o600))
	data, err = f.read(&buf)
	require.NoError(t, err)
	assert.Equal(t, "short", string(data))
}

func TestProcFileReopensAfterError(t *testing.T) {
	dir := t.TempDir()
	f := procFile{path: filepath.Join(dir, "missing")}
	var buf []byte
	_, err := f.read(&buf)
	require.ErrorIs(t, err, os.ErrNotExist)

	require.NoError(t, os.WriteFile(f.path, []byte("here"), 0o600))
	data, err := f.read(&buf)
	require.NoError(t, err)
	assert.Equal(t, "here", string(data))
	f.close()
	f.close() // closing twice is harmless
}

// On this machine's procfs: a kept-open file gives its whole content again on every read
// (reading from offset 0 makes the seq_file start over), not EOF.
func TestProcFileRealProc(t *testing.T) {
	for _, p := range []string{"/proc/stat", "/proc/meminfo", "/proc/self/mountinfo", "/proc/net/dev", "/proc/diskstats"} {
		f := procFile{path: p}
		var buf []byte
		first, err := f.read(&buf)
		require.NoError(t, err, p)
		firstLine, _ := cutLine(first)
		firstField := string(firstLine[:min(len(firstLine), 8)])
		for range 3 {
			again, err := f.read(&buf)
			require.NoError(t, err, p)
			assert.True(t, strings.HasPrefix(string(again), firstField), "%s read again: %q", p, again)
		}
		f.close()
	}
}
