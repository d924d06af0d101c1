// Package connlimit caps the connections an http.Server holds open, so that a flood of
// connections cannot take the process's file descriptors (which its own files need) or its
// memory. It works through the server's ConnState hook rather than by wrapping the listener:
// a wrapped listener hides the *tls.Conn from net/http, which then sees no TLS state (no client
// certificates for authentication, no HTTP/2).
//
// At the cap, a new connection makes room by closing the connection that has waited longest
// without a request in flight (idle keep-alive, or never sent a request); only when every
// connection has a request in flight is the new one closed at once. A client that merely holds
// connections open therefore cannot lock others out, and a client whose idle connection is
// closed opens a new one, as HTTP clients do.
package connlimit // import "github.com/buildmon/buildmon/internal/connlimit"

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Limiter tracks the connections of one server. The zero value is not usable; use New.
type Limiter struct {
	max int
	now func() time.Time

	mu    sync.Mutex            // guards conns
	conns map[net.Conn]*tracked // every open connection of the server

	reaped, refused atomic.Int64
}

// tracked is one connection: waiting (no request in flight) since a time, or busy.
type tracked struct {
	busy         bool
	waitingSince time.Time
}

// New returns a limiter of max connections; max <= 0 means no limit.
func New(maxConns int) *Limiter {
	return &Limiter{max: maxConns, now: time.Now, conns: map[net.Conn]*tracked{}}
}

// Install hooks the limiter into srv (before Serve), keeping any ConnState hook it had.
func (l *Limiter) Install(srv *http.Server) {
	if l.max <= 0 {
		return
	}
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		l.track(c, s)
		if prev != nil {
			prev(c, s)
		}
	}
}

// Stats are what the limiter did so far.
type Stats struct {
	Open    int   // connections open now
	Busy    int   // of them, with a request in flight
	Reaped  int64 // waiting connections closed to make room
	Refused int64 // new connections closed because every slot had a request in flight
}

// Stats returns the current counts.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	st := Stats{Open: len(l.conns), Reaped: l.reaped.Load(), Refused: l.refused.Load()}
	for _, t := range l.conns {
		if t.busy {
			st.Busy++
		}
	}
	l.mu.Unlock()
	return st
}

func (l *Limiter) track(c net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		l.admit(c)
	case http.StateActive:
		l.mark(c, true)
	case http.StateIdle:
		l.mark(c, false)
	case http.StateClosed, http.StateHijacked:
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
	}
}

// admit runs on the server's accept loop, before the connection is served.
func (l *Limiter) admit(c net.Conn) {
	l.mu.Lock()
	var victim net.Conn
	if len(l.conns) >= l.max {
		victim = l.oldestWaitingLocked()
		if victim == nil {
			l.mu.Unlock()
			l.refused.Add(1)
			_ = c.Close()
			return
		}
		// Forgotten now, so that its slot is free at once; the server's StateClosed for it
		// finds nothing to delete.
		delete(l.conns, victim)
	}
	l.conns[c] = &tracked{waitingSince: l.now()}
	l.mu.Unlock()
	if victim != nil {
		l.reaped.Add(1)
		_ = victim.Close()
	}
}

func (l *Limiter) mark(c net.Conn, busy bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.conns[c]
	if !ok {
		return
	}
	if !busy && t.busy {
		t.waitingSince = l.now()
	}
	t.busy = busy
}

// oldestWaitingLocked returns the connection without a request in flight that has waited
// longest, or nil. It scans: it runs only at the cap, and the cap bounds the scan.
func (l *Limiter) oldestWaitingLocked() net.Conn {
	var oldest net.Conn
	var since time.Time
	for c, t := range l.conns {
		if t.busy {
			continue
		}
		if oldest == nil || t.waitingSince.Before(since) {
			oldest, since = c, t.waitingSince
		}
	}
	return oldest
}
