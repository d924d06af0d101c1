// Package statusapi is the read-only HTTP status API of the checkpoint exporter:
//
//	GET /v1/builds                               builds (filters: state, host, pipeline)
//	GET /v1/builds/{id}                          real-time status of a build
//	GET /v1/builds/{id}/report                   build report (once the build finished)
//	GET /v1/builds/{id}/phases/{phase}/report    phase report (once the phase ended)
//	GET /v1/hosts                                hosts with their latest utilization
//	GET /v1/hosts/{name}                         one host
//
// Every other method gets 405, every other path 404, an unclean path (//, . or .. segments)
// 400, a bad value of a closed filter 400, all with a JSON error body. The package
// also has the middleware that writes every request to the audit log.
package statusapi // import "github.com/buildmon/buildmon/exporter/checkpointexporter/internal/statusapi"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/audit"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
	"github.com/buildmon/buildmon/internal/access"
	"github.com/buildmon/buildmon/internal/wire"
)

// Errors a Source returns for reports.
var (
	// ErrNotFound: no such build or phase.
	ErrNotFound = errors.New("not found")
	// ErrNotReady: the build or phase has not ended, so there is no report yet.
	ErrNotReady = errors.New("no report yet")
)

// Source is what the API serves.
type Source interface {
	Builds(f state.BuildFilter) []state.BuildSummary
	BuildStatus(id string) (state.BuildStatus, bool)
	// Report returns the JSON of a build's report (phase "") or of a phase report.
	Report(id, phase string) ([]byte, error)
	Hosts() []state.HostStatus
	Host(name string) (state.HostStatus, bool)
}

// BuildList is the body of GET /v1/builds.
type BuildList = wire.BuildList

// HostList is the body of GET /v1/hosts.
type HostList = wire.HostList

// Error is the body of every error answer.
type Error = wire.Error

// Access is the authorization of the API: with a Policy, a build's status needs status:read
// on its pipeline and host, its reports reports:read, a host status:read on the host, and the
// lists show only what the subject may read. A zero Access checks nothing.
type Access struct {
	Policy *access.Policy
	Audit  *access.Audit
	// AuthID is the API's authenticator ("" without one), for the subjects of credentials.
	AuthID string
	Clock  clock.Clock
}

// identity returns the request's subject; only called with a Policy.
func (a Access) identity(r *http.Request) access.Identity { return access.Identify(r, a.AuthID) }

// check decides one target and writes the audit line; it answers 403 and returns false when
// the request may not.
func (a Access) check(w http.ResponseWriter, r *http.Request, action access.Action, t access.Target) bool {
	if !a.Policy.Enabled() {
		return true
	}
	id := a.identity(r)
	err := a.Policy.Check(id, action, t)
	a.Audit.Record(access.Decision{Subject: id.Subject(), Action: action, Target: t, Allowed: err == nil}, a.Clock.Now())
	var d *access.Denied
	if errors.As(err, &d) {
		body := Error{Error: d.Error(), Permission: string(d.Action), Subject: d.Subject, Host: t.Host}
		if !t.IsHost {
			body.Pipeline = t.Pipeline
		}
		writeJSON(w, http.StatusForbidden, body)
		return false
	}
	return true
}

// NewHandler returns the API's handler without access rules.
func NewHandler(src Source) http.Handler { return NewHandlerWithAccess(src, Access{}) }

