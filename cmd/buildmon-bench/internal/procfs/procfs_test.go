package procfs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const statLine = "4242 (otelcol (build) x) S 1 4242 4242 0 -1 4194560 12345 0 0 0 250 75 3 4 20 0 12 0 987654 1234567890 20000 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0\n"

const statusText = `Name:	otelcol-buildmo
State:	S (sleeping)
VmPeak:	 2000000 kB
VmHWM:	   81920 kB
VmRSS:	   65536 kB
RssAnon:	   61440 kB
RssFile:	    4096 kB
RssShmem:	       0 kB
Threads:	12
`

const ioText = `rchar: 1000
wchar: 52000
syscr: 10
syscw: 20
read_bytes: 4096
write_bytes: 40960
canceled_write_bytes: 0
`

func TestParseStatCPU(t *testing.T) {
	cpu, err := ParseStatCPU([]byte(statLine))
	require.NoError(t, err)
	assert.Equal(t, 3250*time.Millisecond, cpu, "(250 + 75) ticks of 10 ms")

	_, err = ParseStatCPU([]byte("4242 no parens"))
	require.Error(t, err)
	_, err = ParseStatCPU([]byte("4242 (x) S 1 2"))
	require.Error(t, err)
	_, err = ParseStatCPU([]byte("4242 (x) S 1 2 3 4 5 6 7 8 9 10 u s 1 2"))
	require.Error(t, err)
}

func TestParseStatusMemory(t *testing.T) {
	rss, hwm, err := ParseStatusMemory([]byte(statusText))
	require.NoError(t, err)
	assert.Equal(t, int64(64<<20), rss)
	assert.Equal(t, int64(80<<20), hwm)

	_, _, err = ParseStatusMemory([]byte("Name:\tkthreadd\n"))
	require.Error(t, err)
	_, _, err = ParseStatusMemory([]byte("VmHWM:\t1 MB\nVmRSS:\t1 kB\n"))
	require.Error(t, err)
}

func TestParseIO(t *testing.T) {
	wb, wc, err := ParseIO([]byte(ioText))
	require.NoError(t, err)
	assert.Equal(t, int64(40960), wb)
	assert.Equal(t, int64(52000), wc)
	_, _, err = ParseIO([]byte("rchar: 1\n"))
	require.Error(t, err)
	_, _, err = ParseIO([]byte("wchar: x\nwrite_bytes: 1\n"))
	require.Error(t, err)
}

func TestRead(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "4242")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stat"), []byte(statLine), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "status"), []byte(statusText), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "io"), []byte(ioText), 0o644))
	s, err := Read(root, 4242)
	require.NoError(t, err)
	assert.Equal(t, 3250*time.Millisecond, s.CPU)
	assert.Equal(t, int64(64<<20), s.RSS)
	assert.Equal(t, int64(80<<20), s.HWM)
	assert.Equal(t, int64(60<<20), s.RSSAnon)
	assert.Equal(t, int64(4<<20), s.RSSFile)
	assert.Equal(t, int64(40960), s.WriteBytes)
	assert.Equal(t, int64(52000), s.WChar)

	_, err = Read(root, 1)
	require.Error(t, err)
}

func TestReadSelf(t *testing.T) {
	s, err := Read("/proc", os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, s.RSS)
	assert.GreaterOrEqual(t, s.HWM, s.RSS)
}
