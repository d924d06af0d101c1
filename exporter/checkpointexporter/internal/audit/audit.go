// Package audit writes the audit log (seed §9): one JSON object per line for every status API
// request (with the authenticated subject) and every alert notification sent. The file is
// rotated at a size bound, keeping one previous file (<path>.1).
package audit // import "github.com/buildmon/buildmon/exporter/checkpointexporter/internal/audit"

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"unicode/utf8"
)

// Record kinds.
const (
	KindStatusRequest = "status_request"
	KindNotification  = "notification"
)

// Record is one line of the audit log. Fields that do not apply to a kind are omitted.
type Record struct {
	Time string `json:"time"`
	Kind string `json:"kind"`

	// Status API requests.
	Subject    string  `json:"subject,omitempty"`
	Remote     string  `json:"remote,omitempty"`
	Method     string  `json:"method,omitempty"`
	Path       string  `json:"path,omitempty"`
	Query      string  `json:"query,omitempty"`
	Status     int     `json:"status,omitempty"`
	DurationMS float64 `json:"duration_ms,omitempty"`

	// Notifications.
	Target   string `json:"target,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	Alerts   []Note `json:"alerts,omitempty"`
	Outcome  string `json:"outcome,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Note is one alert in a notification record.
type Note struct {
	Rule    string `json:"rule"`
	Level   string `json:"level"`
	State   string `json:"state"`
	BuildID string `json:"build_id,omitempty"`
	Host    string `json:"host,omitempty"`
}

// MaxFieldBytes caps every string of a record (path, query, subject, …): a longer value is cut
// at a character boundary and ends with "…[truncated, <length> bytes]", so that a request
// with a huge path writes a line of a few KiB and cannot rotate the trail away.
const MaxFieldBytes = 1024

// capField returns s, or its first MaxFieldBytes bytes (whole characters) with a marker that
// gives the original length.
func capField(s string) string {
	if len(s) <= MaxFieldBytes {
		return s
	}
	cut := MaxFieldBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…[truncated, " + strconv.Itoa(len(s)) + " bytes]"
}

// capped returns a copy of the record with every string capped.
func (r Record) capped() Record {
	for _, f := range []*string{&r.Time, &r.Kind, &r.Subject, &r.Remote, &r.Method, &r.Path, &r.Query,
		&r.Target, &r.Endpoint, &r.Outcome, &r.Error} {
		*f = capField(*f)
	}
	if len(r.Alerts) > 0 {
		alerts := make([]Note, len(r.Alerts))
		for i, n := range r.Alerts {
			for _, f := range []*string{&n.Rule, &n.Level, &n.State, &n.BuildID, &n.Host} {
				*f = capField(*f)
			}
			alerts[i] = n
		}
		r.Alerts = alerts
	}
	return r
}

// Log is an audit log file. It is safe for concurrent use; mu guards the fields below it.
type Log struct {
	path     string
	maxBytes int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

// New returns a Log writing to path, rotated when it would grow past maxBytes. The file is
// opened at the first write (and reopened after a failure).
func New(path string, maxBytes int64) *Log {
	return &Log{path: path, maxBytes: maxBytes}
}

// Path returns the file the log writes.
func (l *Log) Path() string { return l.path }

// Write appends a record.
func (l *Log) Write(r Record) error {
	line, err := json.Marshal(r.capped())
	if err != nil {
		return fmt.Errorf("encoding audit record: %w", err)
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	// The file is opened before the bound is checked, so that what an earlier run left in it
	// counts.
	if l.f == nil {
		if err := l.open(); err != nil {
			return err
		}
	}
	if l.maxBytes > 0 && l.size+int64(len(line)) > l.maxBytes && l.size > 0 {
		if err := l.rotate(); err != nil {
			return err
		}
		if err := l.open(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(line)
	l.size += int64(n)
	if err != nil {
		// Reopen at the next write, the fault may have cleared by then.
		_ = l.f.Close()
		l.f = nil
		return fmt.Errorf("writing audit log %q: %w", l.path, err)
	}
	return nil
}

func (l *Log) open() error {
	if err := os.MkdirAll(filepath.Dir(l.path), 0o750); err != nil {
		return fmt.Errorf("creating the folder of audit log %q: %w", l.path, err)
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening audit log %q: %w", l.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("opening audit log %q: %w", l.path, err)
	}
	l.f, l.size = f, st.Size()
	return nil
}

// rotate moves the current file to <path>.1, replacing an older one.
func (l *Log) rotate() error {
	_ = l.f.Sync()
	_ = l.f.Close()
	l.f = nil
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		return fmt.Errorf("rotating audit log %q: %w", l.path, err)
	}
	return nil
}

// Close syncs and closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