// NewHandlerWithAccess returns the API's handler with access rules.
func NewHandlerWithAccess(src Source, acc Access) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/builds", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if err := checkClosed(q, "state", state.BuildRunning, state.BuildFinished); err != "" {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		f := state.BuildFilter{State: q.Get("state"), Host: q.Get("host"), Pipeline: q.Get("pipeline")}
		builds := src.Builds(f)
		if acc.Policy.Enabled() {
			// The list holds what the subject may read; a build it may not read is left out
			// as if it did not exist.
			id := acc.identity(r)
			kept := builds[:0]
			for _, b := range builds {
				if acc.Policy.Allowed(id, access.StatusRead, access.Build(b.Pipeline, b.Host)) {
					kept = append(kept, b)
				}
			}
			builds = kept
		}
		writeJSON(w, http.StatusOK, BuildList{Builds: builds, Count: len(builds)})
	})
	mux.HandleFunc("/v1/builds/{id}", func(w http.ResponseWriter, r *http.Request) {
		st, ok := src.BuildStatus(r.PathValue("id"))
		if !ok {
			writeError(w, http.StatusNotFound, "unknown build "+quote(r.PathValue("id")))
			return
		}
		if !acc.check(w, r, access.StatusRead, access.Build(st.Pipeline, st.Host)) {
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	report := func(w http.ResponseWriter, r *http.Request, id, phase string) {
		if acc.Policy.Enabled() {
			st, ok := src.BuildStatus(id)
			if !ok {
				writeError(w, http.StatusNotFound, "unknown build "+quote(id))
				return
			}
			if !acc.check(w, r, access.ReportsRead, access.Build(st.Pipeline, st.Host)) {
				return
			}
		}
		b, err := src.Report(id, phase)
		switch {
		case err == nil:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(b)
		case errors.Is(err, ErrNotFound):
			writeError(w, http.StatusNotFound, err.Error())
		case errors.Is(err, ErrNotReady):
			writeError(w, http.StatusNotFound, err.Error())
		default:
			writeError(w, http.StatusInternalServerError, err.Error())
		}
	}
	mux.HandleFunc("/v1/builds/{id}/report", func(w http.ResponseWriter, r *http.Request) {
		report(w, r, r.PathValue("id"), "")
	})
	mux.HandleFunc("/v1/builds/{id}/phases/{phase}/report", func(w http.ResponseWriter, r *http.Request) {
		report(w, r, r.PathValue("id"), r.PathValue("phase"))
	})
	mux.HandleFunc("/v1/hosts", func(w http.ResponseWriter, r *http.Request) {
		hosts := src.Hosts()
		if acc.Policy.Enabled() {
			id := acc.identity(r)
			kept := hosts[:0]
			for _, h := range hosts {
				if acc.Policy.Allowed(id, access.StatusRead, access.Host(h.Name)) {
					kept = append(kept, h)
				}
			}
			hosts = kept
		}
		writeJSON(w, http.StatusOK, HostList{Hosts: hosts, Count: len(hosts)})
	})
	mux.HandleFunc("/v1/hosts/{name}", func(w http.ResponseWriter, r *http.Request) {
		h, ok := src.Host(r.PathValue("name"))
		if !ok {
			writeError(w, http.StatusNotFound, "unknown host "+quote(r.PathValue("name")))
			return
		}
		if !acc.check(w, r, access.StatusRead, access.Host(h.Name)) {
			return
		}
		writeJSON(w, http.StatusOK, h)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint "+quote(r.URL.Path))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "the status API is read-only: method "+r.Method+" not allowed")
			return
		}
		// ServeMux would answer an unclean path with a redirect to the clean one (an HTML
		// body); a client of this API gets a JSON error instead, and one path names one thing.
		if p := r.URL.Path; p != cleanPath(p) {
			writeError(w, http.StatusBadRequest, "unclean path "+quote(p)+": empty, \".\" or \"..\" segments are not allowed")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// cleanPath is path.Clean keeping a trailing slash (such paths name no endpoint and get 404).
func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// checkClosed checks a query parameter with a closed set of values: at most once, and empty
// or one of allowed. It returns the error message, "" if the parameter is fine.
func checkClosed(q url.Values, name string, allowed ...string) string {
	vs := q[name]
	switch {
	case len(vs) > 1:
		return fmt.Sprintf("query parameter %s given %d times; give it once: %s", name, len(vs), strings.Join(allowed, " or "))
	case len(vs) == 0 || vs[0] == "" || slices.Contains(allowed, vs[0]):
		return ""
	}
	return fmt.Sprintf("query parameter %s is %s; allowed values: %s", name, quote(vs[0]), strings.Join(allowed, ", "))
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding the answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(Error{Error: msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// requestInfo carries what the inner middleware learns (the subject) to the outer one.
type requestInfo struct {
	subject string
}

type infoKey struct{}

// Audit returns the outer middleware: it records every request, also those that the
// authentication in between rejects, with record. Put it outside the authentication and
// Subject inside it.
func Audit(next http.Handler, c clock.Clock, record func(audit.Record)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := c.Now()
		info := &requestInfo{}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), infoKey{}, info)))
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		subject := info.subject
		if subject == "" {
			subject = "anonymous"
			if sw.status == http.StatusUnauthorized {
				subject = "unauthenticated"
			}
		}
		record(audit.Record{
			Time:       start.UTC().Format(time.RFC3339Nano),
			Kind:       audit.KindStatusRequest,
			Subject:    subject,
			Remote:     r.RemoteAddr,
			Method:     r.Method,
			Path:       r.URL.Path,
			Query:      r.URL.RawQuery,
			Status:     sw.status,
			DurationMS: float64(c.Now().Sub(start).Microseconds()) / 1000,
		})
	})
}

// Subject returns the inner middleware: it asks subject for the authenticated subject of the
// request and hands it to Audit.
func Subject(next http.Handler, subject func(r *http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
			info.subject = subject(r)
		}
		next.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
