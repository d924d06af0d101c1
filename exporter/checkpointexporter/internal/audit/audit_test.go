package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readLines(t *testing.T, path string) []Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func TestWriteAndRotate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "audit.log")
	l := New(path, 400)
	for i := 0; i < 6; i++ {
		if err := l.Write(Record{Time: "2025-01-01T00:00:00Z", Kind: KindStatusRequest, Subject: "alice", Method: "GET", Path: "/v1/builds", Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cur, old := readLines(t, path), readLines(t, path+".1")
	if len(cur)+len(old) != 6 || len(old) == 0 {
		t.Fatalf("records: %d current + %d rotated, want 6 with a rotation", len(cur), len(old))
	}
	for _, p := range []string{path, path + ".1"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 400 {
			t.Errorf("%s has %d bytes, over the bound", p, st.Size())
		}
	}
	if cur[0].Subject != "alice" || cur[0].Status != 200 || cur[0].Kind != KindStatusRequest {
		t.Fatalf("record %+v", cur[0])
	}
}

func TestWriteFailsAndRecovers(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "blocked")
	// A file where the log's folder should be: opening fails (also for root).
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l := New(filepath.Join(blocker, "audit.log"), 0)
	err := l.Write(Record{Kind: KindNotification, Target: "alertmanager"})
	if err == nil || !strings.Contains(err.Error(), "audit log") {
		t.Fatalf("err = %v, want an audit log error", err)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(Record{Kind: KindNotification, Target: "alertmanager", Alerts: []Note{{Rule: "cpu", Level: "ERROR", State: "firing"}}}); err != nil {
		t.Fatalf("after the fault cleared: %v", err)
	}
	_ = l.Close()
	recs := readLines(t, filepath.Join(blocker, "audit.log"))
	if len(recs) != 1 || recs[0].Alerts[0].Rule != "cpu" {
		t.Fatalf("records %+v", recs)
	}
}
