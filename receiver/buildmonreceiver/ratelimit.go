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

// clientLimiter is a token bucket of events per client, with a share kept for lifecycle
// events: a request of progress events only (step_completed, milestone_reached) passes only
// if it leaves reserve tokens in the bucket; a request that carries a lifecycle event may take
// the bucket's last tokens. A client flooding steps therefore holds its bucket at the reserve
// (the refill is the steps' again only once the reserve is full), and its phase transitions
// and finish still pass, while the client's total rate stays at the limit.
type clientLimiter struct {
	limit   rate.Limit
	burst   int
	reserve int // floor(lifecycle_reserve × burst): tokens only lifecycle requests may take

	mu      sync.Mutex // guards clients and makes each bucket's check-and-take one step
	clients map[string]*rate.Limiter
}

func newClientLimiter(cfg RateLimitConfig) *clientLimiter {
	return &clientLimiter{
		limit: rate.Limit(cfg.EventsPerSecond), burst: cfg.Burst, reserve: cfg.reservedTokens(),
		clients: map[string]*rate.Limiter{},
	}
}

// admission is the rate limiter's answer to a request.
type admission struct {
	ok   bool
	wait time.Duration // until the request would pass, when !ok
	// lifecycleOpen: a lifecycle event would pass now (the bucket holds a token), when !ok.
	lifecycleOpen bool
}

// allow takes n tokens of client's bucket for a request that carries a lifecycle event
// (lifecycle) or only progress events, or says how long to wait for them.
func (l *clientLimiter) allow(client string, n int, lifecycle bool, now time.Time) admission {
	if l.limit <= 0 {
		return admission{ok: true}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.clients[client]
	if !ok {
		if len(l.clients) >= maxClients {
			l.forgetIdle(now)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.clients[client] = lim
	}
	need := float64(n)
	if !lifecycle {
		need += float64(l.reserve)
	}
	tokens := lim.TokensAt(now)
	if l.neverFits(n, lifecycle) || tokens < need {
		// Never fits: neverFits tells the caller before.
		wait := time.Duration((need - tokens) / float64(l.limit) * float64(time.Second))
		return admission{wait: wait, lifecycleOpen: tokens >= 1}
	}
	lim.AllowN(now, n)
	return admission{ok: true}
}

// neverFits reports whether n events are more than a bucket lets pass at once (for progress
// events only, less the reserve), so that no wait lets them pass.
func (l *clientLimiter) neverFits(n int, lifecycle bool) bool {
	if l.limit <= 0 {
		return false
	}
	if lifecycle {
		return n > l.burst
	}
	return n > l.burst-l.reserve
}

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
func clientKey(req *http.Request, authenticated bool) string {
	if auth := client.FromContext(req.Context()).Auth; auth != nil {
		for _, name := range subjectAttributes {
			if v, ok := auth.GetAttribute(name).(string); ok && v != "" {
				return "subject:" + v
			}
		}
	}
	// bearertokenauth sets no auth data at all: that the request passed the authenticator
	// is what makes its credential a client's name. Without one, a client could pick a new
	// header per request to get a new bucket.
	if authenticated {
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
