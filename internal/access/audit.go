package access // import "github.com/buildmon/buildmon/internal/access"

import (
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/time/rate"
)

// Audit writes one log line per access decision: allowed at debug, denied at warn, with
// subject, action, target and decision. Each level is bounded by a token bucket, so that a
// client hammering the API cannot flood the log: lines past the bound are counted, and the
// next line written says how many were left out.
type Audit struct {
	logger *zap.Logger

	mu      sync.Mutex // guards the limiters and the counts
	allowed *rate.Limiter
	denied  *rate.Limiter
	// skippedAllowed and skippedDenied count the lines left out since the last one written.
	skippedAllowed, skippedDenied int
}

// Bounds of the audit lines: a burst, then this many per second.
const (
	AuditLinesPerSecond = 10
	AuditBurst          = 50
)

// NewAudit returns an Audit that writes to logger (the component's logger).
func NewAudit(logger *zap.Logger) *Audit {
	return &Audit{
		logger:  logger,
		allowed: rate.NewLimiter(AuditLinesPerSecond, AuditBurst),
		denied:  rate.NewLimiter(AuditLinesPerSecond, AuditBurst),
	}
}

// Decision is one access decision.
type Decision struct {
	Subject string
	Action  Action
	Target  Target
	Allowed bool
	// Count is the number of targets (e.g. the builds of a batch) the decision covers; 0 or
	// 1 for one.
	Count int
}

// Record logs the decision, within the bounds.
func (a *Audit) Record(d Decision, now time.Time) {
	level := zapcore.DebugLevel
	lim, skipped := a.allowed, &a.skippedAllowed
	if !d.Allowed {
		level = zapcore.WarnLevel
		lim, skipped = a.denied, &a.skippedDenied
	}
	ce := a.logger.Check(level, "access decision")
	if ce == nil {
		return
	}
	a.mu.Lock()
	if !lim.AllowN(now, 1) {
		*skipped++
		a.mu.Unlock()
		return
	}
	left := *skipped
	*skipped = 0
	a.mu.Unlock()
	decision := "allow"
	if !d.Allowed {
		decision = "deny"
	}
	fields := []zap.Field{
		zap.String("subject", d.Subject),
		zap.String("action", string(d.Action)),
		zap.String("target", d.Target.String()),
		zap.String("decision", decision),
	}
	if d.Count > 1 {
		fields = append(fields, zap.Int("count", d.Count))
	}
	if left > 0 {
		fields = append(fields, zap.Int("lines_left_out", left))
	}
	ce.Write(fields...)
}
