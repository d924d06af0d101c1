package buildmonreceiver // import "github.com/buildmon/buildmon/receiver/buildmonreceiver"

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/client"
	"golang.org/x/time/rate"
)

// maxClients bounds the rate limiter's memory; past it, idle clients are forgotten.
const maxClients = 10_000

// clientLimiter is a token bucket of events per client.
type clientLimiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex // guards clients
	clients map[string]*rate.Limiter
}

func newClientLimiter(cfg RateLimitConfig) *clientLimiter {
	return &clientLimiter{limit: rate.Limit(cfg.EventsPerSecond), burst: cfg.Burst, clients: map[string]*rate.Limiter{}}
}

// allow takes n tokens of client's bucket, or says how long to wait for them.
func (l *clientLimiter) allow(client string, n int, now time.Time) (time.Duration, bool) {
	if l.limit <= 0 {
		return 0, true
	}
	l.mu.Lock()
	lim, ok := l.clients[client]
	if !ok {
		if len(l.clients) >= maxClients {
			l.forgetIdle(now)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.clients[client] = lim
	}
	l.mu.Unlock()
	if n > l.burst {
		// Never fits; neverFits tells the caller before.
		return 0, false
	}
	res := lim.ReserveN(now, n)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}

// neverFits reports whether n events are more than a bucket holds, so that no wait lets them
// pass.
func (l *clientLimiter) neverFits(n int) bool { return l.limit > 0 && n > l.burst }

// forgetIdle drops clients whose bucket is full again: they lose nothing by being forgotten.
func (l *clientLimiter) forgetIdle(now time.Time) {
	for k, lim := range l.clients {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.clients, k)
		}
	}
	if len(l.clients) >= maxClients {
		clear(l.clients)
	}
}

// subjectAttributes are the auth data attributes that name the authenticated subject, in
// order of preference.
var subjectAttributes = []string{"subject", "sub", "username", "user", "client_id", "email", "name"}

// clientKey identifies the client of a request for rate limiting: the authenticated subject
// when the authenticator names one; with an authenticator that names none (bearertokenauth),
// a fingerprint of the credential, so that each token has its own bucket; else the remote IP.
func clientKey(req *http.Request) string {
	if auth := client.FromContext(req.Context()).Auth; auth != nil {
		for _, name := range subjectAttributes {
			if v, ok := auth.GetAttribute(name).(string); ok && v != "" {
				return "subject:" + v
			}
		}
		if cred := req.Header.Get("Authorization"); cred != "" {
			sum := sha256.Sum256([]byte(cred))
			return "credential:" + hex.EncodeToString(sum[:8])
		}
	}
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return "addr:" + req.RemoteAddr
	}
	return "addr:" + host
}
