package audit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// 300 requests with 100 KB paths rotated the whole audit trail away: what one request
// writes is capped, so the earlier records survive.
func TestLongRequestsDoNotRotateTheTrailAway(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := New(path, 10<<20)
	require.NoError(t, l.Write(Record{Time: "t0", Kind: KindStatusRequest, Subject: "alice", Path: "/v1/builds/first", Status: 200}))
	long := "/v1/builds/" + strings.Repeat("A", 100_000)
	for range 300 {
		require.NoError(t, l.Write(Record{Time: "t", Kind: KindStatusRequest, Subject: "mallory", Path: long,
			Query: "q=" + strings.Repeat("B", 100_000), Remote: "127.0.0.1:1", Status: 404}))
	}
	require.NoError(t, l.Close())
	recs := readLines(t, path)
	require.NotEmpty(t, recs)
	assert.Equal(t, "/v1/builds/first", recs[0].Path, "the first record is still in the current file")
	last := recs[len(recs)-1]
	assert.LessOrEqual(t, len(last.Path), MaxFieldBytes+64)
	assert.True(t, strings.HasPrefix(last.Path, long[:100]))
	assert.Contains(t, last.Path, "[truncated, 100011 bytes]")
	assert.Contains(t, last.Query, "[truncated, 100002 bytes]")
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Less(t, st.Size(), int64(301*8<<10))
}

func TestCapKeepsUTF8AndShortValues(t *testing.T) {
	assert.Equal(t, "short", capField("short"))
	s := strings.Repeat("é", MaxFieldBytes) // 2 bytes each
	got := capField(s)
	assert.True(t, utf8.ValidString(got))
	assert.Contains(t, got, "[truncated, 2048 bytes]")

	// Every string of a record is capped, also a notification's.
	r := Record{Kind: KindNotification, Error: strings.Repeat("e", 5000), Alerts: []Note{{Rule: strings.Repeat("r", 5000)}}}
	c := r.capped()
	assert.Less(t, len(c.Error), MaxFieldBytes+64)
	assert.Less(t, len(c.Alerts[0].Rule), MaxFieldBytes+64)
	assert.Len(t, r.Alerts[0].Rule, 5000, "the caller's record is not changed")
	b, err := json.Marshal(c)
	require.NoError(t, err)
	assert.NotContains(t, string(b), strings.Repeat("e", MaxFieldBytes+1))
}
