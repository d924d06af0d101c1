package buildmonreceiver // import "github.com/buildmon/buildmon/receiver/buildmonreceiver"

import (
	"sync"
	"time"

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
